#!/usr/bin/env bash
# Training on a SLURM cluster with srun (one task per GPU, --launcher slurm).
#
#   [GPUS=4] [GPUS_PER_NODE=4] [CPUS_PER_TASK=5] [SRUN_ARGS=...] \
#     tools/slurm_train.sh PARTITION JOB_NAME CONFIG [train.py options...]
#
# GPUS is the number of tasks (processes) in all. CPU nodes: GPUS_PER_NODE=0
# requests no --gres and places TASKS_PER_NODE tasks per node (default: GPUS,
# i.e. one node); the processes then talk over gloo (mmseg_longtail/compat.py).
# MASTER_PORT defaults to a port derived from the job id, so several jobs can
# share a node. PYTHON picks the interpreter (default: python).
set -euo pipefail
if [[ $# -lt 3 ]]; then
  echo "usage: $0 PARTITION JOB_NAME CONFIG [train.py options...]" >&2
  exit 2
fi
# shellcheck source=slurm/srun_tool.sh
source "$(dirname "$0")/slurm/srun_tool.sh"
srun_tool "$1" "$2" train.py "${@:3}"
