#!/usr/bin/env bash
# A rank killed (SIGKILL) in the middle of a save leaves `latest` on the previous, loadable
# checkpoint: the tiny GPT at TP 2 (so that both ranks write a shard) saves at step 5, then at
# step 10 every rank pauses after writing its shard (BRAID_TEST_SAVE_DELAY) and one is killed. The job must end non-zero within seconds,
# `latest` must still name step 5, and a new run must resume from it and finish.
set -euo pipefail
bin=$1
src=$2
source "$src/tests/lib/e2e.sh"
trap 'pkill -9 -f "crashrun_$$" 2>/dev/null || true; rm -rf "$tmp"' EXIT
run_dir=$tmp/crashrun_$$
args=(--recipe recipes/gpt/tiny.yaml --set train.train_steps=20 --set train.eval_steps=0
      --set parallel.tensor_parallel_size=2
      --set checkpoint.save_interval=5 --set logging.run_dir="$run_dir")
BRAID_TEST_SAVE_DELAY=10:60 "${mpi[@]}" -x BRAID_TEST_SAVE_DELAY -np 2 "$bin/pretrain" "${args[@]}" > "$tmp/crash.log" 2>&1 &
job=$!
for _ in $(seq 1 600); do
  [[ -f $run_dir/checkpoints/.tmp_step_00000010/tp0.safetensors ]] && break
  sleep 0.1
done
[[ -f $run_dir/checkpoints/.tmp_step_00000010/tp0.safetensors ]] || { echo "FAIL: the save of step 10 never started"; cat "$tmp/crash.log"; exit 1; }
victim=$(pgrep -f "pretrain.*crashrun_$$" | tail -n 1)
kill -9 "$victim"
start=$(date +%s)
if wait $job; then echo "FAIL: the job survived a killed rank"; exit 1; fi
echo "ok   killed a rank mid-save; mpirun ended non-zero after $(( $(date +%s) - start )) s"
[[ $(cat "$run_dir/checkpoints/latest") == step_00000005 ]] || { echo "FAIL: latest is $(cat "$run_dir/checkpoints/latest")"; exit 1; }
[[ ! -d $run_dir/checkpoints/step_00000010 ]] || { echo "FAIL: a half-written step_00000010 was published"; exit 1; }
echo "ok   latest still names step_00000005; the half-written save stayed a .tmp directory"
"${mpi[@]}" -np 2 "$bin/pretrain" "${args[@]}" > "$tmp/resume.log" 2>&1 \
  || { cat "$tmp/resume.log"; exit 1; }
grep -q "resumed from .*step_00000005" "$tmp/resume.log" || { echo "FAIL: did not resume from step 5"; cat "$tmp/resume.log"; exit 1; }
[[ $(cat "$run_dir/checkpoints/latest") == step_00000020 ]]
echo "ok   resumed from step 5 and finished at step 20"
