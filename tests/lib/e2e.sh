# Sourced by the end-to-end test scripts after `bin` and `src` are set: a temporary folder
# removed on exit, the repository as working directory, the default corpus prepared, one BLAS
# thread per rank, the mpirun flags this machine needs, and expect_error.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$src"
tools/data/prepare_default_corpus.sh build/data/fortunes "$bin" >/dev/null
export OMP_NUM_THREADS=1
mpi=(mpirun --allow-run-as-root --oversubscribe --bind-to none)

# expect_error PATTERN COMMAND...: the command fails and its output contains PATTERN (grep).
expect_error() {
  local pattern=$1
  shift
  if "$@" > "$tmp/out.txt" 2>&1; then echo "FAIL: accepted: $*"; exit 1; fi
  grep -q -- "$pattern" "$tmp/out.txt" || { echo "FAIL: no '$pattern' in:"; cat "$tmp/out.txt"; exit 1; }
}
