#!/usr/bin/env bash
# Distributed testing with torchrun (variables as in dist_train.sh).
#
#   tools/dist_test.sh CONFIG CHECKPOINT NGPUS [test.py options...]
set -euo pipefail
if [[ $# -lt 3 ]]; then
  echo "usage: $0 CONFIG CHECKPOINT NGPUS [test.py options...]" >&2
  exit 2
fi
# shellcheck source=misc/torchrun_tool.sh
source "$(dirname "$0")/misc/torchrun_tool.sh"
torchrun_tool test.py "$3" "$1" "$2" "${@:4}"
