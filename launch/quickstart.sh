#!/usr/bin/env bash
# README command 1: set up, build what the main job needs (pretrain, generate, preprocess_data:
# not the tests and benchmarks, which tests/run.sh builds), prepare the embedded default corpus
# (Debian's fortunes, SentencePiece, .bin/.idx: first run only), then train the quickstart GPT
# under mpirun with 2 ranks (DP=2, through launch/launch.sh: Ctrl-C saves a checkpoint and stops)
# and sample from it. Extra arguments go to pretrain (e.g. --set train.train_steps=100).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh pretrain generate preprocess_data
tools/data/prepare_default_corpus.sh
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
# The main job starts fresh; an earlier quickstart run is kept, renamed, not deleted.
if [[ -e runs/quickstart ]]; then
  n=1
  while [[ -e runs/quickstart.$n ]]; do n=$((n + 1)); done
  mv runs/quickstart "runs/quickstart.$n"
  echo "[quickstart] the previous run is kept in runs/quickstart.$n"
fi
launch/launch.sh --ranks-per-node 2 --threads 1 -- --recipe recipes/gpt/quickstart.yaml "$@"
echo "--- a sample from the trained model (build/bin/generate --run-dir runs/quickstart) ---"
build/bin/generate --run-dir runs/quickstart --prompt "The secret of life is" \
  --max-new-tokens 40 --temperature 0.8 --top-k 40
