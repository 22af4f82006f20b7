# Sourced by the batch scripts of tools/slurm_train.sh and of tools/grid.py's
# job arrays.
#
# run_preemptible CMD [args...]
#   runs CMD in the background of a SLURM batch script and passes SIGUSR1 and
#   SIGTERM on to it: a job submitted with --signal=B:USR1@<seconds> gets its
#   warning in the batch shell only, and the training's PreemptionHook must
#   see it (srun forwards the signal to every task). When CMD exits with
#   PREEMPT_EXIT_CODE (75: the hook wrote a checkpoint and stopped), or
#   with any other non-zero status after a signal was passed on (srun's
#   --kill-on-bad-exit may terminate the ranks still exiting once the first
#   one has exited with 75, and srun then reports the termination), the job
#   requeues itself (`scontrol requeue`, which needs --requeue) and the
#   requeued job resumes from the last checkpoint. Returns CMD's exit
#   status, 0 after a requeue.
run_preemptible() {
  local child rc warned=
  "$@" &
  child=$!
  trap 'warned=USR1; kill -USR1 "$child" 2>/dev/null' USR1
  trap 'warned=TERM; kill -TERM "$child" 2>/dev/null' TERM
  # a trapped signal interrupts `wait` (status > 128) while CMD goes on;
  # bash keeps the status of an exited child for a later `wait`
  while :; do
    wait "$child"
    rc=$?
    if ! kill -0 "$child" 2>/dev/null; then
      wait "$child" 2>/dev/null
      local again=$?
      [[ $again -ne 127 ]] && rc=$again
      break
    fi
  done
  trap - USR1 TERM
  if [[ -n ${SLURM_JOB_ID:-} && ( $rc -eq ${PREEMPT_EXIT_CODE:-75} ||
        ( -n $warned && $rc -ne 0 ) ) ]]; then
    echo "[preemptible] stopped after SIG${warned:-?} (exit $rc): requeueing job $SLURM_JOB_ID"
    scontrol requeue "$SLURM_JOB_ID"
    return 0
  fi
  return "$rc"
}
