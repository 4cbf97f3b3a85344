#!/usr/bin/env bash
# Our .bin/.idx against an independent reader/writer written from docs/formats.md in Python
# (tests/data/indexed_dataset_ref.py, numpy):
#  1. preprocess_data writes a dataset; Python parses it, asserts the header bytes, and its tokens
#     equal what `tokenize` gives for each document (+ EOD) -- for u16 (GPT-2) and for i32 (a
#     vocabulary of 65500+ entries forces int32).
#  2. Python writes datasets from the spec (u16 and i32, multi-sentence documents, an empty
#     sequence); our reader (inspect_dataset --dump) returns exactly the same documents.
#  3. merge of two datasets = their documents in order.
set -euo pipefail
bin=$1
src=$2
py=/usr/bin/python3
ref=$src/tests/data/indexed_dataset_ref.py
fx=$src/tests/fixtures/tokenizers
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# 1. ours -> Python
head -n 200 "$fx/gpt2/cases.jsonl" | $py -c 'import json,sys
for l in sys.stdin:
  t=json.loads(l)["text"]
  if t.strip(): print(json.dumps({"text": t}, ensure_ascii=False))' > "$tmp/in.jsonl"
"$bin/preprocess_data" --input "$tmp/in.jsonl" --output-prefix "$tmp/gpt" --tokenizer-type gpt2 \
  --vocab-file "$fx/gpt2/vocab.json" --merges-file "$fx/gpt2/merges.txt" --append-eod --workers 2 2>/dev/null
"$bin/tokenize" --type gpt2 --vocab "$fx/gpt2/vocab.json" --merges "$fx/gpt2/merges.txt" < "$tmp/in.jsonl" > "$tmp/tok.jsonl"
$py "$ref" header "$tmp/gpt_text_document" > "$tmp/header.json"
$py - "$tmp" <<'PY'
import json, sys
tmp = sys.argv[1]
h = json.load(open(f"{tmp}/header.json"))
assert h["magic"] == "4d4d49444944580000", h
assert h["version"] == 1 and h["dtype_code"] == 8, h          # uint16 for a 50257-entry vocab
want = [json.loads(l)["ids"] + [50256] for l in open(f"{tmp}/tok.jsonl")]
assert h["sequences"] == len(want) and h["doc_indices"] == len(want) + 1, (h, len(want))
assert h["idx_bytes"] == 34 + 12 * len(want) + 8 * (len(want) + 1)
assert h["bin_bytes"] == 2 * sum(map(len, want))
PY
$py "$ref" read "$tmp/gpt_text_document" > "$tmp/py_read.jsonl"
$py - "$tmp" <<'PY'
import json, sys
tmp = sys.argv[1]
want = [json.loads(l)["ids"] + [50256] for l in open(f"{tmp}/tok.jsonl")]
got = [json.loads(l)["sequences"] for l in open(f"{tmp}/py_read.jsonl")]
assert got == [[w] for w in want], "python reader disagrees with tokenize"
print(f"ok   ours -> python: {len(want)} documents, {sum(map(len, want))} tokens (uint16)")
PY

# 1b. ours -> Python with int32 tokens: a WordPiece vocabulary padded to 70000 entries
{ cat "$fx/wordpiece/vocab.txt"; seq -f "[filler%g]" 1 39478; } > "$tmp/big_vocab.txt"
"$bin/preprocess_data" --input "$tmp/in.jsonl" --output-prefix "$tmp/wp" --tokenizer-type wordpiece \
  --vocab-file "$tmp/big_vocab.txt" --split-sentences 2>/dev/null
$py "$ref" header "$tmp/wp_text_sentence" | grep -q '"dtype_code": 4,' || { echo "FAIL: expected int32 (code 4)"; exit 1; }
$py "$ref" read "$tmp/wp_text_sentence" > "$tmp/wp_read.jsonl"
"$bin/inspect_dataset" "$tmp/wp_text_sentence" --dump | cmp - "$tmp/wp_read.jsonl" || { echo "FAIL: int32 read differs"; exit 1; }
echo "ok   ours -> python: int32 (70000-entry vocabulary), sentence-split documents"

# 2. Python -> ours, u16 and i32
$py - > "$tmp/docs.jsonl" <<'PY'
import json, random
r = random.Random(7)
for d in range(300):
    seqs = [[r.randrange(0, 60000) for _ in range(r.randrange(0, 40))] for _ in range(r.randrange(1, 5))]
    print(json.dumps({"document": d, "sequences": seqs}))
PY
for dt in uint16 int32; do
  $py "$ref" write "$tmp/py_$dt" $dt < "$tmp/docs.jsonl"
  "$bin/inspect_dataset" "$tmp/py_$dt" --dump > "$tmp/ours_$dt.jsonl"
  cmp "$tmp/docs.jsonl" "$tmp/ours_$dt.jsonl" || { echo "FAIL: our reader differs on $dt"; exit 1; }
  "$bin/inspect_dataset" "$tmp/py_$dt" | grep -q "dtype $dt, 300 documents" || { echo "FAIL: header $dt"; exit 1; }
  echo "ok   python -> ours: $dt"
done

# 3. merge
"$bin/preprocess_data" merge --output-prefix "$tmp/merged" "$tmp/py_uint16" "$tmp/gpt_text_document" 2>/dev/null
$py "$ref" read "$tmp/merged" > "$tmp/merged.jsonl"
$py - "$tmp" <<'PY'
import json, sys
tmp = sys.argv[1]
a = [json.loads(l)["sequences"] for l in open(f"{tmp}/docs.jsonl")]
b = [json.loads(l)["sequences"] for l in open(f"{tmp}/py_read.jsonl")]
m = [json.loads(l)["sequences"] for l in open(f"{tmp}/merged.jsonl")]
assert m == a + b, "merge is not the concatenation"
print(f"ok   merge: {len(m)} documents")
PY

# 4. the output does not depend on the worker count
for w in 1 3; do
  "$bin/preprocess_data" --input "$tmp/in.jsonl" --output-prefix "$tmp/w$w" --tokenizer-type gpt2 \
    --vocab-file "$fx/gpt2/vocab.json" --merges-file "$fx/gpt2/merges.txt" --append-eod \
    --workers $w --batch-docs 7 2>/dev/null
done
cmp "$tmp/w1_text_document.bin" "$tmp/w3_text_document.bin" && cmp "$tmp/w1_text_document.idx" "$tmp/w3_text_document.idx" \
  || { echo "FAIL: 1 and 3 workers differ"; exit 1; }
echo "ok   1 and 3 workers give identical files"

# 5. bad input is counted and reported with its line number; the good documents are written
printf '%s\n' '{"text": "good one"}' '{"text": "unterminated' '{"title": "no text"}' '{"text": "   "}' \
  '{"text": 42}' '' '{"text": "good two"}' > "$tmp/bad.jsonl"
printf '{"text": "bytes \xff\xfe here"}\n' >> "$tmp/bad.jsonl"
"$bin/preprocess_data" --input "$tmp/bad.jsonl" --output-prefix "$tmp/bad" --tokenizer-type gpt2 \
  --vocab-file "$fx/gpt2/vocab.json" --merges-file "$fx/gpt2/merges.txt" 2> "$tmp/bad.log"
for want in "bad.jsonl:2: bad JSON line" "bad.jsonl:3: missing or non-string key" \
            "bad.jsonl:4: empty document" "bad.jsonl:5: missing or non-string key" \
            "bad.jsonl:8: invalid UTF-8" "done: 3 documents"; do
  grep -qF "$want" "$tmp/bad.log" || { echo "FAIL: no '$want' in:"; cat "$tmp/bad.log"; exit 1; }
done
echo "ok   bad input lines reported by number, 3 good documents written"
