#!/usr/bin/env bash
# Builds the libFuzzer harnesses (clang, ASan + UBSan, build-fuzz/) and runs each: first over its
# regression inputs (tests/fuzz/regressions/<target>/: inputs that once crashed it, which must now
# pass), then fuzzing from its seeds (tests/fuzz/seeds/<target>/) for FUZZ_SECONDS (30) each. A
# crash stops the run non-zero and leaves the input in build-fuzz/crashes/; add it to the
# regressions after the fix. Prints how long each target ran and how many inputs it tried.
#   FUZZ_SECONDS=30 tests/fuzz/run.sh [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${FUZZ_SECONDS:-30}
build=${FUZZ_BUILD_DIR:-build-fuzz}
targets=("$@")
((${#targets[@]})) || targets=(fuzz_config fuzz_json fuzz_idx fuzz_safetensors fuzz_manifest fuzz_tokenizer_files
  fuzz_tokenizer_json)
if ! command -v clang++ >/dev/null || [[ ! -d /usr/lib/llvm-14/lib/clang ]]; then
  echo "[fuzz] installing clang and libclang-rt-14-dev"
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO=sudo
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends clang libclang-rt-14-dev >/dev/null
fi
if [[ ! -f $build/build.ninja ]]; then
  CC=clang CXX=clang++ cmake -S . -B "$build" -G Ninja -DBRAID_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
cmake --build "$build" -- "${targets[@]}" >/dev/null
mkdir -p "$build/crashes"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
for t in "${targets[@]}"; do
  regress=tests/fuzz/regressions/$t
  if compgen -G "$regress/*" >/dev/null; then
    "$build/fuzz/$t" -runs=0 -timeout=10 -rss_limit_mb=2048 "$regress"/* > "$build/$t.regressions.log" 2>&1 ||
      { echo "[fuzz] FAIL $t: a regression input crashes again"; tail -30 "$build/$t.regressions.log"; exit 1; }
  fi
  corpus=$build/corpus/$t
  mkdir -p "$corpus"
  if ! "$build/fuzz/$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
       -artifact_prefix="$build/crashes/$t-" -print_final_stats=1 "$corpus" "tests/fuzz/seeds/$t" \
       > "$build/$t.log" 2>&1; then
    echo "[fuzz] FAIL $t: a crash or a leak (input in $build/crashes/):"
    grep -E "ERROR|SUMMARY|runtime error|Test unit written" "$build/$t.log" | head -10
    exit 1
  fi
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$build/$t.log" | grep -o '[0-9]*$' || echo "?")
  echo "[fuzz] ok   $t: ${secs} s, $runs inputs, no crash (corpus $(ls "$corpus" | wc -l) inputs)"
done
