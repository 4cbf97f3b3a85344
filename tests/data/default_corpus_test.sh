#!/usr/bin/env bash
# The embedded default corpus builds from Debian's fortunes with nothing downloaded, and the
# SentencePiece tokenizer (through libsentencepiece) round-trips it:
#  - prepare_default_corpus.sh writes the model and both datasets into a fresh folder;
#  - the model has the T5 ids (pad 0, eos 1, unk 2) and [CLS] [SEP] [MASK];
#  - our tokenize --type sentencepiece gives the same ids as Debian's spm_encode;
#  - the GPT dataset's documents end with EOD (1) and decode back to the fortunes;
#  - a second run is a no-op.
set -euo pipefail
bin=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
bash "$src/tools/data/prepare_default_corpus.sh" "$tmp/corpus" "$bin" >/dev/null 2>&1
for f in spm.model fortunes_text_document.idx fortunes_text_sentence.idx fortunes.jsonl; do
  [[ -s $tmp/corpus/$f ]] || { echo "FAIL: $f missing"; exit 1; }
done
model=$tmp/corpus/spm.model
head -n 300 "$tmp/corpus/fortunes.jsonl" > "$tmp/some.jsonl"
"$bin/tokenize" --type sentencepiece --vocab "$model" < "$tmp/some.jsonl" > "$tmp/ours.jsonl"
/usr/bin/python3 -c 'import json,sys
for l in open(sys.argv[1], encoding="utf-8"): print(json.loads(l)["text"].replace("\n", " "))' "$tmp/some.jsonl" > "$tmp/some.txt"
# spm_encode reads a line at a time: compare on the same one-line texts.
/usr/bin/python3 -c 'import json,sys
for l in open(sys.argv[1], encoding="utf-8"): print(json.dumps({"text": l.rstrip("\n")}, ensure_ascii=False))' "$tmp/some.txt" > "$tmp/oneline.jsonl"
"$bin/tokenize" --type sentencepiece --vocab "$model" < "$tmp/oneline.jsonl" > "$tmp/ours1.jsonl"
spm_encode --model="$model" --output_format=id < "$tmp/some.txt" > "$tmp/spm_ids.txt"
/usr/bin/python3 - "$tmp" <<'PY'
import json, sys
tmp = sys.argv[1]
ours = [json.loads(l)["ids"] for l in open(f"{tmp}/ours1.jsonl")]
ref = [[int(x) for x in l.split()] for l in open(f"{tmp}/spm_ids.txt")]
assert len(ours) == len(ref) == 300, (len(ours), len(ref))
bad = [i for i in range(300) if ours[i] != ref[i]]
assert not bad, f"{len(bad)} lines differ from spm_encode, first {bad[0]}"
print("ok   tokenize --type sentencepiece == spm_encode on 300 fortunes")
PY
"$bin/inspect_dataset" "$tmp/corpus/fortunes_text_document" --decode --tokenizer-type sentencepiece \
  --vocab-file "$model" > "$tmp/decoded_all.jsonl"
head -n 300 "$tmp/decoded_all.jsonl" > "$tmp/decoded.jsonl"
/usr/bin/python3 - "$tmp" <<'PY'
import json, sys
tmp = sys.argv[1]
src = [json.loads(l)["text"] for l in open(f"{tmp}/some.jsonl", encoding="utf-8")]
dec = [json.loads(l) for l in open(f"{tmp}/decoded.jsonl", encoding="utf-8")]
norm = lambda s: " ".join(s.split())
ok = 0
for s, d in zip(src, dec):
    assert d["sequences"][-1][-1] == 1, "document does not end with EOD (id 1)"
    ok += norm(d["text"]) == norm(s)
assert ok >= 295, f"only {ok}/300 fortunes decode back"
print(f"ok   {ok}/300 documents decode back to their fortune (whitespace-normalised), EOD=1")
PY
"$bin/tokenize" --type sentencepiece --vocab "$model" <<<'{"text": "[MASK] [CLS] [SEP]"}' > "$tmp/special.jsonl"
grep -qF '"[MASK]", "▁", "[CLS]", "▁", "[SEP]"' "$tmp/special.jsonl" \
  || { echo "FAIL: [MASK] [CLS] [SEP] are not single pieces: $(cat "$tmp/special.jsonl")"; exit 1; }
echo "ok   [MASK] [CLS] [SEP] are pieces of their own"
before=$(stat -c %Y "$tmp/corpus/spm.model")
bash "$src/tools/data/prepare_default_corpus.sh" "$tmp/corpus" "$bin"
[[ $(stat -c %Y "$tmp/corpus/spm.model") == "$before" ]] || { echo "FAIL: second run rebuilt"; exit 1; }
echo "ok   second run is a no-op"
