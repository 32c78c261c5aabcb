#!/usr/bin/env bash
# The hand-off-bound CPU experiment: the tiny model at a shape where one
# UNet call costs about 1–3 ms on one thread (8 frames, 32×32 latent of
# 128 KiB, a small UNet), 12 steps, latents over TCP between worker
# processes; 1 and 2 stages. For each plan it profiles (vdexec profile,
# which also runs the plan briefly), predicts with that profile, runs it
# for real, and compares.
# Usage: scripts/handoff.sh [OUT_DIR] [SAMPLES]   (make handoff runs it)
# Needs bin/vdsim, bin/vdexec and Go (to generate the model into OUT_DIR).
set -euo pipefail
cd "$(dirname "$0")/.."

out=${1:-out/handoff}
samples=${2:-40}
vdsim=bin/vdsim
vdexec=bin/vdexec
for b in "$vdsim" "$vdexec"; do
  [ -x "$b" ] || { echo "handoff: $b is missing; run 'make build' first" >&2; exit 1; }
done
export VDPP_ORT_LIB=${VDPP_ORT_LIB:-$PWD/third_party/onnxruntime-1.24.3/libonnxruntime.so.1}
[ -f "$VDPP_ORT_LIB" ] || { echo "handoff: ONNX Runtime library $VDPP_ORT_LIB not found: run 'make ort' (or set VDPP_ORT_LIB)" >&2; exit 1; }
mkdir -p "$out/model"

echo "== model: tiny, 8 frames, 32×32 latent, small UNet ($out/model)"
go run ./models/tiny/gen -out "$out/model" -frames 8 -height 32 -width 32 -extra-channels 8 -extra-blocks 0

plan() { # stages → plan file
  local f="$out/plan-$1stage.yaml"
  {
    echo "name: tiny-handoff-$1stage"
    echo "model:"
    echo "  family: tiny"
    echo "  onnx: {unet: model/unet.onnx, encoder: model/encoder.onnx, decoder: model/decoder.onnx}"
    echo "  frames: 8"
    echo "  latent: {channels: 4, height: 32, width: 32}"
    echo "  dtype: fp32"
    echo "sampler: {kind: euler-karras, steps: 12, sigma_min: 0.002, sigma_max: 700, rho: 7}"
    echo "devices: {count: $1, kind: cpu, threads: 1, provider: cpu}"
    echo "layout: {replicas: 1, assignment: even, micro_batch: 1}"
    echo "links: {default: loopback}"
    echo "transport: tcp"
    echo "workload: {samples: $samples, arrival: {kind: batch}, seed: 42}"
  } > "$f"
  echo "$f"
}
p1=$(plan 1)
p2=$(plan 2)

for p in "$p1" "$p2"; do
  n=$(basename "$p" .yaml)
  echo
  echo "== $n: profile, predict, run, compare"
  "$vdexec" profile --reps 30 --out "$out/$n/profile.yaml" --replace "$p" >"$out/$n.profile.log" 2>&1
  "$vdsim" run --costs "$out/$n/profile.yaml" --out "$out/$n/predicted" --replace --no-dp "$p" >/dev/null
  "$vdexec" run --out "$out/$n/measured" --replace "$p" >/dev/null 2>"$out/$n.run.log"
  "$vdsim" compare --plan "$p" --costs "$out/$n/profile.yaml" --out "$out/$n/compare" --replace \
    "$out/$n/predicted/timeline.json" "$out/$n/measured/timeline.json" |
    grep -E "^(first-sample latency|steady-state throughput|overall throughput|hindsight)|inside|below|above"
done
