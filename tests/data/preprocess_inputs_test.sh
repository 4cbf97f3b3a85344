#!/usr/bin/env bash
# preprocess_data's inputs: gzip and zstd give byte-identical .bin/.idx to the plain file;
# several files, a directory and a glob pattern equal the concatenated file; a truncated archive
# is refused naming the file, and the existing outputs stay as they were; a bad line in the second
# file is reported with that file's name and line number.
set -u
bin=$1
src=$2
cd "$src"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
P=$bin/preprocess_data
G=(--tokenizer-type gpt2 --vocab-file tests/fixtures/tokenizers/gpt2/vocab.json
   --merges-file tests/fixtures/tokenizers/gpt2/merges.txt --append-eod)
source tests/lib/checks.sh
sums() { md5sum "$@" 2>/dev/null | awk '{print $1}' | tr '\n' ' '; }

# A corpus of a few thousand documents (the fixture cases and fortunes), several compression
# blocks long.
/usr/bin/python3 - "$tmp/all.jsonl" <<'PY'
import glob, json, sys
docs = [json.loads(l)["text"] for l in open("tests/fixtures/tokenizers/gpt2/cases.jsonl", encoding="utf-8")]
for path in sorted(glob.glob("/usr/share/games/fortunes/*")):
    if path.endswith((".dat", ".u8")):
        continue
    try:
        docs += [p.strip() for p in open(path, encoding="utf-8", errors="replace").read().split("\n%\n") if p.strip()]
    except (IsADirectoryError, UnicodeDecodeError):
        pass
with open(sys.argv[1], "w", encoding="utf-8") as f:
    for d in docs[:6000]:
        f.write(json.dumps({"text": d}, ensure_ascii=False) + "\n")
PY
n=$(wc -l < "$tmp/all.jsonl")
"$P" --input "$tmp/all.jsonl" --output-prefix "$tmp/plain" "${G[@]}" 2>/dev/null || bad "plain input"
want=$(sums "$tmp/plain_text_document.bin" "$tmp/plain_text_document.idx")

gzip -c "$tmp/all.jsonl" > "$tmp/all.jsonl.gz"
"$P" --input "$tmp/all.jsonl.gz" --output-prefix "$tmp/gz" "${G[@]}" 2>/dev/null
[[ $(sums "$tmp/gz_text_document.bin" "$tmp/gz_text_document.idx") == "$want" ]] &&
  ok ".jsonl.gz ($n documents): .bin/.idx identical to the plain input" || bad ".jsonl.gz differs"

zstd -q -c "$tmp/all.jsonl" > "$tmp/all.jsonl.zst" || bad "zstd (tools/setup.sh installs it)"
"$P" --input "$tmp/all.jsonl.zst" --output-prefix "$tmp/zst" "${G[@]}" 2>/dev/null
[[ $(sums "$tmp/zst_text_document.bin" "$tmp/zst_text_document.idx") == "$want" ]] &&
  ok ".jsonl.zst: .bin/.idx identical to the plain input" || bad ".jsonl.zst differs"

# Several files: a list, a directory, a glob; mixed compression. (The last line of each part
# ends with a newline, as split writes it.)
mkdir "$tmp/parts"
split -l 1500 -d "$tmp/all.jsonl" "$tmp/parts/part-" --additional-suffix=.jsonl
gzip "$tmp/parts/part-01.jsonl"
zstd -q --rm "$tmp/parts/part-02.jsonl"
list=$(ls "$tmp"/parts/* | sort | paste -sd,)
"$P" --input "$list" --output-prefix "$tmp/list" "${G[@]}" 2>/dev/null
[[ $(sums "$tmp/list_text_document.bin" "$tmp/list_text_document.idx") == "$want" ]] &&
  ok "a comma-separated list of plain, .gz and .zst parts: identical" || bad "list differs"
"$P" --input "$tmp/parts" --output-prefix "$tmp/dir" --text-format jsonl "${G[@]}" 2>/dev/null
[[ $(sums "$tmp/dir_text_document.bin" "$tmp/dir_text_document.idx") == "$want" ]] &&
  ok "a directory of parts: identical" || bad "directory differs"
"$P" --input "$tmp/parts/part-*" --output-prefix "$tmp/glob" "${G[@]}" 2>/dev/null
[[ $(sums "$tmp/glob_text_document.bin" "$tmp/glob_text_document.idx") == "$want" ]] &&
  ok "a glob pattern: identical" || bad "glob differs"
expect_fail glob-nothing "matches no file" -- "$P" --input "$tmp/parts/none-*" --output-prefix "$tmp/x" "${G[@]}" &&
  ok "a pattern that matches nothing is refused"

# A truncated archive: refused by name, the existing outputs untouched.
before=$(sums "$tmp/gz_text_document.bin" "$tmp/gz_text_document.idx")
size=$(stat -c %s "$tmp/all.jsonl.gz")
head -c $((size / 2)) "$tmp/all.jsonl.gz" > "$tmp/cut.jsonl.gz"
cp "$tmp/cut.jsonl.gz" "$tmp/keep.gz"
expect_fail truncated-gz "cut.jsonl.gz: the gzip stream" -- "$P" --input "$tmp/cut.jsonl.gz" --output-prefix "$tmp/gz" "${G[@]}" &&
  [[ $(sums "$tmp/gz_text_document.bin" "$tmp/gz_text_document.idx") == "$before" ]] &&
  ok "a truncated .gz is refused by name, the outputs untouched"
size=$(stat -c %s "$tmp/all.jsonl.zst")
head -c $((size / 2)) "$tmp/all.jsonl.zst" > "$tmp/cut.jsonl.zst"
expect_fail truncated-zst "cut.jsonl.zst: the zstd stream is truncated" -- "$P" --input "$tmp/cut.jsonl.zst" --output-prefix "$tmp/zst" "${G[@]}" &&
  [[ $(sums "$tmp/zst_text_document.bin" "$tmp/zst_text_document.idx") == "$want" ]] &&
  ok "a truncated .zst is refused by name, the outputs untouched"
printf 'not a zstd frame at all' | cat <(printf '\x28\xb5\x2f\xfd') - > "$tmp/bad.jsonl.zst"
expect_fail corrupt-zst "bad.jsonl.zst: the zstd stream" -- "$P" --input "$tmp/bad.jsonl.zst" --output-prefix "$tmp/bad" "${G[@]}" &&
  ok "a corrupt .zst is refused by name"

# A bad line in the second file is reported with that file's name and its own line number.
printf '{"text": "a"}\n{"text": "b"}\n' > "$tmp/one.jsonl"
printf '{"text": "c"}\n{"text": \n{"text": "d"}\n' > "$tmp/two.jsonl"
out=$("$P" --input "$tmp/one.jsonl,$tmp/two.jsonl" --output-prefix "$tmp/ab" "${G[@]}" 2>&1)
grep -qF "two.jsonl:2: bad JSON line" <<<"$out" && ok "a bad line is reported as two.jsonl:2" ||
  { bad "bad line location"; echo "$out" | head -5; }
exit $fail
