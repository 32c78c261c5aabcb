# vdpp — build, test and demo. `make demo` and `make test` work on a fresh
# machine with Go, gcc and node/npm: `deps` installs what is missing.

GO          ?= go
ORT_VERSION ?= 1.24.3
ORT_DIR     ?= third_party/onnxruntime-$(ORT_VERSION)
# The ONNX Runtime shared library. Set VDPP_ORT_LIB to use one you already have.
VDPP_ORT_LIB ?= $(CURDIR)/$(ORT_DIR)/libonnxruntime.so.1
export VDPP_ORT_LIB
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
OUT         ?= out/demo

.PHONY: all deps ort build test test-short fuzz demo bench lint clean

all: build

deps: ort
	$(GO) mod download

# Fetch the CPU build of ONNX Runtime from the npm registry (the
# onnxruntime-node package ships libonnxruntime.so.1), unless present.
ort: $(VDPP_ORT_LIB)

$(VDPP_ORT_LIB):
	@echo "fetching ONNX Runtime $(ORT_VERSION) (npm package onnxruntime-node) into $(ORT_DIR)"
	@set -e; tmp=$$(mktemp -d); \
	  (cd $$tmp && npm pack --silent onnxruntime-node@$(ORT_VERSION) >/dev/null); \
	  tar -xzf $$tmp/onnxruntime-node-$(ORT_VERSION).tgz -C $$tmp package/bin/napi-v6/linux/x64/libonnxruntime.so.1; \
	  mkdir -p $(dir $@); \
	  mv $$tmp/package/bin/napi-v6/linux/x64/libonnxruntime.so.1 $@.tmp && mv $@.tmp $@; \
	  rm -rf $$tmp
	@echo "ONNX Runtime library: $@"

build: deps
	$(GO) build -buildvcs=auto -o bin/vdsim ./cmd/vdsim
	$(GO) build -buildvcs=auto -o bin/vdexec ./cmd/vdexec

test: deps
	$(GO) vet ./...
	$(GO) test -count=1 -race ./...
	$(MAKE) --no-print-directory fuzz FUZZTIME=5s

# Run each fuzz target of the plan parser for FUZZTIME (the committed seed
# corpus in plan/testdata/fuzz also runs in every plain `go test`).
FUZZTIME ?= 30s
FUZZ_TARGETS = FuzzParse FuzzParseProfile
fuzz:
	@for t in $(FUZZ_TARGETS); do \
	  echo "fuzz $$t for $(FUZZTIME)"; \
	  $(GO) test -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME) -parallel 2 ./plan || exit 1; \
	done

demo: build
	./scripts/demo.sh $(OUT)

bench: deps
	$(GO) test -run '^$$' -bench . -benchmem ./sim/ ./timeline/ ./models/... ./exec/...

lint: deps
	@fmt=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$fmt" ]; then echo "gofmt needed:"; echo "$$fmt"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

clean:
	rm -rf bin out
