# Slurm for the tests (sourced, bash): munge, a generated slurm.conf, slurmctld and slurmd, and the
# preemption sequence that tests/launch/slurm_test.sh (one node) and two_node_test.sh (two hosts)
# both run. Every daemon runs in the foreground of a background shell, its state under the test's
# own folder; slurm_stop ends them all.
#
#   slurm_install                 installs Debian's slurm-wlm and munge when absent
#   slurm_munge DIR               starts munged with a fresh key in DIR/munge, exports MUNGE_SOCKET
#   slurm_conf DIR CTLD SPOOL NODE_LINES  writes DIR/slurm.conf (CTLD: SlurmctldHost's value,
#                                 SPOOL: slurmd's spool folder), exports SLURM_CONF
#   SLURM_ON=(...)                a command prefix that runs where slurmctld is reachable (empty: here)
#   slurm_wait_nodes N            waits until N nodes are idle; an error after 30 s
#   slurm_preempt JOB RUN LOG     the sequence below; ends with the job's final state checked
#   slurm_stop DIR                stops munged, slurmctld and slurmd started for DIR
#
# slurm_preempt: when RUN/losses.tsv has 15 steps, SIGUSR1 to the batch script (as Slurm's
# --signal=B:USR1 does before a time limit); the job checkpoints, requeues and resumes. At 45 steps,
# SIGTERM to mpirun and its ranks, as Slurm signals every process of a job at a time limit or a
# preemption (mpirun then exits 1 after its odls_base_sigkill_timeout, so the requeue must come
# from the run's status file; ranks on other nodes hear of the stop in the next step's vote); it requeues and resumes again. The job must end COMPLETED after two
# requeues, with LOG (the job's output) saying so. (Submit with BRAID_KILL_TIMEOUT small: mpirun
# waits twice that before it exits.)

SLURM_ON=()
SLURM_DAEMON_LOGS=()  # slurmd logs for slurm_diagnose

slurm_install() {
  if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    local sudo=""
    [[ $(id -u) -ne 0 ]] && sudo=sudo
    DEBIAN_FRONTEND=noninteractive $sudo apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends \
      slurm-wlm munge >/dev/null
  fi
}

slurm_munge() {
  local dir=$1/munge
  mkdir -p "$dir"
  dd if=/dev/urandom bs=1 count=1024 of="$dir/munge.key" 2>/dev/null
  chmod 700 "$dir"
  chmod 400 "$dir/munge.key"
  munged --force --key-file="$dir/munge.key" --socket="$dir/socket" --pid-file="$dir/pid" \
    --log-file="$dir/log" --seed-file="$dir/seed"
  export MUNGE_SOCKET=$dir/socket
}

slurm_conf() {
  local dir=$1 ctld=$2 spool=$3 nodes=$4
  mkdir -p "$dir/spool/ctld" "$dir/log"
  cat > "$dir/slurm.conf" <<CONF
ClusterName=braidtest
SlurmctldHost=$ctld
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCKET,cred_expire=5
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
SlurmctldPort=16817
SlurmdPort=16818
StateSaveLocation=$dir/spool/ctld
SlurmdSpoolDir=$spool
SlurmctldPidFile=$dir/ctld.pid
SlurmdPidFile=$spool/slurmd.pid
SlurmctldLogFile=$dir/log/ctld.log
SlurmdLogFile=$spool/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/builtin
ReturnToService=2
JobRequeue=1
MpiDefault=none
$nodes
CONF
  export SLURM_CONF=$dir/slurm.conf
}

slurm_wait_nodes() {
  local want=$1
  for _ in $(seq 1 60); do
    (( $("${SLURM_ON[@]}" sinfo -h -N -o %T 2>/dev/null | grep -cE "idle|mixed") >= want )) && return 0
    sleep 0.5
  done
  echo "FAIL: slurm did not bring up $want node(s)"
  "${SLURM_ON[@]}" sinfo -N 2>&1 || true
  return 1
}

# A requeued job waits for its begin time: Slurm sets it cred_expire + 1 s ahead (5 + 1 here,
# AuthInfo above; 120 + 1 by default), so that the node has forgotten the revoked credential of the
# job's previous run. Starting it earlier (StartTime=now) loses that race now and then: the job is
# killed as "non-startable: Job credential revoked" and ends FAILED. Slurm may also hold the job,
# or drain a node when the killed batch step ends slowly: release and resume them (the tests are
# about braid's requeue, not Slurm's policies).
slurm_start_if_pending() {
  local job=$1 node
  if "${SLURM_ON[@]}" scontrol show job "$job" 2>/dev/null | grep -q "JobState=PENDING"; then
    "${SLURM_ON[@]}" scontrol release "$job" 2>/dev/null || true
    for node in $("${SLURM_ON[@]}" sinfo -h -N -t drain,down -o %N 2>/dev/null); do
      "${SLURM_ON[@]}" scontrol update NodeName="$node" State=RESUME 2>/dev/null || true
    done
  fi
}

slurm_diagnose() {
  local job=$1
  "${SLURM_ON[@]}" scontrol show job "$job" 2>/dev/null | grep -E "JobState|Reason|BeginTime|Restarts" || true
  "${SLURM_ON[@]}" sinfo -R 2>/dev/null || true
  echo "--- slurmctld and slurmd logs (last lines)"
  tail -n 25 "$(dirname "$SLURM_CONF")/log/ctld.log" "${SLURM_DAEMON_LOGS[@]}" 2>/dev/null || true
}

# Waits until RUN/losses.tsv has N lines, starting the job when it waits in the queue.
slurm_wait_losses() {
  local job=$1 run=$2 n=$3
  for _ in $(seq 1 1200); do
    [[ -f $run/losses.tsv ]] && (( $(wc -l < "$run/losses.tsv") >= n )) && return 0
    slurm_start_if_pending "$job"
    sleep 0.1
  done
  return 1
}

slurm_preempt() {
  local job=$1 run=$2 log=$3 state="" mpirun_pid
  slurm_wait_losses "$job" "$run" 15 \
    || { echo "FAIL: the job never started training"; slurm_diagnose "$job"; cat "$log"; return 1; }
  "${SLURM_ON[@]}" scancel --signal=USR1 --batch "$job"
  slurm_wait_losses "$job" "$run" 45 \
    || { echo "FAIL: the requeued job did not train on"; slurm_diagnose "$job"; cat "$log"; return 1; }
  # SIGTERM to mpirun itself (scancel --signal=TERM would mark the job cancelled; Slurm sends it at
  # the end of a job, when no requeue is possible, hence --signal=B:USR1 ahead of time limits).
  mpirun_pid=$(pgrep -f "^mpirun .*build/bin/pretrain --status-file" | head -1)
  [[ -n $mpirun_pid ]] || { echo "FAIL: no mpirun in the requeued job"; slurm_diagnose "$job"; return 1; }
  kill -TERM "$mpirun_pid" $(pgrep -P "$mpirun_pid" -f "bin/pretrain")  # mpirun and its ranks
  for _ in $(seq 1 1200); do
    state=$("${SLURM_ON[@]}" scontrol show job "$job" 2>/dev/null | grep -o "JobState=[A-Z_]*" | cut -d= -f2 || true)
    [[ $state == COMPLETED || $state == FAILED || $state == CANCELLED ]] && break
    slurm_start_if_pending "$job"
    sleep 0.25
  done
  [[ $state == COMPLETED ]] || { echo "FAIL: job state $state"; slurm_diagnose "$job"; cat "$log"; return 1; }
  (( $(grep -c "preempted after a checkpoint; requeueing" "$log") == 2 )) \
    || { echo "FAIL: not two requeues in the job log"; cat "$log"; return 1; }
  grep -q "run ended: preempted step [0-9]* (mpirun exit 1)" "$log" \
    || { echo "FAIL: the SIGTERM preemption did not end as expected"; cat "$log"; return 1; }
  grep -q "resumed from" "$log" || { echo "FAIL: the requeued job did not resume"; cat "$log"; return 1; }
}

slurm_stop() {
  local dir=$1
  pkill -f "slurmctld -D -f $dir/slurm.conf" 2>/dev/null || true
  pkill -f "slurmd -D -f $dir/slurm.conf" 2>/dev/null || true
  pkill -f "munged.*$dir/munge" 2>/dev/null || true
  sleep 1
}

# Lines naming whatever slurm_stop should have ended and did not.
slurm_leftovers() {
  local dir=$1
  pgrep -af "slurmctld -D -f $dir/slurm.conf|slurmd -D -f $dir/slurm.conf|munged.*$dir/munge" \
    | sed 's/^/daemon left: /'
  true
}
