#!/usr/bin/env bash
# Preemption: SIGUSR1 (what `#SBATCH --signal=B:USR1@...` sends) to mpirun at a random step of a
# 2-rank run of a tiny recipe (the GPT's, or the one named as third argument: ctest runs it for
# GPT and T5). Every rank must stop at the same step boundary after saving a checkpoint
# at that step (no step lost, no rank hanging), the job must exit with code 75 within seconds,
# and rerunning the same command must resume and finish with losses bit-identical to an
# uninterrupted run.
set -euo pipefail
bin=$1
src=$2
source "$src/tests/lib/e2e.sh"
mpi+=(-np 2)
recipe=${3:-recipes/gpt/tiny.yaml}
args=(--recipe "$recipe" --set train.train_steps=40 --set train.eval_steps=0
      --set logging.interval=1000)
"${mpi[@]}" "$bin/pretrain" "${args[@]}" --set logging.run_dir="$tmp/straight" > "$tmp/straight.log" 2>&1
at=$(( 5 + RANDOM % 20 ))
"${mpi[@]}" "$bin/pretrain" "${args[@]}" --set logging.run_dir="$tmp/pre" > "$tmp/pre.log" 2>&1 &
job=$!
for _ in $(seq 1 600); do
  [[ -f $tmp/pre/losses.tsv ]] && (( $(wc -l < "$tmp/pre/losses.tsv") >= at )) && break
  sleep 0.05
done
kill -USR1 $job
start=$(date +%s)
rc=0
wait $job || rc=$?
elapsed=$(( $(date +%s) - start ))
[[ $rc -eq 75 ]] || { echo "FAIL: exit code $rc, expected 75"; cat "$tmp/pre.log"; exit 1; }
(( elapsed <= 30 )) || { echo "FAIL: took ${elapsed}s to stop"; exit 1; }
done_steps=$(wc -l < "$tmp/pre/losses.tsv")
saved=$(cat "$tmp/pre/checkpoints/latest")
[[ $saved == $(printf 'step_%08d' "$done_steps") ]] || { echo "FAIL: $done_steps steps ran, latest is $saved"; exit 1; }
echo "ok   SIGUSR1 after step ~$at: stopped at step $done_steps with a checkpoint of that step, exit 75 in ${elapsed}s"
"${mpi[@]}" "$bin/pretrain" "${args[@]}" --set logging.run_dir="$tmp/pre" > "$tmp/resume.log" 2>&1 \
  || { cat "$tmp/resume.log"; exit 1; }
cmp <(cut -f1,2 "$tmp/straight/losses.tsv") <(cut -f1,2 "$tmp/pre/losses.tsv") \
  || { echo "FAIL: losses differ from the uninterrupted run"; exit 1; }
echo "ok   rerun resumed and finished; 40 losses bit-identical to the uninterrupted run"
# A signal during start-up (before MPI, the model or the data are up) is kept for the first step
# boundary: every process stops after step 1 with a checkpoint and exit code 75, none dies of it.
"$bin/pretrain" "${args[@]}" --set logging.run_dir="$tmp/early" > "$tmp/early.log" 2>&1 &
job=$!
sleep 0.05
kill -USR1 $job
rc=0
wait $job || rc=$?
[[ $rc -eq 75 && $(cat "$tmp/early/checkpoints/latest") == step_00000001 ]] \
  || { echo "FAIL: SIGUSR1 at start-up: exit code $rc"; cat "$tmp/early.log"; exit 1; }
grep -q "preempted step 1" "$tmp/early/status" || { echo "FAIL: status: $(cat "$tmp/early/status")"; exit 1; }
echo "ok   SIGUSR1 50 ms after start: stopped after step 1 with a checkpoint, exit 75, status 'preempted step 1'"
