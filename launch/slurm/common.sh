# Sourced by the sbatch templates. braid_run STATUS_FILE COMMAND... runs the command (mpirun and
# the ranks) in the background, forwards SIGUSR1 (Slurm's --signal warning) to it, and turns the
# first SIGTERM/SIGINT (a time limit, scancel) into SIGUSR1 too: mpirun forwards SIGUSR1 to every
# rank at once, which saves a checkpoint at its next step boundary and exits, whereas mpirun
# answers SIGTERM by killing the ranks (SIGTERM after odls_base_sigkill_timeout seconds, SIGKILL
# after twice that). A second SIGTERM/SIGINT is passed on as it is. It waits for the command and
# requeues the job when the run recorded that it stopped after saving a checkpoint: its status
# file (pretrain --status-file) says "preempted". That record, not mpirun's exit code, decides:
# mpirun exits 1 when it was sent SIGTERM itself, even though every rank saved and stopped.
# BRAID_KILL_TIMEOUT (default 30) is the templates' odls_base_sigkill_timeout: when Slurm signals
# mpirun and the ranks directly (a time limit or a preemption signals every process of the job),
# the ranks have about twice that to finish their checkpoint (and Slurm's KillWait or GraceTime at
# most). Its price: mpirun waits twice that before it exits after any rank stopped or failed.
braid_run() {
  local status=$1
  shift
  rm -f "$status"
  "$@" &
  local pid=$!
  BRAID_STOPS=0
  trap "kill -USR1 $pid 2>/dev/null" USR1
  trap "BRAID_STOPS=\$((BRAID_STOPS + 1)); if ((BRAID_STOPS == 1)); then kill -USR1 $pid; else kill -TERM $pid; fi 2>/dev/null" TERM INT
  local rc=0
  while true; do
    wait "$pid"
    rc=$?
    kill -0 "$pid" 2>/dev/null || break  # `wait` returned because of a trap: wait again
  done
  local how
  how=$(cat "$status" 2>/dev/null || echo "no status recorded")
  echo "[slurm] run ended: $how (mpirun exit $rc)"
  # The record decides the job's exit code too: a run that completed is a success even when mpirun
  # was signaled at its very end (it then exits 1).
  [[ $how == completed* ]] && rc=0
  if [[ $how == preempted* && -n ${SLURM_JOB_ID:-} ]]; then
    echo "[slurm] preempted after a checkpoint; requeueing job $SLURM_JOB_ID"
    if scontrol requeue "$SLURM_JOB_ID"; then
      # Slurm ends this script as part of the requeue. Exiting first would race with it: a job
      # that ends before the request is handled is recorded as finished, not requeued.
      trap - USR1 TERM INT
      sleep 300
    fi
  fi
  return "$rc"
}
