#!/usr/bin/env bash
# Testing on a SLURM cluster with srun (see slurm_train.sh for the variables).
#
#   [GPUS=4] [GPUS_PER_NODE=4] [CPUS_PER_TASK=5] [SRUN_ARGS=...] \
#     tools/slurm_test.sh PARTITION JOB_NAME CONFIG CHECKPOINT [test.py options...]
set -euo pipefail
if [[ $# -lt 4 ]]; then
  echo "usage: $0 PARTITION JOB_NAME CONFIG CHECKPOINT [test.py options...]" >&2
  exit 2
fi
# shellcheck source=slurm/srun_tool.sh
source "$(dirname "$0")/slurm/srun_tool.sh"
srun_tool "$1" "$2" test.py "${@:3}"
