#!/usr/bin/env bash
# gpu-bundle: build bin/vdsim and bin/vdexec here and assemble a folder that
# runs scripts/gpu-check.sh on a machine with no Go toolchain.
#
# Usage: scripts/gpu-bundle.sh [BUNDLE_DIR]   (default out/gpu-bundle; replaced if it exists)
#        It also writes BUNDLE_DIR.tar.gz, the same folder compressed.
# Then:  copy BUNDLE_DIR (or the tarball, unpacked) to the GPU machine and run
#        BUNDLE_DIR/gpu-check.sh [OUT_DIR] there.
#
# The bundle holds bin/vdsim, bin/vdexec, configs/ (plans and profiles),
# models/tiny/*.onnx, the CPU ONNX Runtime library gzipped
# (third_party/onnxruntime-1.24.3/libonnxruntime.so.1.gz, from `make ort`) and
# gpu-check.sh. The CUDA provider library (~230 MB, `make ort-gpu`) is left out
# unless GPU_BUNDLE_WITH_CUDA=1; without it the CUDA steps of the check fail as
# expected; with it they run through the plugin route where the GPU machine has
# the CUDA 13 libraries (README, "ONNX Runtime with CUDA").
set -euo pipefail
cd "$(dirname "$0")/.."

bundle=${1:-out/gpu-bundle}
go=${GO:-go}
ort_cpu=third_party/onnxruntime-1.24.3/libonnxruntime.so.1
ort_gpu_dir=third_party/onnxruntime-gpu-1.29.0

command -v "$go" >/dev/null || { echo "gpu-bundle: no Go toolchain ($go): build the bundle on a machine with Go" >&2; exit 1; }
[ -f "$ort_cpu" ] || { echo "gpu-bundle: $ort_cpu is missing: run 'make ort' first" >&2; exit 1; }
case $bundle in
  "" | / | . | ..) echo "gpu-bundle: refusing bundle folder '$bundle'" >&2; exit 2 ;;
esac
if [ -e "$bundle" ] && [ ! -e "$bundle/.gpu-bundle" ]; then
  echo "gpu-bundle: $bundle exists and is not a bundle this script made: give a new folder" >&2
  exit 1
fi

rm -rf "$bundle" "$bundle.tar.gz"
mkdir -p "$bundle/bin" "$bundle/models/tiny" "$bundle/$(dirname "$ort_cpu")"
: >"$bundle/.gpu-bundle"
# Without symbol tables and DWARF (-s -w) the two binaries are 30 MB instead
# of 38; --version still prints the module version and VCS revision.
echo "gpu-bundle: building $bundle/bin/vdsim and $bundle/bin/vdexec"
"$go" build -buildvcs=auto -ldflags='-s -w' -o "$bundle/bin/vdsim" ./cmd/vdsim
"$go" build -buildvcs=auto -ldflags='-s -w' -o "$bundle/bin/vdexec" ./cmd/vdexec
cp -R configs "$bundle/configs"
find "$bundle/configs" -name '*.go' -delete
cp models/tiny/*.onnx "$bundle/models/tiny/"
# The library is 35 MB, 13 MB gzipped: gpu-check.sh unpacks it into its
# output folder, which keeps the folder near 42 MiB instead of 64.
gzip -9 -c "$ort_cpu" >"$bundle/$ort_cpu.gz"
if [ "${GPU_BUNDLE_WITH_CUDA:-0}" = 1 ]; then
  [ -f "$ort_gpu_dir/libonnxruntime_providers_cuda.so" ] || { echo "gpu-bundle: $ort_gpu_dir is missing: run 'make ort-gpu' first" >&2; exit 1; }
  mkdir -p "$bundle/$ort_gpu_dir"
  cp "$ort_gpu_dir"/libonnxruntime.so "$ort_gpu_dir"/libonnxruntime_providers_shared.so \
    "$ort_gpu_dir"/libonnxruntime_providers_cuda.so "$bundle/$ort_gpu_dir/"
fi
cp scripts/gpu-check.sh "$bundle/gpu-check.sh"
chmod +x "$bundle/gpu-check.sh"

tar -czf "$bundle.tar.gz" -C "$(dirname "$bundle")" "$(basename "$bundle")"
size=$(du -sk "$bundle" | cut -f1)
tsize=$(du -sk "$bundle.tar.gz" | cut -f1)
echo "gpu-bundle: $bundle: $((size / 1024)) MiB in $(find "$bundle" -type f | wc -l) files; $("$bundle/bin/vdexec" --version)"
echo "gpu-bundle: $bundle.tar.gz: $((tsize / 1024)) MiB"
echo "gpu-bundle: run it with: $bundle/gpu-check.sh [OUT_DIR]"
echo "            or elsewhere: tar -xzf $(basename "$bundle").tar.gz && $(basename "$bundle")/gpu-check.sh [OUT_DIR]"
