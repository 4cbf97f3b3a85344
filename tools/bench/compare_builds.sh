#!/usr/bin/env bash
# Two builds side by side in one run (prints figures, never fails on time): the quickstart's
# tokens/s under mpirun -np 2, the GPT and BERT training benchmark (with the plain PyTorch loop
# alternated in), and preprocessing (the default corpus, and a one-line input: start-up cost).
#   tools/bench/compare_builds.sh OLD_BUILD_DIR [NEW_BUILD_DIR=build]
# e.g. OLD_BUILD_DIR from `git worktree add /tmp/old <commit>` built with tools/setup.sh there.
# The default corpus must be prepared (launch/quickstart.sh once).
set -u
cd "$(dirname "$0")/../.."
export OMP_NUM_THREADS=1
one=$(mktemp --suffix=.jsonl)
echo '{"text": "Hello world"}' > "$one"
mpi=(mpirun --allow-run-as-root --oversubscribe --bind-to none)
OLD=${1:?usage: compare_builds.sh OLD_BUILD_DIR [NEW_BUILD_DIR]}/bin NEW=${2:-build}/bin
echo "== quickstart (mpirun -np 2, 150 steps), tok/s of the progress lines after step 25 =="
for round in 1 2; do
  for which in OLD NEW; do
    bin=${!which}
    rm -rf /tmp/qs_$which
    "${mpi[@]}" -np 2 $bin/pretrain --recipe recipes/gpt/quickstart.yaml --set train.train_steps=150 \
      --set train.eval_interval=0 --set logging.run_dir=/tmp/qs_$which > /tmp/qs_$which.log 2>&1
    tok=$(grep -o '[0-9]* tok/s' /tmp/qs_$which.log | tail -n +2 | awk '{s+=$1; n++} END {printf "%.0f", s/n}')
    echo "round $round $which quickstart: mean $tok tok/s"
  done
done
echo "== GPT bench (4 layers, 256, seq 256, vocab 8192, batch 8, 2 threads, 20 steps) =="
for round in 1 2 3; do
  echo "round $round OLD: $($OLD/bench_gpt --threads 2 --steps 20 | sed -n 2p)"
  echo "round $round NEW: $($NEW/bench_gpt --threads 2 --steps 20 | sed -n 2p)"
  echo "round $round torch: $(/usr/bin/python3 tools/bench/gpt_pytorch_loop.py --threads 2 --steps 20 | tail -1)"
done
# Builds before the family registry took --bert 1, later ones --recipe bert.
old_bert_flag() { if grep -aq 'the model family' "$OLD/bench_gpt"; then echo "--recipe bert"; else echo "--bert 1"; fi; }
echo "== BERT bench (same sizes) =="
for round in 1 2; do
  echo "round $round OLD: $($OLD/bench_gpt $(old_bert_flag) --threads 2 --steps 20 | sed -n 2p)"
  echo "round $round NEW: $($NEW/bench_gpt --recipe bert --threads 2 --steps 20 | sed -n 2p)"
done
echo "== preprocessing: fortunes (jsonl) with the SentencePiece model, 2 workers; one-line input =="
for round in 1 2 3; do
  for which in OLD NEW; do
    bin=${!which}
    t=$( { /usr/bin/time -f "%e" $bin/preprocess_data --input build/data/fortunes/fortunes.jsonl \
      --output-prefix /tmp/pp_$which --tokenizer-type sentencepiece --vocab-file build/data/fortunes/spm.model \
      --append-eod --workers 2 > /dev/null; } 2>&1 | tail -1)
    t1=$( { /usr/bin/time -f "%e" $bin/preprocess_data --input "$one" --output-prefix /tmp/pp1_$which \
      --tokenizer-type gpt2 --vocab-file tests/fixtures/tokenizers/gpt2/vocab.json \
      --merges-file tests/fixtures/tokenizers/gpt2/merges.txt > /dev/null; } 2>&1 | tail -1)
    echo "round $round $which preprocess fortunes ${t}s, one line ${t1}s"
  done
done
cmp /tmp/pp_OLD_text_document.bin /tmp/pp_NEW_text_document.bin && cmp /tmp/pp_OLD_text_document.idx /tmp/pp_NEW_text_document.idx && echo "preprocessed outputs byte-identical"
