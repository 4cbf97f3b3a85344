# Sourced by the end-to-end test scripts after `bin` and `src` are set: a temporary folder
# removed on exit, the repository as working directory, the default corpus prepared, one BLAS
# thread per rank, the mpirun flags this machine needs, expect_error, and for the resume tests
# run (pretrain with the caller's `common` arguments) and compare (two runs' losses).
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

# run NP RUN_DIR ARGS...: pretrain on NP ranks with the caller's "${common[@]}", logging to
# RUN_DIR (its output in RUN_DIR.log, printed on failure).
run() {
  local np=$1 dir=$2
  shift 2
  "${mpi[@]}" -np "$np" "$bin/pretrain" "${common[@]}" --set logging.run_dir="$dir" "$@" \
    > "$dir.log" 2>&1 || { cat "$dir.log"; return 1; }
}

# compare A B TOLERANCE NAME: the losses of two runs (losses.tsv; a step a resumed run wrote
# again counts once; both runs steps 1..N alike), bit-identical when TOLERANCE is 0, else within
# it (relative).
compare() {
  /usr/bin/python3 - "$1" "$2" "$3" "$4" <<'PY'
import sys
def losses(run):
    by_step = {}
    for line in open(run + "/losses.tsv"):
        f = line.split()
        by_step[int(f[0])] = f[1]
    return by_step
a, b = losses(sys.argv[1]), losses(sys.argv[2])
steps = sorted(a)
assert steps == list(range(1, len(steps) + 1)) and sorted(b) == steps, (sorted(a), sorted(b))
a, b = [a[s] for s in steps], [b[s] for s in steps]
tol, name = float(sys.argv[3]), sys.argv[4]
worst = max(abs(float(x) - float(y)) / abs(float(x)) for x, y in zip(a, b))
if tol == 0:
    assert a == b, f"{name}: not bit-identical (worst {worst:.2e})"
else:
    assert worst <= tol, f"{name}: relative difference {worst:.2e} > {tol}"
print(f"ok   {name}: {len(steps)} losses, max relative difference {worst:.1e}")
PY
}
