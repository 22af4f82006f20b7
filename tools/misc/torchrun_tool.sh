# Sourced by tools/dist_train.sh and tools/dist_test.sh.
#
# torchrun_tool TOOL NPROC [tool args...]
#   runs tools/TOOL in NPROC processes per machine with torchrun and
#   --launcher pytorch. mmseg's variables: NNODES (1), NODE_RANK (0),
#   PORT (29500), MASTER_ADDR (127.0.0.1); PYTHON picks the interpreter.
torchrun_tool() {
  local tool=$1 nproc=$2
  shift 2
  local root
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
  PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}" \
  exec "${PYTHON:-python}" -m torch.distributed.run \
    --nnodes="${NNODES:-1}" \
    --node_rank="${NODE_RANK:-0}" \
    --master_addr="${MASTER_ADDR:-127.0.0.1}" \
    --master_port="${PORT:-29500}" \
    --nproc_per_node="$nproc" \
    "$root/tools/$tool" "$@" --launcher pytorch
}
