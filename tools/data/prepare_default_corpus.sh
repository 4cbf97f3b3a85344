#!/usr/bin/env bash
# The embedded default corpus: English text from Debian's `fortunes`, a SentencePiece model
# trained on it with spm_train (unigram, 8000 pieces; ids pad 0, eos 1, unk 2, bos -1 as T5; plus
# [CLS] [SEP] [MASK] for the BERT recipe), and the preprocessed datasets:
#   OUT/fortunes.jsonl                    one fortune per line
#   OUT/spm.model                         the tokenizer
#   OUT/fortunes_text_document.bin/.idx   GPT data (documents, EOD appended)
#   OUT/fortunes_text_sentence.bin/.idx   BERT/T5/BART data (sentence-split)
# Idempotent: does nothing when the outputs exist. It never writes over a file: a folder that holds
# some of them but not all is refused (they may be a user's own), and the finished files are moved
# in without replacing anything. usage: prepare_default_corpus.sh [OUT] [BIN]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${1:-$root/build/data/fortunes}
bin=${2:-$root/build/bin}
outputs=(fortunes.jsonl spm.model spm.vocab fortunes_text_document.bin fortunes_text_document.idx
         fortunes_text_sentence.bin fortunes_text_sentence.idx)
have=()
for f in "${outputs[@]}"; do [[ -e $out/$f ]] && have+=("$f"); done
(( ${#have[@]} == ${#outputs[@]} )) && exit 0
if (( ${#have[@]} > 0 )); then
  echo "prepare_default_corpus.sh: $out holds ${have[*]} but not all of the default corpus;" \
       "refusing to write over them. HINT: move them elsewhere (or delete the folder if it is" \
       "only an interrupted preparation) and run this again." >&2
  exit 1
fi
mkdir -p "$out"
tmp=$(mktemp -d "$out/.prepare.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
python3 "$here/fortunes_to_jsonl.py" "$tmp/fortunes.jsonl"
# spm_train reads one sentence per line: each fortune on one line.
python3 -c 'import json,sys
for l in open(sys.argv[1], encoding="utf-8"): print(" ".join(json.loads(l)["text"].split()))' \
  "$tmp/fortunes.jsonl" > "$tmp/plain.txt"
spm_train --input="$tmp/plain.txt" --model_prefix="$tmp/spm" --vocab_size=8000 \
  --model_type=unigram --character_coverage=1.0 --pad_id=0 --eos_id=1 --unk_id=2 --bos_id=-1 \
  --user_defined_symbols='[CLS],[SEP],[MASK]' --num_threads=2 --input_sentence_size=0 \
  --minloglevel=1 >"$tmp/spm_train.log" 2>&1 || { cat "$tmp/spm_train.log"; exit 1; }
common=(--input "$tmp/fortunes.jsonl" --tokenizer-type sentencepiece --vocab-file "$tmp/spm.model" --workers 2)
"$bin/preprocess_data" "${common[@]}" --output-prefix "$tmp/fortunes" --append-eod
"$bin/preprocess_data" "${common[@]}" --output-prefix "$tmp/fortunes" --split-sentences
for f in "${outputs[@]}"; do
  mv --no-clobber "$tmp/$f" "$out/$f"
  [[ ! -e $tmp/$f ]] || { echo "prepare_default_corpus.sh: $out/$f appeared meanwhile; not replaced" >&2; exit 1; }
done
echo "[corpus] default corpus ready in $out"
