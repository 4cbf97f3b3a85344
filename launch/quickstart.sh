#!/usr/bin/env bash
# README command 1: set up, build, prepare the embedded default corpus (Debian's fortunes,
# SentencePiece, .bin/.idx: first run only), and run the main job under mpirun with 2 ranks.
# Until the GPT recipe lands the job is the distributed self-check of the runtime: every
# collective on every dtype, on the world and on a TP=2 layout, against closed forms.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
tools/data/prepare_default_corpus.sh
build/bin/inspect_dataset build/data/fortunes/fortunes_text_document
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
exec mpirun --allow-run-as-root --oversubscribe --bind-to none -np 2 build/bin/pretrain --self-check "$@"
