#!/usr/bin/env bash
# Figures for the second hardening round (prints them; never fails on time):
#  1. preprocess_data's peak RSS on one JSON line of about 50 MB, per tokenizer;
#  2. encoder-decoder generation: seconds for A and for B = 8 x A new tokens beyond those of 0 new
#     tokens (start-up, the encoder) (T5 tiny: 128 and 1024; BART tiny, whose decoder has 128
#     positions: 15 and 120; trained two steps so the decoder rarely ends early; sampling, fixed
#     seed; the fastest of 3 runs each), whose ratio says how the cost of a token grows with the tokens before it (8 for a
#     cost that does not grow; up to 64 for one that grows linearly, as re-running the whole
#     decoder for each token does).
# With OLD_BUILD_DIR (e.g. a `git worktree` of an older commit built with tools/setup.sh there)
# the same figures for that build, side by side.
#   tools/bench/run_hardening_bench.sh [OLD_BUILD_DIR] [NEW_BUILD_DIR=build]
set -u
cd "$(dirname "$0")/../.."
export OMP_NUM_THREADS=1
OLD=${1:-} NEW=${2:-build}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
tools/data/prepare_default_corpus.sh "$NEW/data/fortunes" "$NEW/bin" > /dev/null
builds=(NEW)
[[ -n $OLD ]] && builds=(OLD NEW)
/usr/bin/python3 - "$tmp/long.jsonl" <<'PY'
import json, random, sys
random.seed(5)
words = ["the", "secret", "of", "life", "is", "a", "fortune", "cookie", "never", "ends", "well"]
with open(sys.argv[1], "w") as f:
    f.write(json.dumps({"text": " ".join(random.choice(words) for _ in range(9_000_000))}) + "\n")
PY
G=tests/fixtures/tokenizers
echo "== preprocess_data, one JSON line of $(( $(stat -c %s "$tmp/long.jsonl") / 1000000 )) MB: peak RSS =="
for tok in "sentencepiece --vocab-file $NEW/data/fortunes/spm.model" \
           "gpt2 --vocab-file $G/gpt2/vocab.json --merge-file $G/gpt2/merges.txt" \
           "wordpiece --vocab-file $G/wordpiece/vocab.txt"; do
  for which in "${builds[@]}"; do
    dir=${!which}
    # shellcheck disable=SC2086
    /usr/bin/python3 - "$dir/bin/preprocess_data" "$tmp" "$which" $tok <<'PY'
import resource, subprocess, sys, time
exe, tmp, which, kind = sys.argv[1:5]
t = time.time()
r = subprocess.run([exe, "--input", f"{tmp}/long.jsonl", "--output-prefix", f"{tmp}/out_{which}",
                    "--workers", "1", "--tokenizer-type", kind] + sys.argv[5:], capture_output=True)
print(f"{which} {kind:13s} exit {r.returncode}, {time.time() - t:5.1f} s, peak RSS "
      f"{resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024:6.0f} MB")
PY
  done
done
echo "== generate (encoder-decoder): seconds for A and 8 x A new tokens, start-up subtracted =="
for spec in t5/tiny:128:1024 bart/tiny:15:120; do
  IFS=: read -r recipe A B <<< "$spec"
  "$NEW/bin/pretrain" --recipe "recipes/$recipe.yaml" --set train.train_steps=2 --set train.eval_steps=0 \
    --set logging.run_dir="$tmp/${recipe%/*}" > /dev/null 2>&1
  for which in "${builds[@]}"; do
    dir=${!which}
    for n in 0 $A $B; do  # the fastest of 3 runs: start-up varies by a few tenths of a second
      best=
      for _ in 1 2 3; do
        s=$(date +%s.%N)
        "$dir/bin/generate" --checkpoint "$tmp/${recipe%/*}/checkpoints/step_00000002" \
          --prompt "A fool and his money are soon parted." --max-new-tokens $n --temperature 1 \
          --seed 7 > "$tmp/gen.txt" 2>/dev/null
        best=$(/usr/bin/python3 -c "import sys; t = float(sys.argv[2]) - float(sys.argv[1]); print(f'{min(t, float(sys.argv[3] or 1e9)):.3f}')" "$s" "$(date +%s.%N)" "$best")
      done
      t[$n]=$best
    done
    /usr/bin/python3 -c "import sys; z, a, b = map(float, sys.argv[3:6]); print(f'{sys.argv[1]} {sys.argv[2]}: start-up {z:.2f} s; {sys.argv[6]} tokens {a - z:.2f} s, {sys.argv[7]} tokens {b - z:.2f} s (ratio {(b - z) / (a - z):.1f})')" \
      "$which" "$recipe" "${t[0]}" "${t[$A]}" "${t[$B]}" "$A" "$B"
  done
done
