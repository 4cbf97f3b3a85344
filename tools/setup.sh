#!/usr/bin/env bash
# Sets up braid on a Debian 12 machine: installs the Debian packages it needs (only those
# missing), configures CMake with Ninja (and ccache when present) into build/, and builds.
# Idempotent: with nothing to install and nothing changed it returns in seconds.
#   BUILD_DIR=build  BUILD_TYPE=RelWithDebInfo  tools/setup.sh [ninja targets...]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
BUILD_TYPE=${BUILD_TYPE:-RelWithDebInfo}

PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config
  clang-format                                # tests/check_format.sh (.clang-format)
  clang libclang-rt-14-dev                    # tests/fuzz (libFuzzer, ASan, UBSan)
  libtorch-dev libopenblas0-openmp            # LibTorch 1.13 (CPU) and a fast BLAS behind it
  libopenmpi-dev openmpi-bin                  # ranks and CPU collectives
  libyaml-cpp-dev libabsl-dev                 # config, status/strings
  libprotobuf-dev protobuf-compiler           # checkpoint manifests, TensorBoard records
  libsentencepiece-dev sentencepiece          # SentencePiece tokenizers, spm_train
  libonig-dev libutf8proc-dev nlohmann-json3-dev  # tokenizer.json: regexes, Unicode, JSON
  libsimdjson-dev                             # JSON Lines corpora, vocab.json, config.json
  zlib1g-dev libzstd-dev zstd                 # preprocess_data: .gz and .zst inputs
  libgtest-dev libbenchmark-dev               # tests and benchmarks
  fortunes                                    # the embedded default corpus
  python3 python3-torch python3-numpy         # independent references used by the tests
  iproute2                                    # tests/launch/two_node_test.sh: network namespaces
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "[setup] installing: ${missing[*]}"
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO=sudo
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# OpenBLAS must be the BLAS behind libblas.so.3 (Debian's reference BLAS is ~18x slower).
blas=$(readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3 2>/dev/null || true)
case "$blas" in
  *openblas*) ;;
  *) echo "[setup] WARNING: libblas.so.3 resolves to '$blas', not OpenBLAS." \
          "HINT: sudo update-alternatives --config libblas.so.3-x86_64-linux-gnu" >&2 ;;
esac

if [[ ! -f $BUILD_DIR/build.ninja ]]; then
  launcher=()
  if command -v ccache >/dev/null; then
    # PCH-friendly ccache settings travel with the compiler command itself. CCACHE_BASEDIR makes
    # the paths under this checkout relative in ccache's hashes, so another clone of the same
    # sources (CI's fresh clone) reuses the objects instead of compiling everything again
    # (CCACHE_NOHASHDIR: the working directory, which -g would add, is left out of the hash).
    launcher=("-DCMAKE_CXX_COMPILER_LAUNCHER=/usr/bin/env;CCACHE_BASEDIR=$(pwd);CCACHE_NOHASHDIR=1;CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime;ccache")
  fi
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE="$BUILD_TYPE" "${launcher[@]}"
fi
cmake --build "$BUILD_DIR" -- "$@"
