# Sourced by tools/slurm_train.sh and tools/slurm_test.sh.
#
# slurm_resources
#   sets the array SLURM_RESOURCES from mmseg's variables: GPUS (tasks in
#   all, default 4), GPUS_PER_NODE (4; 0 on CPU nodes: no --gres,
#   TASKS_PER_NODE tasks per node, default all on one node), CPUS_PER_TASK
#   (5).
# srun_tool PARTITION JOB_NAME TOOL [tool args...]
#   runs tools/TOOL on GPUS tasks with srun and --launcher=slurm, with those
#   resources and SRUN_ARGS (extra flags). Every task exports MASTER_PORT
#   (unless set) from the job id: the same in all tasks of a job, different
#   between jobs sharing a node. PYTHON picks the interpreter (default:
#   python). With SRUN_EXEC=0 the command is only stored in the array
#   SRUN_COMMAND (the batch script of slurm_train.sh runs it itself).
slurm_resources() {
  local gpus gpus_per_node tasks_per_node
  gpus=${GPUS:-4}
  gpus_per_node=${GPUS_PER_NODE:-4}
  SLURM_RESOURCES=()
  if [[ $gpus_per_node -gt 0 ]]; then
    tasks_per_node=$gpus_per_node
    SLURM_RESOURCES+=(--gres="gpu:$gpus_per_node")
  else
    tasks_per_node=${TASKS_PER_NODE:-$gpus}
  fi
  if [[ $tasks_per_node -gt $gpus ]]; then
    tasks_per_node=$gpus
  fi
  SLURM_RESOURCES+=(--ntasks="$gpus" --ntasks-per-node="$tasks_per_node"
                    --cpus-per-task="${CPUS_PER_TASK:-5}")
}

srun_tool() {
  local partition=$1 job_name=$2 tool=$3
  shift 3
  local root
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
  slurm_resources
  export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
  # shellcheck disable=SC2206  # SRUN_ARGS: several flags in one string
  SRUN_COMMAND=(srun -p "$partition" --job-name="$job_name"
    "${SLURM_RESOURCES[@]}" --kill-on-bad-exit=1 ${SRUN_ARGS:-}
    bash -c 'export MASTER_PORT=${MASTER_PORT:-$((20000 + SLURM_JOB_ID % 40000))}; exec "$@"'
    srun-task "${PYTHON:-python}" -u "$root/tools/$tool" "$@" --launcher=slurm)
  if [[ ${SRUN_EXEC:-1} != 0 ]]; then
    set -x
    "${SRUN_COMMAND[@]}"
  fi
}
