#!/usr/bin/env bash
# Slurm for real, on this machine: installs slurm-wlm and munge if absent, starts munged,
# slurmctld and slurmd with a generated localhost configuration, submits
# launch/slurm/single_node.sbatch with the tiny GPT on 2 tasks, preempts it with SIGUSR1 (as
# Slurm's --signal does), lets it requeue and resume, then sends SIGTERM to mpirun (which stops
# the ranks with SIGTERM and exits 1 itself, so the requeue must come from the run's status
# file), lets it requeue and resume again, and checks: the job's final state, two
# requeues, a checkpoint, and losses equal to an uninterrupted run. Every daemon it started is
# stopped. (The helpers, shared with two_node_test.sh: tests/lib/slurm.sh.)
set -euo pipefail
bin=$1
src=$2
cd "$src"
source tests/lib/slurm.sh
slurm_install
tools/data/prepare_default_corpus.sh build/data/fortunes "$bin" >/dev/null
tmp=$(mktemp -d /tmp/braid-slurm.XXXXXX)
chmod 755 "$tmp"
cleanup() {
  scancel --full "${job:-0}" 2>/dev/null || true
  slurm_stop "$tmp"
  rm -rf "$tmp"
}
trap cleanup EXIT
host=$(hostname -s)
cpus=$(getconf _NPROCESSORS_ONLN)  # not nproc: it honours OMP_NUM_THREADS
slurm_munge "$tmp"
slurm_conf "$tmp" "$host" "$tmp/spool/d" "NodeName=$host CPUs=$cpus State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES"
mkdir -p "$tmp/spool/d"
SLURM_DAEMON_LOGS=("$tmp/spool/d/slurmd.log")
slurmctld -D -f "$SLURM_CONF" > "$tmp/log/ctld.out" 2>&1 &
slurmd -D -f "$SLURM_CONF" > "$tmp/log/d.out" 2>&1 &
slurm_wait_nodes 1 || { cat "$tmp/log/"*; exit 1; }
echo "ok   munged, slurmctld and slurmd up on $host ($cpus CPUs)"
run=$tmp/run
args=(--recipe recipes/gpt/tiny.yaml --set train.train_steps=90 --set train.eval_steps=0
      --set logging.interval=1000 --set logging.run_dir="$run")
# The uninterrupted reference, outside Slurm.
OMP_NUM_THREADS=1 mpirun --allow-run-as-root --oversubscribe --bind-to none -np 2 "$bin/pretrain" \
  "${args[@]}" --set logging.run_dir="$tmp/straight" > "$tmp/straight.log" 2>&1
job=$(BRAID_STATUS_DIR=$tmp BRAID_KILL_TIMEOUT=3 sbatch --parsable --ntasks=2 --output="$tmp/job-%j.out" launch/slurm/single_node.sbatch "${args[@]}")
echo "ok   submitted job $job"
slurm_preempt "$job" "$run" "$tmp/job-$job.out"
[[ $(cat "$run/checkpoints/latest") == step_00000090 ]]
cmp <(cut -f1,2 "$tmp/straight/losses.tsv") <(cut -f1,2 "$run/losses.tsv") \
  || { echo "FAIL: losses differ from the uninterrupted run"; exit 1; }
echo "ok   job $job: preempted by SIGUSR1 and by SIGTERM (mpirun exit 1), requeued twice from the status file, resumed, COMPLETED; 90 losses equal to the uninterrupted run"
trap - EXIT
cleanup
left=$(slurm_leftovers "$tmp")
[[ -z $left ]] || { echo "FAIL: $left"; exit 1; }
echo "ok   every daemon the test started is gone"
