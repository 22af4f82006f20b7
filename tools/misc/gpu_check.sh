#!/usr/bin/env bash
# Check an installation on a GPU node (after `bash tools/install.sh`).
#
#   bash tools/misc/gpu_check.sh [--no-tests] [--no-benchmark] [--no-training]
#
# Prints the GPU and the versions of torch / CUDA / cuDNN / mmcv / mmengine /
# mmseg, then
#   1. runs the CUDA tests (pytest tests/test_cuda: every loss and head on CUDA
#      against the CPU, fp16/bf16 autocast, training through dist_train.sh with
#      kill + resume and preemption),
#   2. prints the CUDA benchmark table of the losses against mmseg's CE
#      (tools/analysis_tools/benchmark_losses.py --device cuda: 2x19x512x1024
#      and 8x19x512x1024),
#   3. trains the UNet base on the synthetic data for 50 iterations on one GPU
#      through tools/dist_train.sh (torchrun, NCCL, SyncBN),
# and ends with one summary line ("gpu_check: PASS ..." or "gpu_check: FAIL
# ..."). Exit status: 0 when every step passed (losses over their speed or
# memory targets are counted in the summary and named at the end of the
# benchmark's output, but do not fail the check), 1 when a step failed, 2
# without a usable GPU (one line saying why, nothing else run).
#
# The plugin needs no compiled mmcv op, so an mmcv built with CPU ops only
# (docs/install.md, "On a GPU node") passes too.
#
# Environment: PYTHON (default python), GPU_CHECK_DIR (logs and work dirs;
# default work_dirs/gpu_check/<date-time>), PYTEST_ARGS (extra pytest options).
set -uo pipefail

PY=${PYTHON:-python}
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT" || exit 2
RUN_TESTS=1 RUN_BENCH=1 RUN_TRAIN=1
for arg in "$@"; do
  case "$arg" in
    --no-tests) RUN_TESTS=0 ;;
    --no-benchmark) RUN_BENCH=0 ;;
    --no-training) RUN_TRAIN=0 ;;
    -h|--help) sed -n '2,28p' "$0"; exit 0 ;;
    *) echo "gpu_check: unknown option $arg (see --help)" >&2; exit 2 ;;
  esac
done

# --- a GPU torch can use, or one line saying why not -----------------------
WHY=$("$PY" -m mmseg_longtail.analysis.gpu_check reason 2>&1)
if [ $? -ne 0 ]; then
  echo "gpu_check: no GPU: ${WHY##*$'\n'}" >&2
  exit 2
fi

OUT=${GPU_CHECK_DIR:-$ROOT/work_dirs/gpu_check/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
T0=$(date +%s)
say() { echo "[gpu_check $(( $(date +%s) - T0 ))s] $*"; }

# --- the machine and the versions -------------------------------------------
say "GPU and versions"
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi --query-gpu=index,name,memory.total,driver_version \
    --format=csv,noheader 2>/dev/null | sed 's/^/  nvidia-smi: /'
fi
"$PY" -m mmseg_longtail.analysis.gpu_check versions
[ $? -eq 0 ] || { echo "gpu_check: FAIL: the packages do not import (see above)"; exit 1; }

FAILED=() NOTES=()

# --- 1. CUDA tests ------------------------------------------------------------
if [ "$RUN_TESTS" = 1 ]; then
  say "CUDA tests: pytest tests/test_cuda (log: $OUT/tests.log)"
  # shellcheck disable=SC2086
  "$PY" -m pytest tests/test_cuda -q -rfE ${PYTEST_ARGS:-} 2>&1 | tee "$OUT/tests.log"
  rc=${PIPESTATUS[0]}
  line=$(grep -E '^(=+ )?[0-9]+ (passed|failed|error)' "$OUT/tests.log" | tail -1 | tr -d '=' | xargs)
  if [ "$rc" -eq 0 ]; then NOTES+=("tests: ${line:-passed}")
  else FAILED+=("tests (${line:-exit $rc})"); fi
fi

# --- 2. CUDA benchmark ----------------------------------------------------------
if [ "$RUN_BENCH" = 1 ]; then
  say "CUDA benchmark of the losses (log: $OUT/benchmark.log)"
  "$PY" tools/analysis_tools/benchmark_losses.py --device cuda --markdown \
    --summary 2>&1 | tee "$OUT/benchmark.log"
  rc=${PIPESTATUS[0]}
  line=$(grep '^benchmark: ' "$OUT/benchmark.log" | tail -1)
  if [ "$rc" -eq 0 ] && [ -n "$line" ]; then
    count=${line#benchmark: }
    NOTES+=("benchmark: ${count%%:*} (named in $OUT/benchmark.log)")
  else FAILED+=("benchmark (exit $rc)"); fi
fi

# --- 3. short training ------------------------------------------------------------
if [ "$RUN_TRAIN" = 1 ]; then
  say "training: UNet base, 50 iterations, tools/dist_train.sh on 1 GPU (log: $OUT/train.log)"
  CFG="$OUT/unet_synthetic_50i.py"
  "$PY" -m mmseg_longtail.analysis.gpu_check config "$CFG"
  start=$(date +%s)
  CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES:-0} PYTHON="$PY" \
    PORT=${PORT:-$((29500 + RANDOM % 1000))} \
    bash tools/dist_train.sh "$CFG" 1 --work-dir "$OUT/train" 2>&1 | tee "$OUT/train.log"
  rc=${PIPESTATUS[0]}
  secs=$(( $(date +%s) - start ))
  if [ "$rc" -eq 0 ] && [ -f "$OUT/train/iter_50.pth" ]; then
    miou=$(grep -oE 'mIoU: [0-9.]+' "$OUT/train.log" | tail -1)
    NOTES+=("training: 50 iterations in ${secs}s${miou:+ ($miou)}")
  else FAILED+=("training (exit $rc)"); fi
fi

# --- one summary line -------------------------------------------------------------
GPU=$("$PY" -c 'import torch; print(torch.cuda.get_device_name(0))' 2>/dev/null)
JOINED=$(IFS=';'; echo "${NOTES[*]}" | sed 's/;/; /g')
if [ ${#FAILED[@]} -eq 0 ]; then
  echo "gpu_check: PASS on ${GPU}: ${JOINED:-nothing run} (logs: $OUT)"
  exit 0
fi
FAILS=$(IFS=';'; echo "${FAILED[*]}" | sed 's/;/; /g')
echo "gpu_check: FAIL on ${GPU}: ${FAILS}${JOINED:+; passed: $JOINED} (logs: $OUT)"
exit 1
