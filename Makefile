# vdpp — build, test and demo. `make demo` and `make test` work on a fresh
# machine with Go, gcc and node/npm: `deps` installs what is missing.

GO          ?= go
ORT_VERSION ?= 1.24.3
ORT_DIR     ?= third_party/onnxruntime-$(ORT_VERSION)
# The ONNX Runtime shared library. Set VDPP_ORT_LIB to use one you already have.
VDPP_ORT_LIB ?= $(CURDIR)/$(ORT_DIR)/libonnxruntime.so.1
export VDPP_ORT_LIB
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
# ONNX Runtime with its CUDA provider (`make ort-gpu`, not part of deps):
# the npm packages com.github.asus4.onnxruntime (core library) and
# com.github.asus4.onnxruntime.linux-x64-gpu (CUDA 13 provider), pinned by
# version and by the sha512 integrity the registry publishes for each.
ORT_GPU_VERSION     ?= 1.29.0
ORT_GPU_PKG_VERSION ?= 0.4.9
ORT_GPU_DIR         ?= third_party/onnxruntime-gpu-$(ORT_GPU_VERSION)
ORT_GPU_CORE_PKG    = com.github.asus4.onnxruntime
ORT_GPU_CUDA_PKG    = com.github.asus4.onnxruntime.linux-x64-gpu
ORT_GPU_CORE_SHA512 = sha512-BkzxduSZ9IkeDP6Q8lz2TFU2ie7hSSvS7ZIfzMooExoq0CNzJnuuGaUJ7IsojBgqO4ouD1jXah8OYyJbCN29Fg==
ORT_GPU_CUDA_SHA512 = sha512-FopIhNE/Ng+v2X65wVc9clPCBCvhvA53Hxo2U0Kf5fGdVsC7iCA+mZ0KLWggcQAj7TIZ6pNidR4AC10g74Xo6w==
OUT         ?= out/demo
HANDOFF_OUT ?= out/handoff

.PHONY: all deps ort build test test-short fuzz demo handoff bench lint clean
.PHONY: ort-gpu

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

# Fetch ONNX Runtime $(ORT_GPU_VERSION) with its CUDA provider into
# $(ORT_GPU_DIR), unless present: libonnxruntime.so (the core library,
# named as shipped, so that Discover keeps taking `make ort`'s),
# libonnxruntime_providers_shared.so and libonnxruntime_providers_cuda.so
# (about 230 MB; it needs CUDA 13, cuBLAS and cuDNN 9 at run time). Each
# tarball must match its pinned integrity; the folder appears whole or not
# at all. Point vdexec at it with --ort-lib or VDPP_ORT_LIB.
ort-gpu: $(ORT_GPU_DIR)/libonnxruntime_providers_cuda.so

$(ORT_GPU_DIR)/libonnxruntime_providers_cuda.so:
	@echo "fetching ONNX Runtime $(ORT_GPU_VERSION) with its CUDA provider (npm packages $(ORT_GPU_CORE_PKG) and $(ORT_GPU_CUDA_PKG) $(ORT_GPU_PKG_VERSION), about 330 MB) into $(ORT_GPU_DIR)"
	@set -e; \
	  if [ -e $(ORT_GPU_DIR) ]; then echo "$(ORT_GPU_DIR) exists but has no libonnxruntime_providers_cuda.so: remove it and run make ort-gpu again" >&2; exit 1; fi; \
	  tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	  (cd $$tmp && npm pack --silent $(ORT_GPU_CORE_PKG)@$(ORT_GPU_PKG_VERSION) $(ORT_GPU_CUDA_PKG)@$(ORT_GPU_PKG_VERSION) >/dev/null); \
	  check() { got="sha512-$$(openssl dgst -sha512 -binary "$$1" | openssl base64 -A)"; \
	    if [ "$$got" != "$$2" ]; then echo "$$1: integrity $$got, want $$2" >&2; exit 1; fi; }; \
	  check $$tmp/$(ORT_GPU_CORE_PKG)-$(ORT_GPU_PKG_VERSION).tgz $(ORT_GPU_CORE_SHA512); \
	  check $$tmp/$(ORT_GPU_CUDA_PKG)-$(ORT_GPU_PKG_VERSION).tgz $(ORT_GPU_CUDA_SHA512); \
	  mkdir -p $$tmp/core $$tmp/cuda $(dir $(ORT_GPU_DIR)); \
	  tar --no-same-owner -xzf $$tmp/$(ORT_GPU_CORE_PKG)-$(ORT_GPU_PKG_VERSION).tgz -C $$tmp/core \
	    package/Plugins/Linux/x64/libonnxruntime.so package/Plugins/Linux/x64/libonnxruntime_providers_shared.so; \
	  tar --no-same-owner -xzf $$tmp/$(ORT_GPU_CUDA_PKG)-$(ORT_GPU_PKG_VERSION).tgz -C $$tmp/cuda \
	    package/Plugins/Linux/x64/libonnxruntime_providers_cuda.so; \
	  stage=$$(mktemp -d $(ORT_GPU_DIR).tmp.XXXXXX); trap 'rm -rf "$$tmp" "$$stage"' EXIT; \
	  mv $$tmp/core/package/Plugins/Linux/x64/libonnxruntime.so $$tmp/core/package/Plugins/Linux/x64/libonnxruntime_providers_shared.so \
	    $$tmp/cuda/package/Plugins/Linux/x64/libonnxruntime_providers_cuda.so $$stage/; \
	  chmod 755 $$stage; chmod 644 $$stage/*.so; \
	  mv -T $$stage $(ORT_GPU_DIR)
	@echo "ONNX Runtime $(ORT_GPU_VERSION) with CUDA: $(CURDIR)/$(ORT_GPU_DIR)/libonnxruntime.so (use it with --ort-lib or VDPP_ORT_LIB)"

build: deps
	$(GO) build -buildvcs=auto -o bin/vdsim ./cmd/vdsim
	$(GO) build -buildvcs=auto -o bin/vdexec ./cmd/vdexec

test: deps
	$(GO) vet ./...
	$(GO) test -count=1 -race ./...
	$(MAKE) --no-print-directory fuzz FUZZTIME=4000x

# Run each fuzz target of the plan parser for FUZZTIME (the committed seed
# corpus in plan/testdata/fuzz also runs in every plain `go test`).
# `make test` gives a count (4000x), not a duration: with a duration, Go 1.26's
# fuzz coordinator can report a spurious "context deadline exceeded" failure
# when the time runs out on a loaded machine (golang/go#75804, fixed in 1.27).
# A real finding always prints "Failing input written to testdata/fuzz/...".
FUZZTIME ?= 30s
FUZZ_TARGETS = FuzzParse FuzzParseProfile
fuzz:
	@for t in $(FUZZ_TARGETS); do \
	  echo "fuzz $$t for $(FUZZTIME)"; \
	  $(GO) test -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME) -parallel 2 ./plan || exit 1; \
	done

demo: build
	./scripts/demo.sh $(OUT)

# The hand-off-bound CPU experiment (README "How accurate"): 1 and 2 stages
# of a small tiny model over tcp, predicted from one profile, run, compared.
handoff: build
	./scripts/handoff.sh $(HANDOFF_OUT) $(SAMPLES)

bench: deps
	$(GO) test -run '^$$' -bench . -benchmem ./sim/ ./timeline/ ./models/... ./exec/...

lint: deps
	@fmt=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$fmt" ]; then echo "gofmt needed:"; echo "$$fmt"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

clean:
	rm -rf bin out
