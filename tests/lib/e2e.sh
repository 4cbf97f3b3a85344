# Sourced by the end-to-end test scripts after `bin` and `src` are set: a temporary folder
# removed on exit, the repository as working directory, the default corpus prepared, one BLAS
# thread per rank, and the mpirun flags this machine needs.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$src"
tools/data/prepare_default_corpus.sh build/data/fortunes "$bin" >/dev/null
export OMP_NUM_THREADS=1
mpi=(mpirun --allow-run-as-root --oversubscribe --bind-to none)
