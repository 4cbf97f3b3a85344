#!/usr/bin/env bash
# Makes the seed corpora of the fuzz targets (tests/fuzz/seeds/<target>/) from real files of this
# repository and of a tiny run: recipes, JSON lines and a Hugging Face config.json, a small
# preprocessed dataset, a safetensors file, a checkpoint manifest, excerpts of the tokenizer
# fixtures. Run once from the repository root after a build; the seeds are committed.
#   tests/fuzz/make_seeds.sh [BIN=build/bin]
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${1:-build/bin}
out=tests/fuzz/seeds
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
rm -rf "$out" && mkdir -p "$out"/{fuzz_config,fuzz_json,fuzz_idx,fuzz_safetensors,fuzz_manifest,fuzz_tokenizer_files,fuzz_tokenizer_json}
# tokenizer.json and tiktoken: small files of every model kind
python3 tests/fuzz/tokenizer_json_seeds.py "$out/fuzz_tokenizer_json"
# config: the recipes, and one with overrides
for f in recipes/gpt/*.yaml recipes/bert/*.yaml; do
  cp "$f" "$out/fuzz_config/$(basename "$(dirname "$f")")_$(basename "$f")"
done
{ cat recipes/gpt/base.yaml; printf '\n#--set\ntrain.lr=1e-3\nmodel.num_layers=4\ndata.paths=[a, b]\n'; } > "$out/fuzz_config/with_sets.yaml"
# json
head -c 600 tests/fixtures/tokenizers/gpt2/cases.jsonl | head -n 3 > "$out/fuzz_json/cases.jsonl"
printf '{"text": "caf\\u00e9 \\ud83d\\ude00", "n": -12.5e3, "ok": [true, false, null], "o": {}}\n' > "$out/fuzz_json/escapes.json"
cat > "$out/fuzz_json/config.json" <<'JSON'
{"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "vocab_size": 50257, "n_positions": 1024,
 "n_embd": 768, "n_layer": 12, "n_head": 12, "n_inner": null, "activation_function": "gelu_new",
 "layer_norm_epsilon": 1e-05, "tie_word_embeddings": true}
JSON
# idx: 4 bytes of .bin size, then the .idx of a small dataset
printf '{"text": "one two three. Four five."}\n{"text": "six seven"}\n{"text": "eight"}\n' > "$tmp/s.jsonl"
for split in 0 1; do
  flags=(--append-eod); ((split)) && flags+=(--split-sentences)
  "$bin/preprocess_data" --input "$tmp/s.jsonl" --output-prefix "$tmp/d$split" --tokenizer-type gpt2 \
    --vocab-file tests/fixtures/tokenizers/gpt2/vocab.json --merges-file tests/fixtures/tokenizers/gpt2/merges.txt \
    "${flags[@]}" 2>/dev/null
done
for idx in "$tmp"/*.idx; do
  bin_file=${idx%.idx}.bin
  python3 -c 'import struct,sys; sys.stdout.buffer.write(struct.pack("<I", int(sys.argv[1])))' "$(stat -c %s "$bin_file")" \
    > "$out/fuzz_idx/$(basename "$idx")"
  cat "$idx" >> "$out/fuzz_idx/$(basename "$idx")"
done
# safetensors
python3 - "$out/fuzz_safetensors/small.safetensors" <<'PY'
import json, struct, sys
h = {"__metadata__": {"format": "pt"},
     "a": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
     "b": {"dtype": "BF16", "shape": [4], "data_offsets": [24, 32]},
     "c": {"dtype": "I64", "shape": [], "data_offsets": [32, 40]}}
raw = json.dumps(h).encode()
raw += b" " * ((8 - len(raw) % 8) % 8)
open(sys.argv[1], "wb").write(struct.pack("<Q", len(raw)) + raw + bytes(range(40)))
PY
# manifest: a one-step run of a very small GPT
"$bin/pretrain" --recipe recipes/gpt/tiny.yaml --set model.num_layers=1 --set model.hidden_size=16 \
  --set train.train_steps=1 --set train.eval_steps=0 --set logging.run_dir="$tmp/run" > /dev/null 2>&1
cp "$tmp/run/checkpoints/step_00000001/manifest.pb" "$out/fuzz_manifest/tiny_gpt.pb"
# and one of TP 2 x DP 2 with the distributed optimizer (moments stored as pieces, format 2)
mpirun --allow-run-as-root --oversubscribe --bind-to none -np 4 "$bin/pretrain" \
  --recipe recipes/gpt/tiny.yaml --set model.num_layers=1 --set model.hidden_size=16 \
  --set parallel.tensor_parallel_size=2 --set parallel.distributed_optimizer=true \
  --set train.train_steps=1 --set train.eval_steps=0 --set logging.run_dir="$tmp/run4" > /dev/null 2>&1
cp "$tmp/run4/checkpoints/step_00000001/manifest.pb" "$out/fuzz_manifest/tiny_gpt_pieces.pb"
# tokenizer files: the first byte picks GPT-2 (even) or WordPiece (odd)
python3 - "$out/fuzz_tokenizer_files" <<'PY'
import json, sys
d = sys.argv[1]
vocab = json.load(open("tests/fixtures/tokenizers/gpt2/vocab.json"))
small = {k: v for k, v in vocab.items() if v < 400}
merges = open("tests/fixtures/tokenizers/gpt2/merges.txt").read().split("\n")[:200]
open(f"{d}/gpt2", "wb").write(b"\x00" + json.dumps(small).encode() + b"\n#merges\n" + "\n".join(merges).encode())
words = open("tests/fixtures/tokenizers/wordpiece/vocab.txt").read().split("\n")[:400]
open(f"{d}/wordpiece", "wb").write(b"\x01" + "\n".join(words).encode())
PY
du -sh "$out"
