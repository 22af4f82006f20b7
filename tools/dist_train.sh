#!/usr/bin/env bash
# Distributed training on one or more machines with torchrun.
#
#   [NNODES=1] [NODE_RANK=0] [PORT=29500] [MASTER_ADDR=127.0.0.1] \
#     tools/dist_train.sh CONFIG NGPUS [train.py options...]
#
# NGPUS processes per machine (one per GPU; on a machine without CUDA they are
# CPU processes talking over gloo, see mmseg_longtail/engine/cpu_distributed.py). Multi-node:
# run it on every node with the same NNODES, MASTER_ADDR and PORT and that
# node's NODE_RANK. PYTHON picks the interpreter (default: python).
set -euo pipefail
if [[ $# -lt 2 ]]; then
  echo "usage: $0 CONFIG NGPUS [train.py options...]" >&2
  exit 2
fi
# shellcheck source=misc/torchrun_tool.sh
source "$(dirname "$0")/misc/torchrun_tool.sh"
torchrun_tool train.py "$2" "$1" "${@:3}"
