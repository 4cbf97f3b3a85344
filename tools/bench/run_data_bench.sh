#!/usr/bin/env bash
# Data benchmark: preprocessing throughput with GPT-2 BPE at 1 and 2 worker threads on the
# default corpus (x4), tokenizer throughput, loader throughput. Prints figures; never fails on
# time. Run after tools/setup.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
tools/data/prepare_default_corpus.sh >/dev/null
corpus=build/data/fortunes
fx=tests/fixtures/tokenizers
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for i in 1 2 3 4; do cat "$corpus/fortunes.jsonl"; done > "$tmp/x4.jsonl"
echo "== preprocess_data, GPT-2 BPE, $(du -m "$tmp/x4.jsonl" | cut -f1) MB of JSON Lines =="
for w in 1 2; do
  build/bin/preprocess_data --input "$tmp/x4.jsonl" --output-prefix "$tmp/out$w" \
    --tokenizer-type gpt2 --vocab-file $fx/gpt2/vocab.json --merges-file $fx/gpt2/merges.txt \
    --append-eod --workers $w 2>&1 | grep "done:"
done
echo "== preprocess_data peak memory (streaming: it must not grow with the corpus) =="
for i in $(seq 1 4); do cat "$tmp/x4.jsonl"; done > "$tmp/x16.jsonl"
for f in x4 x16; do
  /usr/bin/time -f "$f: $(du -m "$tmp/$f.jsonl" | cut -f1) MB input, peak RSS %M KB, %e s" \
    build/bin/preprocess_data --input "$tmp/$f.jsonl" --output-prefix "$tmp/mem_$f" \
    --tokenizer-type gpt2 --vocab-file $fx/gpt2/vocab.json --merges-file $fx/gpt2/merges.txt \
    --append-eod --workers 2 2>&1 | grep -v preprocess
done
echo "== tokenizers and loader =="
build/bin/bench_data "$corpus/fortunes.jsonl" $fx/gpt2 $fx/wordpiece/vocab.txt "$corpus/spm.model" \
  "$tmp/out1_text_document"
