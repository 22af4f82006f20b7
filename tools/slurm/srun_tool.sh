# Sourced by tools/slurm_train.sh and tools/slurm_test.sh.
#
# srun_tool PARTITION JOB_NAME TOOL [tool args...]
#   runs tools/TOOL on GPUS tasks with srun and --launcher=slurm, turning
#   mmseg's variables into srun flags: GPUS (tasks in all, default 4),
#   GPUS_PER_NODE (4; 0 on CPU nodes: no --gres, TASKS_PER_NODE tasks per
#   node, default all on one node), CPUS_PER_TASK (5), SRUN_ARGS (extra
#   flags). Every task exports MASTER_PORT (unless set) from the job id: the
#   same in all tasks of a job, different between jobs sharing a node.
#   PYTHON picks the interpreter (default: python).
srun_tool() {
  local partition=$1 job_name=$2 tool=$3
  shift 3
  local root gpus gpus_per_node tasks_per_node
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
  gpus=${GPUS:-4}
  gpus_per_node=${GPUS_PER_NODE:-4}
  local resources=()
  if [[ $gpus_per_node -gt 0 ]]; then
    tasks_per_node=$gpus_per_node
    resources+=(--gres="gpu:$gpus_per_node")
  else
    tasks_per_node=${TASKS_PER_NODE:-$gpus}
  fi
  if [[ $tasks_per_node -gt $gpus ]]; then
    tasks_per_node=$gpus
  fi
  resources+=(--ntasks="$gpus" --ntasks-per-node="$tasks_per_node"
              --cpus-per-task="${CPUS_PER_TASK:-5}")
  export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
  set -x
  # shellcheck disable=SC2086  # SRUN_ARGS: several flags in one string
  srun -p "$partition" --job-name="$job_name" "${resources[@]}" \
    --kill-on-bad-exit=1 ${SRUN_ARGS:-} \
    bash -c 'export MASTER_PORT=${MASTER_PORT:-$((20000 + SLURM_JOB_ID % 40000))}; exec "$@"' \
    srun-task "${PYTHON:-python}" -u "$root/tools/$tool" "$@" --launcher=slurm
}
