#!/usr/bin/env bash
# The demo: profile this machine with the tiny model, predict the CPU plan
# from that profile, run the same plan for real, and compare the two.
# Usage: scripts/demo.sh [OUT_DIR] [PLAN]   (make demo runs it after building)
# Running it again replaces what an earlier demo wrote in OUT_DIR (--replace).
set -euo pipefail
cd "$(dirname "$0")/.."

out=${1:-out/demo}
plan=${2:-configs/tiny-cpu-2stage.yaml}
vdsim=bin/vdsim
vdexec=bin/vdexec
for b in "$vdsim" "$vdexec"; do
  [ -x "$b" ] || { echo "demo: $b is missing; run 'make build' first" >&2; exit 1; }
done
export VDPP_ORT_LIB=${VDPP_ORT_LIB:-$PWD/third_party/onnxruntime-1.24.3/libonnxruntime.so.1}
[ -f "$VDPP_ORT_LIB" ] || { echo "demo: ONNX Runtime library $VDPP_ORT_LIB not found: run 'make ort' (or set VDPP_ORT_LIB)" >&2; exit 1; }
mkdir -p "$out"
start=$SECONDS

echo "== 1/4 profile: measuring the tiny model on this machine ($plan)"
"$vdexec" profile --out "$out/profile.yaml" --replace "$plan"

echo
echo "== 2/4 predict: simulating the plan with the measured costs"
"$vdsim" run --costs "$out/profile.yaml" --out "$out/predicted" --replace "$plan"

echo
echo "== 3/4 execute: running the same plan for real"
"$vdexec" run --out "$out/measured" --replace "$plan"

echo
echo "== 4/4 compare: prediction against measurement"
"$vdsim" compare --plan "$plan" --costs "$out/profile.yaml" --out "$out/compare" --replace \
  "$out/predicted/timeline.json" "$out/measured/timeline.json"

echo
echo "demo finished in $((SECONDS - start)) s. Outputs:"
echo "  report:         $out/compare/report.md"
echo "  Gantt charts:   $out/compare/gantt.png (predicted and measured on one time axis)"
echo "  sample videos:  $out/measured/sample_*/video.gif"
echo "  Perfetto trace: $out/measured/trace.json (open in ui.perfetto.dev)"
