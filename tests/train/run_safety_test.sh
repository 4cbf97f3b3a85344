#!/usr/bin/env bash
# pretrain never destroys what a run directory holds and fails loudly instead of silently:
#  - `latest` missing, empty or a directory next to complete checkpoints: refused, naming the
#    newest complete one and the --resume command; nothing in the run directory changes;
#    checkpoint.resume=false over checkpoints: refused; checkpoint.overwrite=true: starts over;
#  - two runs on one run directory: the second is refused, naming the holder's host and pid;
#  - a metrics file (losses.tsv) or the log that cannot be written stops the run at once;
#  - data whose token ids reach past the model's vocabulary (another tokenizer's data, ids in the
#    padding) is refused naming the file and the id, at TP 1 and 2;
#  - a dataset truncated under a running job ends it with a message naming the file;
#  - data.weights all 0, a train split shorter than one sample: refused; eval_interval 0 with an
#    empty validation split trains without validation;
#  - sizes within the allowed ranges that no machine here can hold (width or sequence 1048576,
#    1024 layers of gpt2-small) are refused with the memory estimate before anything is built;
#    a 1 KB YAML alias bomb is refused by size;
#  - a recipe naming the embedded default corpus before it exists prepares it on first use (in a
#    folder of the test's, named by BRAID_DEFAULT_CORPUS_DIR).
set -u
bin=$1
src=$2
source "$src/tests/lib/e2e.sh"
source "$src/tests/lib/checks.sh"
tiny=(--recipe recipes/gpt/tiny.yaml --set train.eval_steps=0 --set logging.interval=100)
# Every file of a run directory but the logs, the lock note and the status record (rewritten by
# each attempt).
state() { (cd "$1" && find . -type f ! -name '*.log' ! -name .lock ! -name status -print0 | sort -z | xargs -0 md5sum); }

# ---- latest ----
R=$tmp/run
"$bin/pretrain" "${tiny[@]}" --set train.train_steps=4 --set checkpoint.save_interval=2 \
  --set logging.run_dir="$R" > "$tmp/first.log" 2>&1 || { cat "$tmp/first.log"; exit 1; }
newest=$R/checkpoints/step_00000004
for how in missing empty directory; do
  rm -rf "$R/checkpoints/latest"
  case $how in empty) : > "$R/checkpoints/latest" ;; directory) mkdir "$R/checkpoints/latest" ;; esac
  before=$(state "$R")
  expect_fail "latest-$how" "newest complete one: $newest" -- \
    "$bin/pretrain" "${tiny[@]}" --set train.train_steps=6 --set logging.run_dir="$R" &&
    [[ $(state "$R") == "$before" ]] && ok "latest $how: refused, naming $newest; nothing changed" ||
    bad "latest $how: the run directory changed"
done
rm -rf "$R/checkpoints/latest"
echo step_00000004 > "$R/checkpoints/latest"
before=$(state "$R")
expect_fail resume-false "checkpoint.resume is false" -- \
  "$bin/pretrain" "${tiny[@]}" --set train.train_steps=6 --set checkpoint.resume=false \
  --set logging.run_dir="$R" && [[ $(state "$R") == "$before" ]] &&
  ok "checkpoint.resume=false over checkpoints: refused, nothing changed"
"$bin/pretrain" "${tiny[@]}" --set train.train_steps=2 --set checkpoint.resume=false \
  --set checkpoint.overwrite=true --set logging.run_dir="$R" > "$tmp/over.log" 2>&1 &&
  [[ $(cat "$R/checkpoints/latest") == step_00000002 && ! -e $R/checkpoints/step_00000004 ]] &&
  ok "checkpoint.overwrite=true starts over (old checkpoints deleted)" || { bad "overwrite"; tail -5 "$tmp/over.log"; }

# ---- one run per run directory ----
L=$tmp/locked
"$bin/pretrain" "${tiny[@]}" --set train.train_steps=100000 --set logging.run_dir="$L" > "$tmp/long.log" 2>&1 &
long=$!
for _ in $(seq 100); do [[ -s $L/.lock ]] && break; sleep 0.1; done
expect_fail lock "is in use by host" -- "$bin/pretrain" "${tiny[@]}" --set logging.run_dir="$L" &&
  grep -q "pid $long" < <(timeout 60 "$bin/pretrain" "${tiny[@]}" --set logging.run_dir="$L" 2>&1) &&
  ok "a second run on a run directory in use: refused, naming host and pid $long" || bad "lock holder"
kill $long; wait $long 2>/dev/null

# ---- metrics that cannot be written ----
M=$tmp/full
mkdir -p "$M" && ln -s /dev/full "$M/losses.tsv"
expect_fail metrics "losses.tsv: cannot write" -- \
  "$bin/pretrain" "${tiny[@]}" --set train.train_steps=50 --set logging.run_dir="$M" &&
  [[ ! -e $M/checkpoints ]] && ok "losses.tsv on a full disk: the run stops at the first step"
M2=$tmp/full2
mkdir -p "$M2/logs" && ln -s /dev/full "$M2/logs/rank0.log"
expect_fail log "rank0.log: cannot write the log" -- \
  "$bin/pretrain" "${tiny[@]}" --set train.train_steps=50 --set logging.run_dir="$M2" &&
  [[ ! -e $M2/checkpoints ]] && ok "the log on a full disk: the run stops at the first step"

# ---- token ids past the vocabulary ----
D=$tmp/data
mkdir -p "$D"
"$bin/preprocess_data" --input build/data/fortunes/fortunes.jsonl --output-prefix "$D/bpe" \
  --tokenizer-type gpt2 --vocab-file tests/fixtures/tokenizers/gpt2/vocab.json \
  --merges-file tests/fixtures/tokenizers/gpt2/merges.txt --append-eod 2>/dev/null
for tp in 1 2; do
  expect_fail "ids-tp$tp" "is outside the model's vocabulary of 8000 ids" -- \
    "${mpi[@]}" -np 2 "$bin/pretrain" "${tiny[@]}" --set parallel.tensor_parallel_size=$tp \
    --set data.paths="[$D/bpe_text_document]" --set logging.run_dir="$tmp/ids$tp" &&
    ok "GPT-2 BPE data under the 8000-id SentencePiece model: refused at TP $tp"
done
/usr/bin/python3 - "$D/pad" <<'PY' | /usr/bin/python3 tests/data/indexed_dataset_ref.py write "$D/pad" uint16
import json, sys
for d in range(200):
    print(json.dumps({"document": d, "sequences": [[(d * 37 + k) % 7990 for k in range(80)] + ([8010] if d == 150 else [])]}))
PY
expect_fail ids-padding "token id 8010 is outside" -- \
  "$bin/pretrain" "${tiny[@]}" --set data.paths="[$D/pad]" --set logging.run_dir="$tmp/pad" &&
  ok "an id in the vocabulary padding (8010 of 8000, padded to 8064): refused"

# ---- a dataset truncated under a running job ----
cp build/data/fortunes/fortunes_text_document.bin build/data/fortunes/fortunes_text_document.idx "$D/"
T=$tmp/trunc
"$bin/pretrain" "${tiny[@]}" --set train.train_steps=100000 --set data.paths="[$D/fortunes_text_document]" \
  --set logging.run_dir="$T" > "$tmp/trunc.log" 2>&1 &
job=$!
for _ in $(seq 300); do [[ -s $T/losses.tsv ]] && break; sleep 0.1; done
truncate -s 4096 "$D/fortunes_text_document.bin"
for _ in $(seq 200); do kill -0 $job 2>/dev/null || break; sleep 0.1; done
if kill -0 $job 2>/dev/null; then kill $job; bad "truncated data: the run went on"; else
  wait $job; rc=$?
  grep -q "fortunes_text_document.bin: read past the end of the file" "$tmp/trunc.log" && [[ $rc != 0 && $rc != 135 ]] &&
    ok "a dataset truncated mid-run: exit $rc with a message naming the file" || { bad "truncation: rc $rc"; tail -3 "$tmp/trunc.log"; }
fi

# ---- data the run cannot use well ----
expect_fail weights "every weight is 0" -- "$bin/pretrain" "${tiny[@]}" \
  --set data.paths="[build/data/fortunes/fortunes_text_document, build/data/fortunes/fortunes_text_document]" \
  --set data.weights="[0, 0]" --print-config && ok "data.weights [0, 0]: refused"
echo '{"text": "A very short corpus."}' > "$D/short.jsonl"
"$bin/preprocess_data" --input "$D/short.jsonl" --output-prefix "$D/short" --tokenizer-type sentencepiece \
  --vocab-file build/data/fortunes/spm.model --append-eod 2>/dev/null
expect_fail short "fewer than one sample of 65" -- "$bin/pretrain" "${tiny[@]}" --set data.split=100,0,0 \
  --set data.paths="[$D/short_text_document]" --set logging.run_dir="$tmp/short" &&
  ok "a train split shorter than one sample: refused"
"$bin/pretrain" "${tiny[@]}" --set data.split=100,0,0 --set train.eval_interval=0 --set train.eval_steps=4 \
  --set train.train_steps=3 --set logging.run_dir="$tmp/noval" > "$tmp/noval.log" 2>&1 &&
  ok "eval_interval 0 with an empty validation split: trains without validation" || { bad "noval"; tail -3 "$tmp/noval.log"; }
expect_fail noval-needed "leaves the validation split without documents" -- "$bin/pretrain" "${tiny[@]}" \
  --set data.split=100,0,0 --set train.eval_interval=10 --set train.eval_steps=4 --set logging.run_dir="$tmp/noval2" &&
  ok "eval_interval > 0 with an empty validation split: refused with the hint"
# ---- the README's BERT example on a fresh clone: the default corpus is prepared on first use ----
# (in the folder BRAID_DEFAULT_CORPUS_DIR names: this build's own data/fortunes is prepared)
F=$tmp/fresh/data/fortunes
BRAID_DEFAULT_CORPUS_DIR=$F "$bin/pretrain" --recipe recipes/bert/tiny.yaml --set data.paths="[$F/fortunes_text_sentence]" \
  --set data.vocab_file="$F/spm.model" --set train.train_steps=2 --set train.eval_steps=0 \
  --set logging.run_dir="$tmp/fresh/run" > "$tmp/fresh.log" 2>&1 &&
  grep -q "preparing the embedded default corpus" "$tmp/fresh.log" && [[ -f $F/spm.model ]] &&
  ok "the BERT recipe with the default corpus not yet prepared: prepared on first use, trained" ||
  { bad "fresh corpus"; tail -5 "$tmp/fresh.log"; }

# ---- resources ----
for set in model.hidden_size=1048576 model.seq_length=1048576; do
  expect_fail "memory-$set" "but this machine has" -- "$bin/pretrain" "${tiny[@]}" --set "$set" \
    --set logging.run_dir="$tmp/mem" && ok "$set: refused with the memory estimate"
done
expect_fail memory-layers "7297.4M parameters" -- "$bin/pretrain" --recipe recipes/gpt/gpt2-small.yaml \
  --set model.num_layers=1024 --set logging.run_dir="$tmp/mem" && ok "gpt2-small with 1024 layers: refused (7297.4M parameters)"
{
  echo 'a: &a [x, x, x, x, x, x, x, x, x]'
  prev=a
  for k in b c d e f g h i; do echo "$k: &$k [*$prev, *$prev, *$prev, *$prev, *$prev, *$prev, *$prev, *$prev, *$prev]"; prev=$k; done
  echo 'recipe: gpt'
} > "$tmp/bomb.yaml"
(( $(stat -c %s "$tmp/bomb.yaml") < 1024 )) || bad "the alias bomb is not under 1 KB"
expect_fail alias-bomb "expands to more than 100000 values" -- "$bin/pretrain" --recipe "$tmp/bomb.yaml" --print-config &&
  ok "a 1 KB YAML alias bomb (9^9 values): refused by size"
exit $fail
