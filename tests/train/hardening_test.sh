#!/usr/bin/env bash
# The second hardening round's cases for pretrain (each named as the issue named it), each
# asserting the refusal or the correct result, and for the data-loss cases that every file the
# user had is byte-identical after:
#  - "the default-corpus preparer writes into a user's folder": a missing data.paths entry under a
#    user's own data/fortunes/ folder (with an edited spm.model and fortunes.jsonl) is reported
#    missing; nothing is prepared there;
#  - "shell injection through a path": a data.paths entry holding '$(touch ...)' runs nothing, and
#    the preparer script given such a folder creates the folder, runs nothing;
#  - "a run's checkpoints can be taken over by another run": run B with checkpoint.dir set to run
#    A's checkpoint folder is refused while A runs (the lock is the checkpoint folder's) and after
#    (another run's checkpoints); A's files byte-identical; --resume of A's checkpoint into B's
#    own folder works; a different seed on the same run is refused;
#  - "latest pointing at an older step than a complete one": the run resumes from the newest
#    complete checkpoint and moves latest, losses bit-identical to an uninterrupted run;
#  - "poisson_lambda 0 loops forever": refused by the config;
#  - "a stop signal must always end a run, in any phase": a run blocked reading its data (a FIFO)
#    ends on SIGTERM within the grace period, exit 75, status "preempted (...)";
#  - "T5 settings the config ranges accept hit FATAL": encoders of 8 and 9 tokens, density 0.001,
#    mean span 1e6 train;
#  - "a huge decoder_seq_length": refused with the memory estimate, nothing allocated;
#  - "recompute_num_layers larger than the layers", "added_tokens with a duplicate",
#    "--print-config exits 0 on a vocabulary mismatch", "--plan --mfu nan": refused.
set -u
bin=$1
src=$2
source "$src/tests/lib/e2e.sh"
source "$src/tests/lib/checks.sh"
tiny=(--recipe recipes/gpt/tiny.yaml --set train.eval_steps=0 --set logging.interval=100)
sums() { (cd "$1" && find . -type f ! -name .lock -print0 | sort -z | xargs -0 md5sum); }

# ---- the default-corpus preparer writes into a user's folder ----
U=$tmp/user/data/fortunes
mkdir -p "$U"
cp build/data/fortunes/spm.model "$U/spm.model"
printf 'edited by the user\n' >> "$U/spm.model"
printf '{"text": "my own corpus"}\n' > "$U/fortunes.jsonl"
before=$(sums "$tmp/user")
expect_fail "default corpus into a user's folder" "fortunes_text_document" -- \
  "$bin/pretrain" "${tiny[@]}" --set train.train_steps=1 --set "data.paths=[$U/fortunes_text_document]" \
  --set data.vocab_file=build/data/fortunes/spm.model --set logging.run_dir="$tmp/r_user" &&
  [[ $(sums "$tmp/user") == "$before" ]] &&
  ok "default corpus into a user's folder: the missing path is reported, the folder's files byte-identical" ||
  bad "default corpus into a user's folder: the folder changed"

# ---- shell injection through a path ----
evil="$tmp/x'\$(touch $tmp/pwned)'/data/fortunes/fortunes_text_document"
expect_fail "shell injection through a path" "fortunes_text_document" -- \
  "$bin/pretrain" "${tiny[@]}" --set train.train_steps=1 --set "data.paths=[\"$evil\"]" \
  --set logging.run_dir="$tmp/r_evil" && [[ ! -e $tmp/pwned ]] &&
  ok "shell injection through a path (pretrain): nothing ran" || bad "shell injection through a path: a command ran"
odd="$tmp/corpus \$(touch $tmp/pwned2) 'q'"
tools/data/prepare_default_corpus.sh "$odd" "$bin" > "$tmp/prep.log" 2>&1 &&
  [[ -f $odd/spm.model && -f $odd/fortunes_text_sentence.idx && ! -e $tmp/pwned2 ]] &&
  ok "shell injection through a path (the preparer given such a folder): corpus made there, nothing ran" ||
  { bad "preparer with an odd folder"; tail -5 "$tmp/prep.log"; }
printf 'mine\n' > "$tmp/partial.model"
mkdir -p "$tmp/partial" && cp "$tmp/partial.model" "$tmp/partial/spm.model"
expect_fail "preparer over a user's partial folder" "refusing to write over them" -- \
  tools/data/prepare_default_corpus.sh "$tmp/partial" "$bin" &&
  cmp -s "$tmp/partial.model" "$tmp/partial/spm.model" && [[ $(ls "$tmp/partial") == spm.model ]] &&
  ok "the preparer refuses a folder holding some corpus files; the user's spm.model byte-identical" ||
  bad "preparer over a partial folder"

# ---- a run's checkpoints can be taken over by another run ----
A=$tmp/runA
"$bin/pretrain" "${tiny[@]}" --set train.train_steps=100000 --set checkpoint.save_interval=2 \
  --set logging.run_dir="$A" > "$tmp/A.log" 2>&1 &
runA=$!
for _ in $(seq 600); do [[ -e $A/checkpoints/latest ]] && break; sleep 0.1; done
expect_fail "takeover while A runs" "the checkpoint directory $A/checkpoints is in use by" -- \
  "$bin/pretrain" "${tiny[@]}" --set train.train_steps=4 --set logging.run_dir="$tmp/runB" \
  --set checkpoint.dir="$A/checkpoints" &&
  ok "run B with checkpoint.dir = run A's checkpoint folder while A runs: refused (A holds its lock)"
kill -USR1 $runA; wait $runA 2>/dev/null
before=$(sums "$A/checkpoints")
expect_fail "takeover after A" "holds checkpoints of another run" -- \
  "$bin/pretrain" "${tiny[@]}" --set train.train_steps=400 --set logging.run_dir="$tmp/runB" \
  --set checkpoint.dir="$A/checkpoints" && [[ $(sums "$A/checkpoints") == "$before" ]] &&
  ok "run B with run A's checkpoint folder after A stopped: refused as another run's; A's files byte-identical" ||
  bad "takeover after A"
expect_fail "takeover with --resume" "holds checkpoints of another run" -- \
  "$bin/pretrain" "${tiny[@]}" --set train.train_steps=400 --set logging.run_dir="$tmp/runB" \
  --set checkpoint.dir="$A/checkpoints" --resume "$A/checkpoints/$(cat "$A/checkpoints/latest")" &&
  [[ $(sums "$A/checkpoints") == "$before" ]] &&
  ok "... and with --resume of A's checkpoint: B would still save among A's: refused" || bad "takeover --resume"
last=$(cat "$A/checkpoints/latest")
"$bin/pretrain" "${tiny[@]}" --set train.train_steps=$(( 10#${last#step_} + 2 )) --set logging.run_dir="$tmp/runC" \
  --resume "$A/checkpoints/$last" > "$tmp/C.log" 2>&1 &&
  [[ $(cat "$tmp/runC/checkpoints/latest") == $(printf 'step_%08d' $(( 10#${last#step_} + 2 ))) ]] &&
  [[ $(sums "$A/checkpoints") == "$before" ]] &&
  ok "--resume of A's checkpoint into C's own folder: trains on from step $(( 10#${last#step_} )); A untouched" ||
  { bad "explicit resume into an own folder"; tail -5 "$tmp/C.log"; }
expect_fail "another seed" "seed 1234; this config has seed 7" -- \
  "$bin/pretrain" "${tiny[@]}" --set train.train_steps=400 --set seed=7 --set logging.run_dir="$A" &&
  [[ $(sums "$A/checkpoints") == "$before" ]] &&
  ok "the same run dir with another seed: refused (another run's data order); nothing changed"

# ---- latest pointing at an older step than a complete one ----
common=("${tiny[@]}" --set checkpoint.save_interval=2 --set checkpoint.keep_last=3)
run 1 "$tmp/straight" --set train.train_steps=6 || bad "straight run"
run 1 "$tmp/gap" --set train.train_steps=6 --set train.exit_interval=4 || bad "first part"
echo step_00000002 > "$tmp/gap/checkpoints/latest"  # a stop between the rename of step 4 and latest
run 1 "$tmp/gap" --set train.train_steps=6 &&
  grep -q "resuming from step_00000004 and moving latest to it" "$tmp/gap.log" &&
  compare "$tmp/straight" "$tmp/gap" 0 "latest older than a complete checkpoint: resumed from the newest" ||
  bad "latest older than a complete checkpoint"

# ---- poisson_lambda 0, recompute_num_layers, added_tokens, print-config, plan ----
expect_fail "poisson_lambda 0" "data.poisson_lambda" -- \
  "$bin/pretrain" --recipe recipes/bart/tiny.yaml --set data.poisson_lambda=0 --print-config &&
  ok "data.poisson_lambda: 0 refused by the config (it would loop forever)"
expect_fail "recompute_num_layers larger than the layers" "the deepest stack has 2 layers" -- \
  "$bin/pretrain" "${tiny[@]}" --set train.recompute=full --set train.recompute_num_layers=5 --print-config &&
  ok "train.recompute_num_layers 5 of 2 layers refused"
expect_fail "added_tokens with a duplicate" "'<x>' is listed twice" -- \
  "$bin/pretrain" "${tiny[@]}" --set 'data.added_tokens=[<x>, <y>, <x>]' --print-config &&
  ok "data.added_tokens with a duplicate refused"
expect_fail "--print-config on a vocabulary mismatch" "but the tokenizer" -- \
  "$bin/pretrain" "${tiny[@]}" --set model.vocab_size=9000 --print-config &&
  ok "--print-config with model.vocab_size contradicting the tokenizer: refused as a run is"
out=$("$bin/pretrain" "${tiny[@]}" --plan --mfu nan 2>&1); rc=$?
[[ $rc == 2 ]] && grep -q "mfu" <<<"$out" && ok "--plan --mfu nan: usage error (exit 2)" || bad "--plan --mfu nan: exit $rc"

# ---- T5 settings the config ranges accept ----
t5=(--recipe recipes/t5/tiny.yaml --set train.train_steps=2 --set train.eval_steps=0 --set logging.interval=1)
for s in "model.seq_length=8" "model.seq_length=9" "data.noise_density=0.001" "data.mean_noise_span_length=1000000"; do
  n=${s//[^a-z0-9]/_}
  timeout 120 "$bin/pretrain" "${t5[@]}" --set "$s" --set logging.run_dir="$tmp/t5_$n" > "$tmp/t5_$n.log" 2>&1 &&
    [[ $(wc -l < "$tmp/t5_$n/losses.tsv") == 2 ]] && ok "T5 with $s trains" ||
    { bad "T5 with $s"; tail -5 "$tmp/t5_$n.log"; }
done
expect_fail "a huge decoder_seq_length" "the model needs" -- \
  "$bin/pretrain" "${t5[@]}" --set model.decoder_seq_length=1000000 --set logging.run_dir="$tmp/t5_huge" &&
  ok "T5 with model.decoder_seq_length 1000000: refused with the memory estimate"

# ---- a stop signal must always end a run, in any phase ----
D=$tmp/fifo
mkdir -p "$D"
cp build/data/fortunes/fortunes_text_document.bin "$D/data.bin"
mkfifo "$D/data.idx"  # opening it blocks until a writer comes: a run stuck reading its data
BRAID_STOP_GRACE_S=3 "$bin/pretrain" "${tiny[@]}" --set "data.paths=[$D/data]" \
  --set logging.run_dir="$tmp/r_fifo" > "$tmp/fifo.log" 2>&1 &
job=$!
sleep 4
kill -TERM $job
start=$(date +%s.%N)
rc=0
wait $job || rc=$?
took=$(python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$start" "$(date +%s.%N)")
if [[ $rc == 75 ]] && grep -q "^preempted (signal 15 during" "$tmp/r_fifo/status" &&
   python3 -c "import sys; sys.exit(float(sys.argv[1]) > 15)" "$took"; then
  ok "a stop signal while the run is blocked reading its data: ended after ${took} s (grace 3 s), exit 75, status '$(cut -c1-40 "$tmp/r_fifo/status")...'"
else
  bad "stop in a blocked phase: exit $rc after ${took} s"; tail -5 "$tmp/fifo.log"; cat "$tmp/r_fifo/status" 2>/dev/null
fi
exit $fail
