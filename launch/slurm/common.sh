# Sourced by the sbatch templates. braid_run STATUS_FILE COMMAND... runs the command (mpirun and
# the ranks) in the background, forwards SIGUSR1 (Slurm's --signal warning) and SIGTERM/SIGINT
# (a time limit, scancel) to it, waits for it, and requeues the job when the run recorded that it
# stopped after saving a checkpoint: its status file (pretrain --status-file) says "preempted".
# That record, not mpirun's exit code, decides: mpirun exits 1 when it was sent SIGTERM itself,
# even though every rank saved and stopped cleanly.
braid_run() {
  local status=$1
  shift
  rm -f "$status"
  "$@" &
  local pid=$!
  trap "kill -USR1 $pid 2>/dev/null" USR1
  trap "kill -TERM $pid 2>/dev/null" TERM INT
  local rc=0
  while true; do
    wait "$pid"
    rc=$?
    kill -0 "$pid" 2>/dev/null || break  # `wait` returned because of a trap: wait again
  done
  local how
  how=$(cat "$status" 2>/dev/null || echo "no status recorded")
  echo "[slurm] run ended: $how (mpirun exit $rc)"
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
