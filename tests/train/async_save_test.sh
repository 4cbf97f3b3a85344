#!/usr/bin/env bash
# checkpoint.async_save against synchronous saves, on the tiny GPT with dropout at DP 2 (saves at
# steps 5, 10, 15 and 20):
#   1. the training losses of the run that writes in the background equal, bit for bit, those of
#      the run that stops to save; and the saved payloads (weights, AdamW moments) are the same
#      bytes;
#   2. SIGKILL while the background write of step 10 is paused (BRAID_TEST_SAVE_DELAY): training
#      went on meanwhile (the loss file grows past step 10), `latest` still names step 5, and the
#      rerun resumes from it and ends with losses equal to the uninterrupted run's;
#   3. a background write that fails (its temporary directory removed under it) stops the run with
#      an error naming the save, and `latest` stays on step 5;
#   4. a stop signal during a background write waits for it, saves where it stops, exits 75.
set -euo pipefail
bin=$1
src=$2
source "$src/tests/lib/e2e.sh"
trap 'pkill -9 -f "asyncrun_$$" 2>/dev/null || true; rm -rf "$tmp"' EXIT
args=(--recipe recipes/gpt/tiny.yaml --set train.train_steps=20 --set train.eval_steps=0
      --set model.hidden_dropout=0.1 --set model.attention_dropout=0.1
      --set checkpoint.save_interval=5)
run() {  # run NAME [extra args...]: a run in $tmp/asyncrun_$$_NAME, its log in $tmp/NAME.log
  local name=$1
  shift
  "${mpi[@]}" -np 2 "$bin/pretrain" "${args[@]}" --set logging.run_dir="$tmp/asyncrun_$$_$name" \
    "$@" > "$tmp/$name.log" 2>&1
}
# start_paused NAME SECONDS: an async run in the background ($job, $run_dir) whose write of step
# 10 pauses SECONDS after its shard is on disk; returns once it is.
start_paused() {
  run_dir=$tmp/asyncrun_$$_$1
  BRAID_TEST_SAVE_DELAY=10:$2 "${mpi[@]}" -x BRAID_TEST_SAVE_DELAY -np 2 "$bin/pretrain" \
    "${args[@]}" --set checkpoint.async_save=true --set logging.run_dir="$run_dir" \
    > "$tmp/$1.log" 2>&1 &
  job=$!
  for _ in $(seq 1 1200); do
    [[ -f $run_dir/checkpoints/.tmp_step_00000010/tp0.safetensors ]] && return 0
    sleep 0.05
  done
  echo "FAIL: the background save of step 10 never started"
  cat "$tmp/$1.log"
  exit 1
}
run sync || { cat "$tmp/sync.log"; exit 1; }
run async --set checkpoint.async_save=true || { cat "$tmp/async.log"; exit 1; }
grep -q "step 10: state copied to host memory in .* s; writing .* in the background" "$tmp/async.log" &&
  grep -q "saved step 10 to .* in the background" "$tmp/async.log" ||
  { echo "FAIL: no background save in the log"; cat "$tmp/async.log"; exit 1; }
cmp "$tmp/asyncrun_$$_sync/losses.tsv" "$tmp/asyncrun_$$_async/losses.tsv" ||
  { echo "FAIL: the losses of the async run differ from the synchronous run's"; exit 1; }
for s in 00000015 00000020; do
  cmp "$tmp/asyncrun_$$_sync/checkpoints/step_$s/tp0.safetensors" \
    "$tmp/asyncrun_$$_async/checkpoints/step_$s/tp0.safetensors" ||
    { echo "FAIL: step_$s's payload differs between the synchronous and the async save"; exit 1; }
done
echo "ok   async_save: 20 losses bit-identical to synchronous saves; the payloads of steps 15 and 20 the same bytes"

# 2. SIGKILL during the background write of step 10.
start_paused killed 120
for _ in $(seq 1 1200); do
  [[ $(wc -l < "$run_dir/losses.tsv") -ge 14 ]] && break
  sleep 0.1
done
steps=$(wc -l < "$run_dir/losses.tsv" 2>/dev/null || echo 0)
[[ $steps -ge 14 ]] ||
  { echo "FAIL: training did not go on during the background write ($steps steps)"; cat "$tmp/killed.log"; exit 1; }
kill -9 "$(pgrep -f "pretrain.*asyncrun_$$_killed" | tail -n 1)"
if wait $job; then echo "FAIL: the job survived a killed rank"; exit 1; fi
[[ $(cat "$run_dir/checkpoints/latest") == step_00000005 && ! -d $run_dir/checkpoints/step_00000010 ]] ||
  { echo "FAIL: latest is $(cat "$run_dir/checkpoints/latest")"; ls -a "$run_dir/checkpoints"; exit 1; }
echo "ok   SIGKILL during the background write of step 10 (training had reached step $steps): latest still names step_00000005"
"${mpi[@]}" -np 2 "$bin/pretrain" "${args[@]}" --set checkpoint.async_save=true \
  --set logging.run_dir="$run_dir" > "$tmp/resumed.log" 2>&1 || { cat "$tmp/resumed.log"; exit 1; }
grep -q "resumed from .*step_00000005" "$tmp/resumed.log" || { echo "FAIL: did not resume from step 5"; exit 1; }
/usr/bin/python3 - "$tmp/asyncrun_$$_sync/losses.tsv" "$run_dir/losses.tsv" <<'PY'
import sys
def by_step(path):
    out = {}
    for line in open(path):
        f = line.rstrip("\n").split("\t")
        out[int(f[0])] = f[1]  # the last line of a step wins (a resumed run rewrites it)
    return out
ref, resumed = by_step(sys.argv[1]), by_step(sys.argv[2])
assert sorted(resumed) == list(range(1, 21)), sorted(resumed)
diff = [s for s in range(6, 21) if resumed[s] != ref[s]]
assert not diff, [(s, ref[s], resumed[s]) for s in diff]
print("ok   resumed from step 5: losses of steps 6-20 bit-identical to the uninterrupted run's")
PY

# 3. A background write that fails.
start_paused failed 3
rm -rf "$run_dir/checkpoints/.tmp_step_00000010"
if wait $job; then echo "FAIL: the run went on after its background save failed"; cat "$tmp/failed.log"; exit 1; fi
grep -q "the background checkpoint save of step 10 failed: .*latest still names the previous checkpoint" "$tmp/failed.log" ||
  { echo "FAIL: no error naming the failed save"; cat "$tmp/failed.log"; exit 1; }
[[ $(cat "$run_dir/checkpoints/latest") == step_00000005 ]] || { echo "FAIL: latest moved"; exit 1; }
grep "background checkpoint save" "$tmp/failed.log" | head -n 2
echo "ok   a failed background write stopped the run with the error ($(grep -c . "$run_dir/losses.tsv") steps done); latest stayed on step_00000005"

# 4. A stop signal while a background write runs: the run finishes that save, saves the step it
#    stops at, and exits 75 (rerun to resume).
start_paused signal 4
kill -USR1 $job
rc=0
wait $job || rc=$?
[[ $rc == 75 ]] || { echo "FAIL: exit $rc after the stop signal, not 75"; cat "$tmp/signal.log"; exit 1; }
latest=$(cat "$run_dir/checkpoints/latest")
[[ -f $run_dir/checkpoints/step_00000010/manifest.pb && $latest > step_00000010 ]] ||
  { echo "FAIL: after the signal latest is $latest"; ls -a "$run_dir/checkpoints"; exit 1; }
grep -q "saved step 10 to .* in the background (complete .*; waited" "$tmp/signal.log" ||
  { echo "FAIL: the stop did not wait for the background save"; cat "$tmp/signal.log"; exit 1; }
echo "ok   SIGUSR1 during the background write of step 10: it completed, then $latest was saved; exit 75"
