#!/usr/bin/env bash
# Training on a SLURM cluster: a batch job (sbatch) whose step runs
# tools/train.py on GPUS tasks with srun (--launcher slurm); this script
# follows the job's log and returns its exit status.
#
#   [GPUS=4] [GPUS_PER_NODE=4] [CPUS_PER_TASK=5] [SRUN_ARGS=...] \
#   [SBATCH_ARGS=...] [PREEMPT_SIGNAL_SECONDS=180] [LOG_DIR=...] [WAIT=1] \
#     tools/slurm_train.sh PARTITION JOB_NAME CONFIG [train.py options...]
#
# GPUS is the number of tasks (processes) in all. CPU nodes: GPUS_PER_NODE=0
# requests no --gres and places TASKS_PER_NODE tasks per node (default: GPUS,
# i.e. one node); the processes then talk over gloo (mmseg_longtail/engine/cpu_distributed.py).
# MASTER_PORT defaults to a port derived from the job id, so several jobs can
# share a node. PYTHON picks the interpreter (default: python). SBATCH_ARGS
# adds sbatch flags (e.g. '--time=4:00:00 --mem=32G').
#
# Preemptible: the job asks for --requeue and --signal=B:USR1@<seconds>
# (PREEMPT_SIGNAL_SECONDS before its time limit; 0 asks for neither). On that
# signal, or on SIGTERM, the runtime base's PreemptionHook checkpoints the
# current iteration and exits with 75; the job then requeues itself and the
# requeued job resumes from that checkpoint (--resume is added on a restart),
# bit-exactly with ExactResumeHook (docs/grid.md, "Preemptible runs").
#
# The log is LOG_DIR/JOB_NAME-<job id>.out (LOG_DIR defaults to
# work_dirs/slurm_logs); a requeued job appends to it. WAIT=0 returns after
# the submission.
set -euo pipefail
if [[ $# -lt 3 ]]; then
  echo "usage: $0 PARTITION JOB_NAME CONFIG [train.py options...]" >&2
  exit 2
fi
PARTITION=$1
JOB_NAME=$2
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=slurm/srun_tool.sh
source "$ROOT/tools/slurm/srun_tool.sh"
slurm_resources
LOG_DIR=${LOG_DIR:-work_dirs/slurm_logs}
mkdir -p "$LOG_DIR"
LOG="$(cd "$LOG_DIR" && pwd)/$JOB_NAME-%j.out"
SECONDS_BEFORE=${PREEMPT_SIGNAL_SECONDS:-180}
PREEMPT=()
if [[ $SECONDS_BEFORE -gt 0 ]]; then
  PREEMPT=(--requeue --signal="B:USR1@$SECONDS_BEFORE")
fi

# the batch script: train.py's arguments quoted into it, --resume added when
# SLURM restarts the job after a requeue
script=$(cat <<SCRIPT
#!/usr/bin/env bash
set -uo pipefail
source $(printf '%q' "$ROOT/tools/slurm/srun_tool.sh")
source $(printf '%q' "$ROOT/tools/slurm/preemptible.sh")
args=($(printf '%q ' "${@:3}"))
if [[ \${SLURM_RESTART_COUNT:-0} -gt 0 ]]; then
  echo "[slurm_train] restart \$SLURM_RESTART_COUNT of job \$SLURM_JOB_ID: resuming"
  args+=(--resume)
fi
SRUN_EXEC=0 srun_tool $(printf '%q %q' "$PARTITION" "$JOB_NAME") train.py "\${args[@]}"
echo "+ \${SRUN_COMMAND[*]}"
run_preemptible "\${SRUN_COMMAND[@]}"
SCRIPT
)
# shellcheck disable=SC2086  # SBATCH_ARGS: several flags in one string
sbatch_cmd=(sbatch --parsable -p "$PARTITION" --job-name="$JOB_NAME"
  "${SLURM_RESOURCES[@]}" "${PREEMPT[@]}" --output="$LOG" --open-mode=append
  ${SBATCH_ARGS:-})
echo "+ ${sbatch_cmd[*]}"
job=$(printf '%s\n' "$script" | "${sbatch_cmd[@]}")
job=${job%%;*}
LOG=${LOG//%j/$job}
echo "submitted job $job; log: $LOG"
if [[ ${WAIT:-1} == 0 ]]; then
  exit 0
fi

# follow the log until the job has left the queue for good (a requeued job
# is pending again, not finished)
touch "$LOG"
tail -n +1 -F "$LOG" 2>/dev/null &
tailer=$!
trap 'kill $tailer 2>/dev/null' EXIT
job_state() {
  info=$(scontrol show job "$job" -o 2>/dev/null || true)
  state=$(sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p' <<<"$info")
}
ended() {
  case $state in
    COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY|BOOT_FAIL|DEADLINE|'')
      return 0 ;;
  esac
  return 1
}
while :; do
  job_state
  if ended; then
    # a job that requeues itself passes through an ended state on its way
    # back to pending: look again for a few seconds before believing it
    for _ in {1..10}; do
      sleep 1
      job_state
      ended || break
    done
    ended && break
  fi
  sleep 2
done
sleep 1  # the last lines of the log
code=$(sed -n 's/.* ExitCode=\([0-9]*\):\([0-9]*\).*/\1 \2/p' <<<"$info")
echo "job $job ended: ${state:-unknown} (ExitCode ${code/ /:})"
[[ $state == COMPLETED ]] && exit 0
rc=${code%% *}
[[ ${rc:-0} -gt 0 ]] && exit "$rc"
exit 1
