#!/usr/bin/env bash
# README command 2: set up, build, and run every test (unit, multi-rank under mpirun, end-to-end).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
tests/check_format.sh  # an unformatted C++ file fails the run
tests/check_paths.sh   # so does a comment naming a file that is not in the repository
tests/check_no_shell.sh  # and a value handed to a shell (std::system, popen, shell=True)
# Ranks share two cores: one BLAS/OpenMP thread per process unless a test sets its own.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
# The tokenizer test installs Hugging Face's tokenizers library from npm; here it must run, not skip.
export TOKENIZER_REFERENCE_REQUIRED=${TOKENIZER_REFERENCE_REQUIRED:-1}
ctest --test-dir "${BUILD_DIR:-build}" --output-on-failure -j 2 "$@"
# The parsers under libFuzzer with ASan and UBSan: their regression inputs, then 15 s each (the
# long campaigns are in BENCHMARKS.md, "Fuzzing"; CI keeps its time for the tests).
FUZZ_SECONDS=${FUZZ_SECONDS:-15} tests/fuzz/run.sh
