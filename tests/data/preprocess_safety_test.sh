#!/usr/bin/env bash
# preprocess_data never destroys what a user has, and refuses what is not a corpus:
#  - merge into a prefix that is one of its inputs is refused, the input untouched;
#  - a missing input (preprocess or merge) leaves an existing output pair untouched;
#  - an input that is an empty directory, all bad lines, binary data or nothing is refused, nothing
#    written; --workers beyond 4 x cores is capped with a message;
#  - Megatron's spellings (GPT2BPETokenizer, --merge-file, --json-keys k1 k2, --log-interval)
#    write the same bytes as ours; --help exits 0, a bad flag 2.
set -u
bin=$1
src=$2
cd "$src"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
P=$bin/preprocess_data
G=(--tokenizer-type gpt2 --vocab-file tests/fixtures/tokenizers/gpt2/vocab.json
   --merges-file tests/fixtures/tokenizers/gpt2/merges.txt)
source tests/lib/checks.sh
sums() { md5sum "$@" 2>/dev/null | awk '{print $1}' | tr '\n' ' '; }

printf '{"text": "one two three"}\n{"text": "four five six"}\n' > "$tmp/a.jsonl"
printf '{"text": "seven eight"}\n' > "$tmp/b.jsonl"
"$P" --input "$tmp/a.jsonl" --output-prefix "$tmp/A" "${G[@]}" --append-eod 2>/dev/null
"$P" --input "$tmp/b.jsonl" --output-prefix "$tmp/B" "${G[@]}" --append-eod 2>/dev/null
A=$tmp/A_text_document B=$tmp/B_text_document
before=$(sums "$A.bin" "$A.idx")

# 1. merge into one of its inputs
expect_fail merge-into-input "is the input" -- "$P" merge --output-prefix "$A" "$A" "$B" &&
  [[ $(sums "$A.bin" "$A.idx") == "$before" ]] && ok "merge into its own input refused, input untouched" ||
  bad "merge into its own input changed it"

# 2. a missing input leaves the existing output pair untouched
expect_fail missing-input "cannot read it" -- "$P" --input "$tmp/missing.jsonl" --output-prefix "$tmp/A" "${G[@]}" &&
  [[ $(sums "$A.bin" "$A.idx") == "$before" ]] && ok "missing input: the existing output untouched" ||
  bad "missing input: the existing output changed"
"$P" merge --output-prefix "$tmp/M" "$A" "$B" 2>/dev/null
mbefore=$(sums "$tmp/M.bin" "$tmp/M.idx")
expect_fail merge-missing "cannot open" -- "$P" merge --output-prefix "$tmp/M" "$A" "$tmp/nothere" &&
  [[ $(sums "$tmp/M.bin" "$tmp/M.idx") == "$mbefore" ]] && ok "merge with a missing input: the output untouched" ||
  bad "merge with a missing input changed the output"
ls "$tmp" | grep -q '\.tmp\.' && bad "temporary files left behind: $(ls "$tmp")"

# 3. not a corpus: refused, nothing written
mkdir "$tmp/dir"
expect_fail input-directory "holds no file" -- "$P" --input "$tmp/dir" --output-prefix "$tmp/D" "${G[@]}" &&
  ok "an empty input directory is refused"
printf 'not json\n{"txt": "x"}\n{bad\n' > "$tmp/allbad.jsonl"
expect_fail all-bad "3 of 3 documents are bad" -- "$P" --input "$tmp/allbad.jsonl" --output-prefix "$tmp/E" "${G[@]}" &&
  [[ ! -e $tmp/E_text_document.bin ]] && ok "every line bad: refused, nothing written"
head -c 200000 /dev/urandom > "$tmp/garbage.txt"
expect_fail binary "documents are bad" -- "$P" --input "$tmp/garbage.txt" --output-prefix "$tmp/F" "${G[@]}" &&
  [[ ! -e $tmp/F_text_document.bin ]] && ok "binary garbage: refused, nothing written"
: > "$tmp/empty.txt"
expect_fail empty "holds no document" -- "$P" --input "$tmp/empty.txt" --output-prefix "$tmp/H" "${G[@]}" &&
  [[ ! -e $tmp/H_text_document.bin ]] && ok "an empty input: refused, nothing written"

# 4. workers capped
out=$("$P" --input "$tmp/a.jsonl" --output-prefix "$tmp/W" "${G[@]}" --workers 100000 2>&1)
if [[ $? == 0 ]] && grep -q "capped at" <<<"$out"; then ok "--workers 100000 capped: $(grep -o 'capped at [0-9]*.*' <<<"$out")"; else bad "workers: $out"; fi

# 5. Megatron's spellings write the same bytes
printf '{"text": "Hello world.", "title": "A title"}\n{"text": "Second line", "title": "B"}\n' > "$tmp/k.jsonl"
"$P" --input "$tmp/k.jsonl" --output-prefix "$tmp/ours" "${G[@]}" --json-keys text,title --append-eod 2>/dev/null
"$P" --input "$tmp/k.jsonl" --output-prefix "$tmp/meg" --tokenizer-type GPT2BPETokenizer \
  --vocab-file tests/fixtures/tokenizers/gpt2/vocab.json --merge-file tests/fixtures/tokenizers/gpt2/merges.txt \
  --json-keys text title --append-eod --workers 2 --log-interval 1 --dataset-impl mmap 2>/dev/null
if cmp -s "$tmp/ours_text_document.bin" "$tmp/meg_text_document.bin" &&
   cmp -s "$tmp/ours_title_document.idx" "$tmp/meg_title_document.idx"; then
  ok "Megatron's flag spellings write the same files as ours"
else
  bad "Megatron's spellings differ"
fi

# 6. --help and usage errors
"$P" --help | grep -q "usage: preprocess_data" && ok "--help exits 0 with the usage" || bad "--help"
"$P" --bogus-flag 2>/dev/null; [[ $? == 2 ]] && ok "an unknown flag exits 2" || bad "unknown flag exit code"
"$P" --input "$tmp/a.jsonl" --output-prefix "$tmp/Z" --tokenizer-type nope --vocab-file x 2>/dev/null
[[ $? == 2 ]] && ok "an unknown --tokenizer-type exits 2" || bad "unknown tokenizer type exit code"
exit $fail
