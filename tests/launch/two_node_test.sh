#!/usr/bin/env bash
# Two nodes for real, on one machine: hosts n1 and n2 are network namespaces joined by a veth pair
# (tests/lib/netns_cluster.sh), each with its own hostname and its own node-local folder, talking
# TCP to each other as cluster nodes do. Open MPI starts its daemon on n2 through our rsh agent.
#   1. The tiny GPT on 2 nodes x 2 ranks, TP 2 inside each node and DP 2 across, through
#      launch/launch.sh --hosts n1,n2: losses equal to 4 ranks on one node within 1e-6, every TP
#      group within one host (the launcher and the run's log say which ranks share a host).
#   2. One index builder per node: data.cache_dir is node-local; each node's local rank 0 builds
#      the index there, once, and no other rank does. The default corpus in a shared folder is
#      prepared once, by rank 0; in a node-local folder, once on each node.
#   3. A dead node: every process on n2 killed mid-run ends the job on n1 within 30 s, non-zero,
#      naming the lost host, and leaves no process behind on n1.
#   4. Slurm across the nodes: slurmctld on n1, a slurmd on each; launch/slurm/multi_node.sbatch
#      with 2 nodes x 2 tasks, preempted by SIGUSR1 then by SIGTERM, requeued twice, resumed from
#      the shared run directory, COMPLETED with losses equal to the uninterrupted run.
# Everything it made (namespaces, link, daemons, files) is removed, also when a case fails. Where
# the machine does not allow network namespaces it prints SKIPPED and exits 77 (ctest: Skipped).
set -euo pipefail
bin=$1
src=$2
cd "$src"
source tests/lib/netns_cluster.sh
source tests/lib/slurm.sh
tmp=$(mktemp -d /tmp/braid-2node.XXXXXX)
chmod 755 "$tmp"
cleanup() {
  [[ -n ${SLURM_CONF:-} ]] && { on n1 scancel --full "${job:-0}" 2>/dev/null || true; slurm_stop "$tmp/slurm"; }
  cluster_down
  rm -rf "$tmp"
}
trap cleanup EXIT
rc=0
cluster_up "$tmp" || rc=$?
if (( rc == 77 )); then
  echo "SKIPPED two_node: no network namespaces on this machine (see above); nothing was tested"
  exit 77
fi
(( rc == 0 )) || exit "$rc"
echo "ok   hosts n1 (${CLUSTER_ADDR[n1]}) and n2 (${CLUSTER_ADDR[n2]}): network namespaces $CLUSTER_NS-n1/n2 on a veth link"
read -r -a mpi_env <<< "$(cluster_mpi_env)"
mkdir -p "$tmp/nodes/n1/cache" "$tmp/nodes/n2/cache"
# The embedded default corpus, not yet prepared, in a shared folder: the first run prepares it.
corpus=$tmp/data/fortunes
args=(--recipe recipes/gpt/tiny.yaml --set train.train_steps=90 --set train.eval_steps=0
      --set logging.interval=1000 --set parallel.tensor_parallel_size=2 --set train.threads=1
      --set data.paths="[$corpus/fortunes_text_document]" --set data.vocab_file="$corpus/spm.model"
      --set data.cache_dir="$tmp/local/cache")

# Losses of two runs (losses.tsv: step, loss, ...) agree step by step within 1e-6.
same_losses() {
  awk 'NR == FNR { want[$1] = $2; next }
       { n++; d = $2 - want[$1]; if (d < 0) d = -d; if (d > m) m = d; if (!($1 in want)) bad = 1 }
       END { printf "%d steps, largest difference %.3g\n", n, m; exit (bad || n == 0 || m > 1e-6) }' \
    "$1" "$2"
}

# 1 + 2: TP inside the nodes, DP across them.
ms() { echo $(( $(date +%s%N) / 1000000 )); }
secs_since() { awk -v a="$1" -v b="$(ms)" 'BEGIN { printf "%.1f", (b - a) / 1000 }'; }
start=$(ms)
on n1 env "${mpi_env[@]}" BRAID_DEFAULT_CORPUS_DIR="$corpus" launch/launch.sh --nodes 2 \
  --ranks-per-node 2 --hosts n1,n2 --tp 2 \
  --threads 1 -- "${args[@]}" --set logging.run_dir="$tmp/two" > "$tmp/two.log" 2>&1 \
  || { echo "FAIL: the two-node run"; tail -30 "$tmp/two.log"; exit 1; }
echo "ok   2 nodes x 2 ranks through launch/launch.sh --hosts n1,n2 --tp 2: 90 steps in $(secs_since "$start") s"
n=$(grep -c "preparing the embedded default corpus" "$tmp/two.log" || true)
(( n == 1 )) && [[ -f $corpus/spm.model && -f $corpus/fortunes_text_document.idx ]] \
  || { echo "FAIL: the shared default corpus was prepared $n times"; exit 1; }
echo "ok   the default corpus, missing from a shared folder, prepared once (by rank 0) for both nodes"
OMP_NUM_THREADS=1 mpirun --allow-run-as-root --oversubscribe --bind-to none -np 4 "$bin/pretrain" \
  "${args[@]}" --set logging.run_dir="$tmp/one" --set data.cache_dir="$tmp/one-cache" \
  > "$tmp/one.log" 2>&1 || { echo "FAIL: the one-node run"; tail -20 "$tmp/one.log"; exit 1; }
grep -q "^launch.sh: 2 nodes x 2 ranks, TP 2 within each node: n1 = ranks 0-1, n2 = ranks 2-3$" "$tmp/two.log" \
  || { echo "FAIL: the launcher did not announce the placement"; head -5 "$tmp/two.log"; exit 1; }
placement=$(grep -o "ranks on hosts: .*" "$tmp/two/logs/rank0.log" | head -1)
[[ $placement == "ranks on hosts: n1 = 0-1, n2 = 2-3; every TP group (size 2) within one host" ]] \
  || { echo "FAIL: placement in the run's log: '$placement'"; exit 1; }
echo "ok   the run's log: $placement"
diff=$(same_losses "$tmp/one/losses.tsv" "$tmp/two/losses.tsv") \
  || { echo "FAIL: two-node losses differ from one node's: $diff"; exit 1; }
echo "ok   losses equal to 4 ranks on one node: $diff"
builders=""
for r in 0 1 2 3; do
  n=$(grep -c "built the index" "$tmp/two/logs/rank$r.log" || true)
  (( n > 0 )) && builders+="${builders:+ }$r:$n"
done
idx1=$(ls "$tmp/nodes/n1/cache" | wc -l)
idx2=$(ls "$tmp/nodes/n2/cache" | wc -l)
[[ $builders == "0:$idx1 2:$idx2" ]] && (( idx1 > 0 )) && [[ $(ls "$tmp/nodes/n1/cache") == $(ls "$tmp/nodes/n2/cache") ]] \
  || { echo "FAIL: index builders (rank:indexes) '$builders'; n1 has $idx1, n2 has $idx2 indexes"; exit 1; }
[[ -z $(ls -A "$tmp/local") ]] || { echo "FAIL: an index was written outside the nodes' own folders"; exit 1; }
echo "ok   one index builder per node: rank 0 on n1 and rank 2 on n2 each built $idx1 index(es) in their node-local cache, ranks 1 and 3 none"

# 3: a dead node.
on n1 env "${mpi_env[@]}" BRAID_DEFAULT_CORPUS_DIR="$tmp/local/data/fortunes" launch/launch.sh \
  --nodes 2 --ranks-per-node 2 --hosts n1,n2 --tp 2 \
  --threads 1 -- "${args[@]}" --set train.train_steps=3000 --set logging.run_dir="$tmp/dead" \
  --set data.paths="[$tmp/local/data/fortunes/fortunes_text_document]" \
  --set data.vocab_file="$tmp/local/data/fortunes/spm.model" > "$tmp/dead.log" 2>&1 &
victim=$!
for _ in $(seq 1 600); do
  [[ -f $tmp/dead/losses.tsv ]] && (( $(wc -l < "$tmp/dead/losses.tsv") >= 10 )) && break
  sleep 0.1
done
(( $(wc -l < "$tmp/dead/losses.tsv") >= 10 )) || { echo "FAIL: the run to kill never trained"; tail "$tmp/dead.log"; exit 1; }
grep -q "preparing the embedded default corpus in $tmp/local/data/fortunes .* on n2: not shared" "$tmp/dead.log" &&
  [[ -f $tmp/nodes/n1/data/fortunes/spm.model && -f $tmp/nodes/n2/data/fortunes/spm.model ]] \
  || { echo "FAIL: a node-local default corpus was not prepared on each node"; head -30 "$tmp/dead.log"; exit 1; }
echo "ok   the default corpus in a node-local folder: prepared on n1 by rank 0, then on n2 by its local rank 0"
start=$(ms)
cluster_kill n2
dead_rc=0
for _ in $(seq 1 600); do kill -0 "$victim" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$victim" 2>/dev/null; then
  echo "FAIL: the job on n1 still runs 60 s after n2 died"; kill -9 "$victim"; exit 1
fi
wait "$victim" || dead_rc=$?
took=$(secs_since "$start")
(( dead_rc != 0 )) || { echo "FAIL: the job exited 0 after losing n2"; exit 1; }
(( $(ms) - start < 30000 )) || { echo "FAIL: the job took $took s to end after n2 died"; exit 1; }
grep -qE "(node|host) n2" "$tmp/dead.log" || { echo "FAIL: the error does not name n2"; tail -20 "$tmp/dead.log"; exit 1; }
left=$(cluster_pids n1)
[[ -z $left ]] || { echo "FAIL: processes left on n1: $left"; exit 1; }
echo "ok   n2 killed at step $(wc -l < "$tmp/dead/losses.tsv"): the job ended $took s later, exit $dead_rc, nothing left on n1; it said: $(grep -E "(node|host) n2" "$tmp/dead.log" | head -1 | sed 's/^ *//')"

# 4: Slurm across the nodes (n2 restarted: its processes are gone, the host is not).
slurm_install
mkdir -p "$tmp/slurm" "$tmp/nodes/n1/slurmd" "$tmp/nodes/n2/slurmd"
slurm_munge "$tmp/slurm"
slurm_conf "$tmp/slurm" "n1(${CLUSTER_ADDR[n1]})" "$tmp/local/slurmd" \
  "NodeName=n1 NodeAddr=${CLUSTER_ADDR[n1]} CPUs=2 State=UNKNOWN
NodeName=n2 NodeAddr=${CLUSTER_ADDR[n2]} CPUs=2 State=UNKNOWN
PartitionName=debug Nodes=n1,n2 Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES"
SLURM_ON=(on n1)
SLURM_DAEMON_LOGS=("$tmp/nodes/n1/slurmd/slurmd.log" "$tmp/nodes/n2/slurmd/slurmd.log")
on n1 slurmctld -D -f "$SLURM_CONF" > "$tmp/slurm/log/ctld.out" 2>&1 &
on n1 slurmd -D -f "$SLURM_CONF" -N n1 > "$tmp/slurm/log/d1.out" 2>&1 &
on n2 slurmd -D -f "$SLURM_CONF" -N n2 > "$tmp/slurm/log/d2.out" 2>&1 &
slurm_wait_nodes 2 || { cat "$tmp/slurm/log/"*.out; exit 1; }
echo "ok   slurmctld on n1, slurmd on n1 and n2: both nodes idle"
run=$tmp/slurm-run
# Only the link settings: under Slurm, mpirun starts its daemons with srun, not the rsh agent.
read -r -a link_env <<< "$(cluster_mpi_env --link-only)"
job=$(on n1 env "${link_env[@]}" BRAID_STATUS_DIR="$tmp" BRAID_KILL_TIMEOUT=3 sbatch --parsable --nodes=2 --ntasks-per-node=2 --cpus-per-task=1 \
  --output="$tmp/job-%j.out" launch/slurm/multi_node.sbatch "${args[@]}" --set logging.run_dir="$run")
echo "ok   submitted job $job: launch/slurm/multi_node.sbatch, 2 nodes x 2 tasks"
slurm_preempt "$job" "$run" "$tmp/job-$job.out"
grep -q "ranks on hosts: n1 = 0-1, n2 = 2-3; every TP group (size 2) within one host; slurm job $job" "$run/logs/rank0.log" \
  || { echo "FAIL: the Slurm run was not placed on n1 and n2"; grep "ranks on hosts" "$run/logs/rank0.log"; exit 1; }
[[ $(cat "$run/checkpoints/latest") == step_00000090 ]]
diff=$(same_losses "$tmp/one/losses.tsv" "$run/losses.tsv") \
  || { echo "FAIL: the preempted Slurm run's losses differ from the uninterrupted run: $diff"; exit 1; }
echo "ok   job $job on n1 and n2: preempted by SIGUSR1 and by SIGTERM, requeued twice, resumed, COMPLETED; losses equal to the uninterrupted run: $diff"

trap - EXIT
cleanup
left=$(cluster_leftovers; slurm_leftovers "$tmp/slurm")
[[ -z $left ]] || { echo "FAIL: $left"; exit 1; }
echo "ok   nothing left: no namespace, link, daemon or file of the test"
