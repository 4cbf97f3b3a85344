#!/usr/bin/env bash
# Runtime benchmark: BLAS in use and fp32 matmul rate (1 and 2 threads), then MPI all-reduce
# bus bandwidth on 2 ranks. Prints figures; never fails on time. Run after tools/setup.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
echo "== matmul (one process) =="
build/bin/bench_runtime
echo "== all-reduce (mpirun -np 2) =="
mpirun --allow-run-as-root --oversubscribe -np 2 --bind-to none build/bin/bench_runtime
