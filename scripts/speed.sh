#!/usr/bin/env bash
# speed.sh — how fast does a step pipeline run on this machine's CPU cores?
#
# Runs the tiny model with the same samples and steps four ways and prints
# throughput, first-sample latency and their ratios:
#   a) 1 stage on 1 core            (1 device, 1 intra-op thread)
#   b) 2-stage pipeline, 1 core each (the plan configs/tiny-cpu-2stage.yaml)
#   c) 1 stage with 2 intra-op threads
#   d) 2 replicas of 1 stage, 1 core each (data parallel)
#   p) as a), pinned to core 0 with taskset (when there is one): unpinned,
#      the lone ONNX Runtime thread migrates between the idle cores and runs
#      its UNet calls ~15% slower, which flatters every ratio against a)
# and the executor's own overhead per step (step time outside the UNet call),
# measured in each run.
#
# Usage: scripts/speed.sh [OUTDIR]    (default out/speed)
# Environment: SAMPLES (12), STEPS (28), VDPP_ORT_LIB (the library `make ort`
# fetches), GO (go).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
out=${1:-out/speed}
samples=${SAMPLES:-12}
steps=${STEPS:-28}
GO=${GO:-go}
export VDPP_ORT_LIB=${VDPP_ORT_LIB:-$root/third_party/onnxruntime-1.24.3/libonnxruntime.so.1}
if [ ! -f "$VDPP_ORT_LIB" ]; then
	echo "speed.sh: ONNX Runtime library $VDPP_ORT_LIB not found: run \`make ort\` (or set VDPP_ORT_LIB)" >&2
	exit 1
fi

mkdir -p bin "$out"
"$GO" build -o bin/vdexec ./cmd/vdexec

models="$root/models/tiny"
plans=$(mktemp -d)
trap 'rm -rf "$plans"' EXIT

# plan NAME DEVICES REPLICAS: the tiny model, 8 frames 16×16, on the given
# device list (YAML lines), with this many replicas.
plan() {
	cat >"$plans/$1.yaml" <<EOF
name: speed-$1
model:
  family: tiny
  onnx: {unet: $models/unet.onnx, encoder: $models/encoder.onnx, decoder: $models/decoder.onnx}
  frames: 8
  latent: {channels: 4, height: 16, width: 16}
  dtype: fp32
sampler: {kind: euler-karras, steps: $steps, sigma_min: 0.002, sigma_max: 700, rho: 7}
devices:
$2
layout: {replicas: $3, assignment: even, encode_on: first, decode_on: last, micro_batch: 1}
links: {default: inproc}
transport: inproc
workload: {samples: $samples, arrival: {kind: batch}, seed: 42}
EOF
}
one='  - {name: cpu0, kind: cpu, threads: 1, provider: cpu}'
two='  - {name: cpu0, kind: cpu, threads: 1, provider: cpu}
  - {name: cpu1, kind: cpu, threads: 1, provider: cpu}'
plan a "$one" 1
plan b "$two" 1
plan c '  - {name: cpu0, kind: cpu, threads: 2, provider: cpu}' 1
plan d "$two" 2

# field FILE KEY: the first number after "KEY": in a metrics.json.
field() { sed -n "s/.*\"$2\": *\([-0-9.e+]*\).*/\1/p" "$1" | head -1; }
# sum FILE KEY: the sum of every "KEY": number in a metrics.json.
sum() { sed -n "s/.*\"$2\": *\([-0-9.e+]*\).*/\1/p" "$1" | awk '{s += $1} END {printf "%.0f", s}'; }

declare -A label=(
	[a]="a) 1 stage, 1 core"
	[p]="p) 1 stage, 1 core, pinned (taskset)"
	[b]="b) 2-stage pipeline, 1 core each"
	[c]="c) 1 stage, 2 intra-op threads"
	[d]="d) 2 replicas (data parallel)"
)
declare -A thr lat mk ovh
runs="a b c d"
if command -v taskset >/dev/null; then
	runs="a p b c d"
	cp "$plans/a.yaml" "$plans/p.yaml"
fi
echo "speed.sh: $samples samples × $steps steps of the tiny model (8 frames, latent 4×16×16) on $(nproc) cores; outputs in $out" >&2
for k in $runs; do
	echo "speed.sh: running ${label[$k]}" >&2
	pin=()
	[ "$k" = p ] && pin=(taskset -c 0)
	"${pin[@]}" ./bin/vdexec run "$plans/$k.yaml" --out "$out/$k" >"$out/$k.txt" 2>"$out/$k.log"
	m="$out/$k/metrics.json"
	thr[$k]=$(field "$m" throughput_per_s)
	lat[$k]=$(field "$m" first_latency_ns)
	mk[$k]=$(field "$m" makespan_ns)
	ovh[$k]=$(awk -v s="$(sum "$m" step_span_ns)" -v u="$(sum "$m" unet_call_ns)" -v n="$(sum "$m" unet_calls)" \
		'BEGIN { if (s > 0) printf "%.3f%% (%.0f µs/step)", 100 * (s - u) / s, (s - u) / n / 1e3; else print "-" }')
done

echo
echo "machine: $(sed -n 's/.*"machine": "\(.*\)".*/\1/p' "$out/a/metrics.json" | head -1)"
echo "workload: $samples samples released together, $steps steps, tiny model; ONNX Runtime CPU"
echo
printf '%-36s %16s %18s %12s %26s\n' "layout" "throughput" "first-sample lat." "makespan" "executor overhead/step"
for k in $runs; do
	printf '%-36s %11.3f /s %15.0f ms %9.0f ms %26s\n' "${label[$k]}" "${thr[$k]}" "$(awk -v v="${lat[$k]}" 'BEGIN{print v/1e6}')" \
		"$(awk -v v="${mk[$k]}" 'BEGIN{print v/1e6}')" "${ovh[$k]}"
done
echo
ratio() { awk -v x="$1" -v y="$2" 'BEGIN { if (y > 0) printf "%.2f×", x / y; else print "-" }'; }
printf '%-44s %10s %22s\n' "ratio" "throughput" "first-sample latency"
printf '%-44s %10s %22s\n' "b/a  pipeline vs 1 stage on 1 core" "$(ratio "${thr[b]}" "${thr[a]}")" "$(ratio "${lat[b]}" "${lat[a]}")"
printf '%-44s %10s %22s\n' "c/a  2 intra-op threads vs 1 core" "$(ratio "${thr[c]}" "${thr[a]}")" "$(ratio "${lat[c]}" "${lat[a]}")"
printf '%-44s %10s %22s\n' "d/a  data parallel vs 1 stage on 1 core" "$(ratio "${thr[d]}" "${thr[a]}")" "$(ratio "${lat[d]}" "${lat[a]}")"
printf '%-44s %10s %22s\n' "b/d  pipeline vs data parallel" "$(ratio "${thr[b]}" "${thr[d]}")" "$(ratio "${lat[b]}" "${lat[d]}")"
if [ -n "${thr[p]:-}" ]; then
	printf '%-44s %10s %22s\n' "b/p  pipeline vs 1 stage pinned to 1 core" "$(ratio "${thr[b]}" "${thr[p]}")" "$(ratio "${lat[b]}" "${lat[p]}")"
	printf '%-44s %10s %22s\n' "d/p  data parallel vs 1 stage pinned" "$(ratio "${thr[d]}" "${thr[p]}")" "$(ratio "${lat[d]}" "${lat[p]}")"
fi
echo
echo "throughput: (N−1)/(c_N − c_1) over the completions (timeline.Metrics); executor overhead: step-span time outside the UNet calls / step-span time."
echo "full outputs (timelines, traces, Gantt charts): $out/{${runs// /,}}/"
