#!/usr/bin/env bash
# gpu-check: one report of what vdpp does on this machine, for a GPU bug report.
# Needs no Go toolchain: it runs the prebuilt bin/vdexec and bin/vdsim of a
# bundle made by scripts/gpu-bundle.sh (or of a checkout after `make build`).
#
# Usage: gpu-check.sh [OUT_DIR]
#   OUT_DIR  where every output goes (default ROOT/out/gpu-check-YYYYmmdd-HHMMSS);
#            an existing OUT_DIR must be empty or one an earlier gpu-check wrote.
#   ROOT is the folder holding bin/vdexec: this script's folder (a bundle) or its parent (a checkout).
# Environment:
#   VDPP_ORT_LIB            ONNX Runtime library for the CPU steps (default: the bundled
#                           ROOT/third_party/onnxruntime-1.24.3/libonnxruntime.so.1, or
#                           its .gz, unpacked into OUT_DIR/ort/)
#   VDPP_ORT_GPU_LIB        ONNX Runtime library for the CUDA steps (default: the first
#                           ROOT/third_party/onnxruntime-gpu-*/libonnxruntime.so with
#                           libonnxruntime_providers_cuda.so beside it, else VDPP_ORT_LIB)
#   GPU_CHECK_GPU_INDEX     CUDA device index of the CUDA plans (default 0)
#   GPU_CHECK_STEP_TIMEOUT  seconds one step may take (default 120)
#   GPU_CHECK_BUDGET        seconds all steps may take together (default 270)
#
# Steps: vdexec and vdsim --version, nvidia-smi, vdexec doctor (CPU plan), doctor --emit-devices; the
# tiny CPU plan (configs/tiny-cpu-2stage.yaml): profile, vdsim run with that profile,
# vdexec run, vdsim compare; then the same on the CUDA provider at 1 stage and at 2
# stages on one GPU (plans generated from the CPU plan): plan check, doctor, profile,
# predict, run, compare. Each step runs under `timeout`; a summary table (step,
# status, seconds) ends the output, which is also saved as OUT_DIR/gpu-check.log.
#
# Exit status: 0 when every CPU step passed (CUDA failures do not count: provider
# cuda does not run through exec/ort yet, see README "ONNX Runtime with CUDA");
# 1 when a CPU step failed; 2 on a usage mistake.
set -uo pipefail

usage() { sed -n '2,/^set -uo/{/^set -uo/d;s/^# \{0,1\}//;p}' "$0"; }
case ${1:-} in
  -h | --help) usage; exit 0 ;;
  -*) echo "gpu-check: unknown option $1" >&2; usage >&2; exit 2 ;;
esac
[ $# -le 1 ] || { echo "gpu-check: at most one argument (OUT_DIR), got $#" >&2; exit 2; }

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [ -x "$here/bin/vdexec" ]; then
  root=$here
elif [ -x "$here/../bin/vdexec" ]; then
  root=$(cd "$here/.." && pwd)
else
  echo "gpu-check: no bin/vdexec in $here or its parent: run scripts/gpu-bundle.sh (or make build) first" >&2
  exit 2
fi
vdexec=$root/bin/vdexec
vdsim=$root/bin/vdsim
cpu_plan=$root/configs/tiny-cpu-2stage.yaml
gpu_index=${GPU_CHECK_GPU_INDEX:-0}
step_timeout=${GPU_CHECK_STEP_TIMEOUT:-120}
budget=${GPU_CHECK_BUDGET:-270}
for v in gpu_index step_timeout budget; do
  case ${!v} in '' | *[!0-9]*) echo "gpu-check: $v must be a whole number, got '${!v}'" >&2; exit 2 ;; esac
done
for f in "$vdsim" "$cpu_plan"; do
  [ -e "$f" ] || { echo "gpu-check: $f is missing" >&2; exit 2; }
done
command -v timeout >/dev/null || { echo "gpu-check: needs timeout (coreutils)" >&2; exit 2; }

out=${1:-$root/out/gpu-check-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out" || { echo "gpu-check: cannot create $out" >&2; exit 2; }
out=$(cd "$out" && pwd)
if [ -n "$(ls -A "$out")" ] && [ ! -e "$out/.gpu-check" ]; then
  echo "gpu-check: $out is not empty and not an earlier gpu-check output folder: give a new or empty OUT_DIR" >&2
  exit 2
fi
: >"$out/.gpu-check"
mkdir -p "$out/logs" "$out/plans"

# The CPU library: VDPP_ORT_LIB, else the bundled one (a bundle carries it
# gzipped: unpacked here into OUT_DIR/ort/).
if [ -z "${VDPP_ORT_LIB:-}" ]; then
  VDPP_ORT_LIB=$root/third_party/onnxruntime-1.24.3/libonnxruntime.so.1
  if [ ! -f "$VDPP_ORT_LIB" ] && [ -f "$VDPP_ORT_LIB.gz" ]; then
    mkdir -p "$out/ort"
    gzip -dc "$VDPP_ORT_LIB.gz" >"$out/ort/libonnxruntime.so.1" ||
      { echo "gpu-check: cannot unpack $VDPP_ORT_LIB.gz (needs gzip)" >&2; exit 2; }
    VDPP_ORT_LIB=$out/ort/libonnxruntime.so.1
  fi
fi
[ -f "$VDPP_ORT_LIB" ] || { echo "gpu-check: ONNX Runtime library $VDPP_ORT_LIB not found (set VDPP_ORT_LIB)" >&2; exit 2; }
export VDPP_ORT_LIB
gpu_lib=${VDPP_ORT_GPU_LIB:-}
if [ -z "$gpu_lib" ]; then
  for l in "$root"/third_party/onnxruntime-gpu-*/libonnxruntime.so; do
    [ -f "$l" ] && [ -f "$(dirname "$l")/libonnxruntime_providers_cuda.so" ] && { gpu_lib=$l; break; }
  done
fi
gpu_lib_note="with its CUDA provider"
if [ -z "$gpu_lib" ]; then
  gpu_lib=$VDPP_ORT_LIB
  gpu_lib_note="CPU-only: no onnxruntime-gpu library with libonnxruntime_providers_cuda.so here (set VDPP_ORT_GPU_LIB)"
fi

# The CUDA failures that are known until exec/ort can register plugin providers
# (or that only say this machine lacks the CUDA pieces the bundle cannot carry).
known_cuda='CUDA execution provider not available|not enabled in this build|has no CUDA provider|no NVIDIA driver|which does not load|no GPUs to describe'

now() { if [ -n "${EPOCHREALTIME:-}" ]; then echo "${EPOCHREALTIME/,/.}"; else date +%s.%N; fi; }
t_start=$(now)
elapsed() { awk -v a="$t_start" -v b="$(now)" 'BEGIN{printf "%d", b-a}'; }

rows=()        # "name|class|status|seconds"
cpu_failed=0
declare -A st  # step name -> status

# step CLASS NAME TAIL CMD...: runs CMD under timeout with its output in
# logs/NAME.log; prints the last TAIL lines of it (0: all). CLASS cpu must
# pass; gpu failures are reported, matched against the known ones.
step() {
  local class=$1 name=$2 tail=$3; shift 3
  local log=$out/logs/$name.log t0 t1 secs rc status left lim
  left=$((budget - $(elapsed)))
  lim=$step_timeout
  [ "$left" -lt "$lim" ] && lim=$left
  echo
  echo "== $name [$class]: $*"
  if [ "$lim" -le 0 ]; then
    status="skipped (time budget ${budget}s spent)"
    echo "   $status"
    record "$class" "$name" "$status" "-"
    return
  fi
  t0=$(now)
  timeout -k 5 "$lim" "$@" >"$log" 2>&1 </dev/null
  rc=$?
  t1=$(now)
  secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}')
  if [ "$tail" -eq 0 ] || [ "$(wc -l <"$log")" -le "$tail" ]; then
    sed 's/^/   /' "$log"
  else
    echo "   ... ($(($(wc -l <"$log") - tail)) earlier lines in logs/$name.log)"
    tail -n "$tail" "$log" | sed 's/^/   /'
  fi
  if [ "$rc" -eq 0 ]; then
    status=ok
  elif [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    status="TIMEOUT (${lim}s)"
  elif [ "$class" = gpu ] && grep -Eq "$known_cuda" "$log"; then
    status="expected-fail (rc $rc)"
  else
    status="FAIL (rc $rc)"
  fi
  echo "   -> $status in ${secs}s"
  record "$class" "$name" "$status" "$secs"
}
record() {
  rows+=("$2|$1|$3|$4")
  st[$2]=$3
  if [ "$1" = cpu ] && [ "$3" != ok ]; then cpu_failed=1; fi
}
skip() { # CLASS NAME WHY
  echo
  echo "== $2 [$1]: skipped ($3)"
  record "$1" "$2" "skipped ($3)" "-"
}

# cuda_plan NAME STAGES: the CPU plan with its devices replaced by STAGES
# entries of provider cuda, all at index $gpu_index (two device entries may
# name one GPU; the executor refuses one device entry holding two stages),
# and its model paths made absolute.
cuda_plan() {
  local name=$1 stages=$2
  awk -v name="$name" -v stages="$stages" -v idx="$gpu_index" -v dir="$root/configs" '
    function q(s) { gsub(/\047/, "\047\047", s); return "\047" s "\047" }
    /^name:/ { print "name: " name; next }
    /^devices:/ {
      print "devices:                                # generated by gpu-check: provider cuda, one GPU"
      for (i = 0; i < stages; i++)
        printf "  - {name: gpu%d.s%d, kind: gpu, provider: cuda, index: %d}\n", idx, i, idx
      skip = 1; next
    }
    skip && /^[^ #]/ { skip = 0 }
    skip { next }
    /^    (unet|encoder|decoder): / {
      p = $2; if (p !~ /^\//) p = dir "/" p
      print "    " $1 " " q(p); next
    }
    { print }' "$cpu_plan"
}

main() {
  echo "gpu-check: vdpp on $(hostname 2>/dev/null || echo '?'), $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "  root:        $root"
  echo "  output:      $out"
  echo "  kernel:      $(uname -srm)"
  echo "  CPU ORT lib: $VDPP_ORT_LIB"
  echo "  CUDA steps:  $gpu_lib ($gpu_lib_note)"
  echo "  GPU index:   $gpu_index; timeout ${step_timeout}s a step, ${budget}s in all"

  step cpu vdexec-version 0 "$vdexec" --version
  step cpu vdsim-version 0 "$vdsim" --version
  if command -v nvidia-smi >/dev/null; then
    step gpu nvidia-smi 0 nvidia-smi
  else
    skip gpu nvidia-smi "nvidia-smi not found"
  fi
  step cpu doctor 0 "$vdexec" doctor "$cpu_plan"
  step gpu doctor-emit-devices 0 env VDPP_ORT_LIB="$gpu_lib" "$vdexec" doctor --emit-devices

  # The tiny CPU plan, as `make demo` runs it.
  local c=$out/cpu
  mkdir -p "$c"
  step cpu cpu-profile 8 "$vdexec" profile --out "$c/profile.yaml" --replace "$cpu_plan"
  if [ "${st[cpu-profile]}" = ok ]; then
    step cpu cpu-predict 12 "$vdsim" run --costs "$c/profile.yaml" --out "$c/predicted" --replace "$cpu_plan"
  else
    skip cpu cpu-predict "no profile"
  fi
  step cpu cpu-run 6 "$vdexec" run --out "$c/measured" --replace "$cpu_plan"
  if [ "${st[cpu-predict]}" = ok ] && [ "${st[cpu-run]}" = ok ]; then
    step cpu cpu-compare 20 "$vdsim" compare --plan "$cpu_plan" --costs "$c/profile.yaml" --out "$c/compare" --replace \
      "$c/predicted/timeline.json" "$c/measured/timeline.json"
  else
    skip cpu cpu-compare "nothing to compare"
  fi

  # The tiny model on the CUDA provider: 1 stage, then 2 stages on one GPU.
  # The CUDA steps get their library through VDPP_ORT_LIB, not --ort-lib: with
  # --ort-lib A and VDPP_ORT_LIB B, vdexec run and profile load A, then open
  # each stage's session from B and fail ("ONNX Runtime is already loaded").
  local n s p d
  for n in 1 2; do
    s=cuda$n
    d=$out/$s
    p=$out/plans/tiny-cuda-${n}stage.yaml
    mkdir -p "$d"
    cuda_plan "tiny-cuda-${n}stage" "$n" >"$p"
    # The plan must be valid anywhere: a CPU step.
    step cpu "$s-plan" 0 "$vdsim" validate "$p"
    step gpu "$s-doctor" 0 env VDPP_ORT_LIB="$gpu_lib" "$vdexec" doctor "$p"
    step gpu "$s-profile" 8 env VDPP_ORT_LIB="$gpu_lib" "$vdexec" profile --out "$d/profile.yaml" --replace "$p"
    if [ "${st[$s-profile]}" = ok ]; then
      step gpu "$s-predict" 12 "$vdsim" run --costs "$d/profile.yaml" --out "$d/predicted" --replace "$p"
    else
      skip gpu "$s-predict" "no profile"
    fi
    step gpu "$s-run" 6 env VDPP_ORT_LIB="$gpu_lib" "$vdexec" run --out "$d/measured" --replace "$p"
    if [ "${st[$s-predict]}" = ok ] && [ "${st[$s-run]}" = ok ]; then
      step gpu "$s-compare" 20 "$vdsim" compare --plan "$p" --costs "$d/profile.yaml" --out "$d/compare" --replace \
        "$d/predicted/timeline.json" "$d/measured/timeline.json"
    else
      skip gpu "$s-compare" "nothing to compare"
    fi
  done

  echo
  echo "== summary ($(elapsed) s in all; outputs in $out)"
  {
    printf '%-20s %-6s %-36s %8s\n' step class status seconds
    local r name class status secs
    for r in "${rows[@]}"; do
      IFS='|' read -r name class status secs <<<"$r"
      printf '%-20s %-6s %-36s %8s\n' "$name" "$class" "$status" "$secs"
    done
  } | tee "$out/summary.txt"
  echo
  local unexpected=0
  for r in "${rows[@]}"; do
    IFS='|' read -r name class status secs <<<"$r"
    if [ "$class" = gpu ] && { [[ $status == FAIL* ]] || [[ $status == TIMEOUT* ]]; }; then unexpected=1; fi
  done
  echo "Known limitation: provider cuda does not run through exec/ort yet. The ONNX Runtime 1.29 core"
  echo "reaches CUDA only as a plugin provider, which needs RegisterExecutionProviderLibrary, GetEpDevices"
  echo "and SessionOptionsAppendExecutionProvider_V2; onnxruntime_go v1.27.0 does not wrap them (README,"
  echo "\"ONNX Runtime with CUDA\"). The CUDA steps marked expected-fail fail for that reason or for the"
  echo "CUDA pieces this machine or bundle lacks (the ~230 MB provider library is bundled only with GPU_BUNDLE_WITH_CUDA=1)."
  if [ "$unexpected" -eq 1 ]; then
    echo "A CUDA step failed in another way (FAIL or TIMEOUT above): that is worth a bug report."
  fi
  if [ "$cpu_failed" -eq 0 ]; then
    echo "gpu-check: CPU steps passed (exit 0)."
    return 0
  fi
  echo "gpu-check: a CPU step failed (exit 1): see its lines above and $out/logs/."
  return 1
}

main 2>&1 | tee "$out/gpu-check.log"
exit "${PIPESTATUS[0]}"
