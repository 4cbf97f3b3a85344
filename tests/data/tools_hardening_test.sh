#!/usr/bin/env bash
# The second hardening round's cases for the data tools and the launcher (each named as the issue
# named it):
#  - "tokenize --vocab <a directory>": an error naming it, exit 1 (no std::__ios_failure abort),
#    for each tokenizer type;
#  - "tokenize turns invalid UTF-8 into <unk> without a report": reported with its line number,
#    tokenized as preprocess_data does (U+FFFD), exit 1;
#  - "lone surrogates are dropped by both": a JSON "\ud800" is a reported bad line in tokenize and
#    in preprocess_data;
#  - "inspect_dataset --decode prints an empty text for ids past the vocabulary": refused, naming
#    the document and the id;
#  - "one 50 MB JSON line takes 6.9 GB": preprocess_data's peak memory for it stays bounded;
#  - "launch/launch.sh accepts --nodes 0, --tp 0, --ranks-per-node 0, --hosts ,n2; a missing value
#    prints '$2: unbound variable'": usage errors, exit 2, naming the flag.
set -u
bin=$1
src=$2
source "$src/tests/lib/e2e.sh"
source tests/lib/checks.sh
spm=build/data/fortunes/spm.model
G=tests/fixtures/tokenizers/gpt2

# ---- tokenize --vocab <a directory> ----
for t in sentencepiece wordpiece gpt2; do
  extra=()
  [[ $t == gpt2 ]] && extra=(--merges "$G/merges.txt")
  out=$(echo '{"text": "a"}' | "$bin/tokenize" --type $t --vocab "$tmp" "${extra[@]}" 2>&1); rc=$?
  [[ $rc == 1 ]] && grep -q "is a directory" <<<"$out" && ! grep -q "terminate" <<<"$out" &&
    ok "tokenize --type $t --vocab <a directory>: '$(tail -1 <<<"$out" | cut -c1-70)...', exit 1" ||
    { bad "tokenize --type $t --vocab DIR: exit $rc"; echo "$out" | tail -3; }
done
out=$(echo '{"text": "a"}' | "$bin/tokenize" --type gpt2 --vocab "$G/vocab.json" --merges "$tmp" 2>&1); rc=$?
[[ $rc == 1 ]] && grep -q "is a directory" <<<"$out" && ok "tokenize --merges <a directory>: refused, exit 1" ||
  { bad "tokenize --merges DIR: exit $rc"; echo "$out" | tail -3; }

# ---- tokenize turns invalid UTF-8 into <unk> without a report ----
printf '{"text": "caf\xe9 ok"}\n{"text": "fine"}\n' > "$tmp/bad_utf8.jsonl"
"$bin/tokenize" --type sentencepiece --vocab "$spm" < "$tmp/bad_utf8.jsonl" > "$tmp/bad_utf8.out" 2> "$tmp/bad_utf8.err"; rc=$?
good=$(printf '{"text": "caf\xef\xbf\xbd ok"}\n' | "$bin/tokenize" --type sentencepiece --vocab "$spm")
[[ $rc == 1 ]] && grep -q "stdin:1: invalid UTF-8" "$tmp/bad_utf8.err" && [[ $(wc -l < "$tmp/bad_utf8.out") == 2 ]] &&
  [[ $(head -1 "$tmp/bad_utf8.out") == "$good" ]] &&
  ok "tokenize with invalid UTF-8: 'stdin:1: invalid UTF-8' reported, ids of the U+FFFD text (as preprocess_data), exit 1" ||
  { bad "tokenize invalid UTF-8: exit $rc"; cat "$tmp/bad_utf8.err"; }

# ---- lone surrogates are dropped by both ----
printf '{"text": "half \\ud800 pair"}\n{"text": "a pair \\ud83d\\ude00 ok"}\n' > "$tmp/surrogate.jsonl"
"$bin/tokenize" --type sentencepiece --vocab "$spm" < "$tmp/surrogate.jsonl" > "$tmp/sur.out" 2> "$tmp/sur.err"; rc=$?
[[ $rc == 1 ]] && grep -q "stdin:1: .*lone surrogate" "$tmp/sur.err" && ! grep -q "stdin:2" "$tmp/sur.err" &&
  grep -q '"error"' <(head -1 "$tmp/sur.out") && grep -q '"ids"' <(sed -n 2p "$tmp/sur.out") &&
  ok "tokenize: a lone surrogate \\ud800 is a reported bad line (a proper pair is not)" ||
  { bad "tokenize lone surrogate: exit $rc"; cat "$tmp/sur.err"; }
"$bin/preprocess_data" --input "$tmp/surrogate.jsonl" --output-prefix "$tmp/sur" --tokenizer-type sentencepiece \
  --vocab-file "$spm" > "$tmp/pre.out" 2>&1
grep -q ":1: .*lone surrogate" "$tmp/pre.out" && ! grep -q ":2: " "$tmp/pre.out" &&
  ok "preprocess_data: a lone surrogate is a reported bad line" || { bad "preprocess_data lone surrogate"; tail -5 "$tmp/pre.out"; }

# ---- inspect_dataset --decode prints an empty text for ids past the vocabulary ----
printf '{"document": 0, "sequences": [[5, 6, 7]]}\n{"document": 1, "sequences": [[8, 9000, 10]]}\n' |
  /usr/bin/python3 tests/data/indexed_dataset_ref.py write "$tmp/ids" int32
out=$("$bin/inspect_dataset" "$tmp/ids" --decode --tokenizer-type sentencepiece --vocab-file "$spm" 2>&1); rc=$?
[[ $rc == 1 ]] && grep -q "document 1 holds id 9000, outside the 8000 ids" <<<"$out" &&
  ok "inspect_dataset --decode with an id past the vocabulary: refused naming document 1 and id 9000, exit 1" ||
  { bad "inspect_dataset --decode past the vocabulary: exit $rc"; echo "$out" | tail -3; }

# ---- one 50 MB JSON line ----
/usr/bin/python3 - "$tmp/long.jsonl" <<'PY'
import json, random, sys
random.seed(5)
words = ["the", "secret", "of", "life", "is", "a", "fortune", "cookie", "never", "ends", "well"]
text = " ".join(random.choice(words) for _ in range(9_000_000))  # ~50 MB
with open(sys.argv[1], "w") as f:
    f.write(json.dumps({"text": text}) + "\n")
    f.write(json.dumps({"text": "a short one"}) + "\n")
PY
/usr/bin/python3 - "$bin/preprocess_data" "$tmp" "$spm" <<'PY' || fail=1
import resource, subprocess, sys
exe, tmp, spm = sys.argv[1:]
r = subprocess.run([exe, "--input", f"{tmp}/long.jsonl", "--output-prefix", f"{tmp}/long",
                    "--tokenizer-type", "sentencepiece", "--vocab-file", spm, "--workers", "2"],
                   capture_output=True, text=True)
peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
size_mb = 50
if r.returncode != 0 or peak_mb > 1500:
    print(f"FAIL one {size_mb} MB JSON line: exit {r.returncode}, peak RSS {peak_mb:.0f} MB\n{r.stderr[-600:]}")
    sys.exit(1)
print(f"ok   one {size_mb} MB JSON line: preprocessed with a peak RSS of {peak_mb:.0f} MB (bound 1500 MB; it was 6.9 GB)")
PY

# The 50 MB document was tokenized in pieces (framework/data/tokenizer.h, EncodeInPieces): its ids
# equal spm_encode's of the whole line (SentencePiece's own command; a 3 MB line here).
/usr/bin/python3 -c 'import json, sys
t = json.loads(open(sys.argv[1]).readline())["text"][:3_000_000]
print(t[:t.rindex(" ")])' "$tmp/long.jsonl" > "$tmp/mid.txt"
/usr/bin/python3 -c 'import json, sys; print(json.dumps({"text": open(sys.argv[1]).read().rstrip("\n")}))' \
  "$tmp/mid.txt" > "$tmp/mid.jsonl"
"$bin/preprocess_data" --input "$tmp/mid.jsonl" --output-prefix "$tmp/mid" --tokenizer-type sentencepiece \
  --vocab-file "$spm" > /dev/null 2>&1
spm_encode --model "$spm" --output_format=id < "$tmp/mid.txt" > "$tmp/mid.spm"
/usr/bin/python3 - "$tmp" <<'PY' && ok "a 3 MB document tokenized in pieces: ids equal spm_encode's of the whole line" || bad "pieces against spm_encode"
import json, subprocess, sys
t = sys.argv[1]
ours = json.loads(subprocess.run(["/usr/bin/python3", "tests/data/indexed_dataset_ref.py", "read",
                                  f"{t}/mid_text_document"], capture_output=True, text=True,
                                 check=True).stdout.splitlines()[0])["sequences"][0]
ref = [int(x) for x in open(f"{t}/mid.spm").read().split()]
assert len(ours) > 500000 and ours == ref, (len(ours), len(ref), next((i for i, (a, b) in enumerate(zip(ours, ref)) if a != b), None))
PY

# ---- --tiktoken-pattern with another tokenizer type is a usage error, not ignored ----
H=tests/fixtures/tokenizers/hf/bert-wordpiece.json
out=$(echo '{"text": "a"}' | "$bin/tokenize" --type huggingface --tokenizer-file "$H" --tiktoken-pattern 'x' 2>&1); rc=$?
[[ $rc == 2 ]] && grep -q "tiktoken-pattern" <<<"$out" && ok "tokenize --type huggingface --tiktoken-pattern: usage error, exit 2" ||
  { bad "tokenize --type huggingface --tiktoken-pattern: exit $rc"; echo "$out" | tail -3; }
out=$("$bin/preprocess_data" --input "$tmp/bad_utf8.jsonl" --output-prefix "$tmp/tp" --tokenizer-type huggingface \
  --tokenizer-file "$H" --tiktoken-pattern 'x' 2>&1); rc=$?
[[ $rc == 2 ]] && grep -q "tiktoken-pattern" <<<"$out" && ! ls "$tmp"/tp* >/dev/null 2>&1 &&
  ok "preprocess_data --tokenizer-type huggingface --tiktoken-pattern: usage error, exit 2, nothing written" ||
  { bad "preprocess_data --tokenizer-type huggingface --tiktoken-pattern: exit $rc"; echo "$out" | tail -3; }

# ---- launch/launch.sh flags ----
L=launch/launch.sh
for args in "--nodes 0" "--tp 0" "--ranks-per-node 0" "--threads -1" "--hosts ,n2" "--hosts n1,,n2" "--tp" \
            "--nodes" "--bind sideways" "--kill-timeout x" "--nodes 2 --hosts n1"; do
  # shellcheck disable=SC2086
  out=$("$L" --dry-run $args -- --recipe recipes/gpt/tiny.yaml 2>&1); rc=$?
  [[ $rc == 2 ]] && ! grep -q "unbound variable" <<<"$out" && grep -q "launch.sh: " <<<"$out" &&
    ok "launch.sh $args: usage error, exit 2 ('$(head -1 <<<"$out" | cut -c1-60)')" ||
    { bad "launch.sh $args: exit $rc"; echo "$out" | head -3; }
done
exit $fail
