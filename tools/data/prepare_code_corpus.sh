#!/usr/bin/env bash
# A code corpus for fill-in-the-middle (docs/fim.md): the repository's own C++ sources, one
# document a file, a SentencePiece BPE model trained on them that keeps code as written (identity
# normalization, no dummy prefix, whitespace kept, byte fallback) with StarCoder's sentinels
# <fim_prefix> <fim_middle> <fim_suffix> <fim_pad> as user-defined symbols, and the GPT data:
#   OUT/code.jsonl                    one source file per line (its path, then its text)
#   OUT/code_spm.model                the tokenizer (2000 pieces; pad 0, eos 1, unk 2)
#   OUT/code_text_document.bin/.idx   GPT data (documents, EOD appended)
# Idempotent, and it never writes over a file (as prepare_default_corpus.sh).
# usage: prepare_code_corpus.sh [OUT] [BIN]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${1:-$root/build/data/code}
bin=${2:-$root/build/bin}
outputs=(code.jsonl code_spm.model code_spm.vocab code_text_document.bin code_text_document.idx)
have=()
for f in "${outputs[@]}"; do [[ -e $out/$f ]] && have+=("$f"); done
(( ${#have[@]} == ${#outputs[@]} )) && exit 0
if (( ${#have[@]} > 0 )); then
  echo "prepare_code_corpus.sh: $out holds ${have[*]} but not all of the code corpus; refusing" \
       "to write over them. HINT: move them elsewhere and run this again." >&2
  exit 1
fi
mkdir -p "$out"
tmp=$(mktemp -d "$out/.prepare.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
/usr/bin/python3 - "$root" "$tmp/code.jsonl" "$tmp/plain.txt" <<'PY'
import json, pathlib, sys
root, jsonl, plain = pathlib.Path(sys.argv[1]), sys.argv[2], sys.argv[3]
files = sorted(p for d in ("framework", "recipes", "launch", "tools", "tests")
               for p in (root / d).rglob("*") if p.suffix in (".cc", ".h") and p.is_file())
with open(jsonl, "w", encoding="utf-8") as j, open(plain, "w", encoding="utf-8") as t:
    for p in files:
        text = p.read_text(encoding="utf-8", errors="replace")
        j.write(json.dumps({"text": f"// {p.relative_to(root)}\n{text}"}) + "\n")
        for line in text.splitlines():
            if line.strip():
                t.write(line + "\n")
PY
spm_train --input="$tmp/plain.txt" --model_prefix="$tmp/code_spm" --vocab_size=2000 \
  --model_type=bpe --character_coverage=1.0 --byte_fallback=true --pad_id=0 --eos_id=1 --unk_id=2 \
  --bos_id=-1 --normalization_rule_name=identity --add_dummy_prefix=false \
  --remove_extra_whitespaces=false --split_digits=true \
  --user_defined_symbols='<fim_prefix>,<fim_middle>,<fim_suffix>,<fim_pad>' --num_threads=2 \
  --input_sentence_size=200000 --shuffle_input_sentence=true --minloglevel=1 \
  >"$tmp/spm_train.log" 2>&1 || { cat "$tmp/spm_train.log"; exit 1; }
"$bin/preprocess_data" --input "$tmp/code.jsonl" --tokenizer-type sentencepiece \
  --vocab-file "$tmp/code_spm.model" --workers 2 --output-prefix "$tmp/code" --append-eod
for f in "${outputs[@]}"; do
  mv --no-clobber "$tmp/$f" "$out/$f"
  [[ ! -e $tmp/$f ]] || { echo "prepare_code_corpus.sh: $out/$f appeared meanwhile; not replaced" >&2; exit 1; }
done
echo "[corpus] code corpus ready in $out"
