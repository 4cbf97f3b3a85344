#!/usr/bin/env bash
# Training speed of the GPT, T5 and BART recipes, two builds side by side in one run (prints
# figures, never fails on time): bench_gpt --recipe FAMILY (4 layers, width 256, sequence 256,
# batch 8, 2 threads, 20 steps), the builds alternated, three rounds each.
#   tools/bench/run_family_speed_bench.sh OLD_BUILD_DIR [NEW_BUILD_DIR=build]
# e.g. OLD_BUILD_DIR from `git worktree add /tmp/old <commit>`, configured with cmake -G Ninja and
# built with `ninja bench_gpt` there.
set -u
cd "$(dirname "$0")/../.."
export OMP_NUM_THREADS=1
OLD=${1:?usage: run_family_speed_bench.sh OLD_BUILD_DIR [NEW_BUILD_DIR]}/bin NEW=${2:-build}/bin
for family in gpt t5 bart; do
  echo "== $family =="
  for round in 1 2 3; do
    for which in OLD NEW; do
      bin=${!which}
      echo "round $round $which: $($bin/bench_gpt --recipe $family --threads 2 --steps 20 | sed -n 2p)"
    done
  done
done
