#!/usr/bin/env bash
# Slurm for real, on this machine: installs slurm-wlm and munge if absent, starts munged,
# slurmctld and slurmd with a generated localhost configuration, submits
# launch/slurm/single_node.sbatch with the tiny GPT on 2 tasks, preempts it with SIGUSR1 (as
# Slurm's --signal does), lets it requeue and resume, then sends SIGTERM to mpirun (which stops
# the ranks with SIGTERM and exits 1 itself, so the requeue must come from the run's status
# file), lets it requeue and resume again, and checks: the job's final state, two
# requeues, a checkpoint, and losses equal to an uninterrupted run. Every daemon it started is
# stopped.
set -euo pipefail
bin=$1
src=$2
cd "$src"
export DEBIAN_FRONTEND=noninteractive
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO=sudo
  $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q --no-install-recommends slurm-wlm munge >/dev/null
fi
tools/data/prepare_default_corpus.sh build/data/fortunes "$bin" >/dev/null
tmp=$(mktemp -d /tmp/braid-slurm.XXXXXX)
chmod 755 "$tmp"
conf=$tmp/slurm.conf
pids=()
cleanup() {
  scancel --full "${job:-0}" 2>/dev/null || true
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  pkill -f "slurmctld -D -f $conf" 2>/dev/null || true
  pkill -f "slurmd -D -f $conf" 2>/dev/null || true
  pkill -f "munged.*$tmp" 2>/dev/null || true
  sleep 1
  rm -rf "$tmp"
}
trap cleanup EXIT
host=$(hostname -s)
cpus=$(getconf _NPROCESSORS_ONLN)  # not nproc: it honours OMP_NUM_THREADS
mkdir -p "$tmp/munge" "$tmp/spool/ctld" "$tmp/spool/d" "$tmp/log"
dd if=/dev/urandom bs=1 count=1024 of="$tmp/munge/munge.key" 2>/dev/null
chmod 700 "$tmp/munge"; chmod 400 "$tmp/munge/munge.key"
munged --force --key-file="$tmp/munge/munge.key" --socket="$tmp/munge/socket" \
  --pid-file="$tmp/munge/pid" --log-file="$tmp/munge/log" --seed-file="$tmp/munge/seed"
export MUNGE_SOCKET=$tmp/munge/socket
cat > "$conf" <<CONF
ClusterName=braidtest
SlurmctldHost=$host
AuthType=auth/munge
AuthInfo=socket=$tmp/munge/socket,cred_expire=5
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
SlurmctldPort=16817
SlurmdPort=16818
StateSaveLocation=$tmp/spool/ctld
SlurmdSpoolDir=$tmp/spool/d
SlurmctldPidFile=$tmp/ctld.pid
SlurmdPidFile=$tmp/d.pid
SlurmctldLogFile=$tmp/log/ctld.log
SlurmdLogFile=$tmp/log/d.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/builtin
ReturnToService=2
JobRequeue=1
MpiDefault=none
NodeName=$host CPUs=$cpus State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
CONF
export SLURM_CONF=$conf
slurmctld -D -f "$conf" > "$tmp/log/ctld.out" 2>&1 &
pids+=($!)
slurmd -D -f "$conf" > "$tmp/log/d.out" 2>&1 &
pids+=($!)
for _ in $(seq 1 60); do
  sinfo -h -o %T 2>/dev/null | grep -qE "idle|mixed" && break
  sleep 0.5
done
sinfo -h -o %T | grep -qE "idle|mixed" || { echo "FAIL: slurm did not come up"; cat "$tmp/log/"*; exit 1; }
echo "ok   munged, slurmctld and slurmd up on $host ($cpus CPUs)"
run=$tmp/run
args=(--recipe recipes/gpt/tiny.yaml --set train.train_steps=90 --set train.eval_steps=0
      --set logging.interval=1000 --set logging.run_dir="$run")
# The uninterrupted reference, outside Slurm.
OMP_NUM_THREADS=1 mpirun --allow-run-as-root --oversubscribe --bind-to none -np 2 "$bin/pretrain" \
  "${args[@]}" --set logging.run_dir="$tmp/straight" > "$tmp/straight.log" 2>&1
mkdir -p runs
job=$(sbatch --parsable --ntasks=2 --output="$tmp/job-%j.out" launch/slurm/single_node.sbatch "${args[@]}")
echo "ok   submitted job $job"
for _ in $(seq 1 1200); do
  [[ -f $run/losses.tsv ]] && (( $(wc -l < "$run/losses.tsv") >= 15 )) && break
  sleep 0.1
done
[[ -f $run/losses.tsv ]] || { echo "FAIL: the job never started training"; scontrol show job "$job"; cat "$tmp"/job-*.out; exit 1; }
# A requeued job waits for its begin time: Slurm sets it cred_expire + 1 s ahead (5 + 1 here,
# AuthInfo above; 120 + 1 by default), so that the node has forgotten the revoked credential of
# the job's previous run. Starting it earlier (StartTime=now) loses that race now and then: the
# job is killed as "non-startable: Job credential revoked" and ends FAILED. Slurm may also hold
# the job, or drain this one node when the killed batch step ends slowly: release and resume
# them (the test is about braid's requeue, not Slurm's policies).
start_if_pending() {
  if scontrol show job "$job" 2>/dev/null | grep -q "JobState=PENDING"; then
    scontrol release "$job" 2>/dev/null || true
    if sinfo -h -o %T 2>/dev/null | grep -qiE "drain|down"; then
      scontrol update NodeName="$host" State=RESUME 2>/dev/null || true
    fi
  fi
}
diagnose() {
  scontrol show job "$job" 2>/dev/null | grep -E "JobState|Reason|BeginTime|Restarts" || true
  sinfo -R 2>/dev/null || true
  echo "--- slurmctld and slurmd logs (last lines)"
  tail -n 25 "$tmp/log/ctld.log" "$tmp/log/d.log" 2>/dev/null || true
}
scancel --signal=USR1 --batch "$job"
# After the requeued job has resumed and trained on: SIGTERM to every process of the batch step.
for _ in $(seq 1 1200); do
  [[ -f $run/losses.tsv ]] && (( $(wc -l < "$run/losses.tsv") >= 45 )) && break
  start_if_pending
  sleep 0.25
done
(( $(wc -l < "$run/losses.tsv") >= 45 )) || { echo "FAIL: the requeued job did not train on"; diagnose; cat "$tmp"/job-*.out; exit 1; }
# SIGTERM to mpirun itself (scancel --signal=TERM would mark the job cancelled; Slurm sends it
# at the end of a job, when no requeue is possible, hence --signal=B:USR1 ahead of time limits).
mpirun_pid=$(pgrep -f "^mpirun .*build/bin/pretrain --status-file" | head -1)
[[ -n $mpirun_pid ]] || { echo "FAIL: no mpirun in the requeued job"; diagnose; exit 1; }
kill -TERM "$mpirun_pid"
state=""
for _ in $(seq 1 1200); do
  state=$(scontrol show job "$job" 2>/dev/null | grep -o "JobState=[A-Z_]*" | cut -d= -f2 || true)
  [[ $state == COMPLETED || $state == FAILED || $state == CANCELLED ]] && break
  start_if_pending
  sleep 0.25
done
cat "$tmp"/job-*.out > "$tmp/job.log" 2>/dev/null || true
[[ $state == COMPLETED ]] || { echo "FAIL: job state $state"; diagnose; cat "$tmp/job.log"; exit 1; }
(( $(grep -c "preempted after a checkpoint; requeueing" "$tmp/job.log") == 2 )) || { echo "FAIL: not two requeues in the job log"; cat "$tmp/job.log"; exit 1; }
grep -q "run ended: preempted step [0-9]* (mpirun exit 1)" "$tmp/job.log" || { echo "FAIL: the SIGTERM preemption did not end as expected"; cat "$tmp/job.log"; exit 1; }
grep -q "resumed from" "$tmp/job.log" || { echo "FAIL: the requeued job did not resume"; cat "$tmp/job.log"; exit 1; }
[[ $(cat "$run/checkpoints/latest") == step_00000090 ]]
cmp <(cut -f1,2 "$tmp/straight/losses.tsv") <(cut -f1,2 "$run/losses.tsv") \
  || { echo "FAIL: losses differ from the uninterrupted run"; exit 1; }
echo "ok   job $job: preempted by SIGUSR1 and by SIGTERM (mpirun exit 1), requeued twice from the status file, resumed, COMPLETED; 90 losses equal to the uninterrupted run"
trap - EXIT
cleanup
if pgrep -f "slurmctld -D -f $conf|slurmd -D -f $conf|munged.*braid-slurm" >/dev/null; then
  echo "FAIL: daemons left running"; exit 1
fi
echo "ok   every daemon the test started is gone"
