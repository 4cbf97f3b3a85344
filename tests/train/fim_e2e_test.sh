#!/usr/bin/env bash
# Fill-in-the-middle through pretrain and generate on a code corpus (the repository's own C++
# sources, tools/data/prepare_code_corpus.sh; recipes/gpt/code-fim-tiny.yaml):
#  1. 300 steps: the log names the sentinels, and the validation loss (FIM documents included)
#     falls by more than 0.3 nats and ends below the corpus's unigram entropy;
#  2. generate --fim-prefix/--fim-suffix writes a middle (no sentinel text in it); with --prompt
#     too it is a usage error;
#  3. exact resume: 20 steps straight == 10, stop, resume, 10 more at DP 2 (bit-identical: the
#     FIM draws are keyed by sample, not by how far a reader has gone);
#  4. a tokenizer without the sentinels (the default corpus's) is refused naming them, with the
#     data.added_tokens hint; with them added there, it trains.
set -euo pipefail
bin=$1
src=$2
source "$src/tests/lib/e2e.sh"
tools/data/prepare_code_corpus.sh build/data/code "$bin" > /dev/null
recipe=recipes/gpt/code-fim-tiny.yaml
# 1.
common=(--recipe $recipe --set train.train_steps=300 --set train.eval_interval=100)
run 1 "$tmp/fim"
grep -q "fill-in-the-middle: 0.5 of the documents, 0.5 of those SPM; sentinels <fim_prefix>=" "$tmp/fim.log" ||
  { echo "FAIL: no FIM line in the log"; cat "$tmp/fim.log"; exit 1; }
/usr/bin/python3 - "$tmp/fim.log" <<'PY'
import re, sys
log = open(sys.argv[1]).read()
valid = [float(v) for v in re.findall(r"valid loss ([0-9.]+)", log)]
entropy = float(re.search(r"unigram entropy of \S+: ([0-9.]+)", log).group(1))
assert len(valid) >= 3, valid
assert valid[0] - valid[-1] > 0.3 and valid[-1] < entropy, (valid, entropy)
print(f"ok   FIM on code learns: valid loss {valid[0]:.3f} -> {valid[-1]:.3f} (unigram entropy {entropy:.3f})")
PY
# 2.
middle=$("$bin/generate" --run-dir "$tmp/fim" --fim-prefix $'int Add(int a, int b) {\n  return ' \
  --fim-suffix $';\n}\n' --temperature 0.7 --seed 3 --max-new-tokens 30)
# The middle is sampled from a model trained on this repository's sources, so its text changes
# with them: any middle counts (indentation alone is code too), but never a sentinel's text.
[[ -n $middle ]] && ! grep -q "<fim_" <<<"$middle" ||
  { echo "FAIL: generate --fim-prefix/--fim-suffix wrote '$middle'"; exit 1; }
echo "ok   generate fills a middle: '$(head -c 60 <<<"$middle" | tr '\n' ' ')'"
out=$("$bin/generate" --run-dir "$tmp/fim" --fim-prefix a --prompt b 2>&1) && { echo "FAIL: accepted"; exit 1; }
grep -q "give one of --prompt, --logits and --fim-prefix/--fim-suffix" <<<"$out"
echo "ok   --fim-prefix with --prompt: usage error"
# 3.
common=(--recipe $recipe --set train.train_steps=20 --set train.eval_steps=0 --set logging.interval=100
        --set checkpoint.save_interval=10 --set train.micro_batch_size=2 --set train.global_batch_size=8)
run 2 "$tmp/straight"
run 2 "$tmp/resumed" --set train.exit_interval=10
run 2 "$tmp/resumed"
grep -q "resumed from .*step_00000010" "$tmp/resumed.log"
compare "$tmp/straight" "$tmp/resumed" 0 "FIM at DP 2: 20 steps straight == 10 + resume + 10"
# 4.
expect_error "has no token <fim_prefix>, <fim_middle>, <fim_suffix>, <fim_pad>" \
  "$bin/pretrain" --recipe recipes/gpt/tiny.yaml --set data.fim_rate=0.5 --run-dir "$tmp/nofim"
grep -q "HINT: add them with data.added_tokens" "$tmp/out.txt"
echo "ok   no sentinels in the vocabulary: refused by name, with a hint"
run 1 "$tmp/added" --recipe recipes/gpt/tiny.yaml --set data.fim_rate=0.5 \
  --set 'data.added_tokens=[<fim_prefix>, <fim_middle>, <fim_suffix>, <fim_pad>]' \
  --set train.train_steps=5 --set train.eval_steps=0
grep -q "sentinels <fim_prefix>=8000 <fim_middle>=8001 <fim_suffix>=8002 <fim_pad>=8003" "$tmp/added.log" ||
  { echo "FAIL: the added sentinels are not after the vocabulary"; grep fill-in "$tmp/added.log"; exit 1; }
echo "ok   sentinels added by data.added_tokens: ids 8000..8003 after the 8000 pieces, trains"
