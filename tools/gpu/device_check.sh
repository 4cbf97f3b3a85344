#!/usr/bin/env bash
# The GPU check, in one device call (see tools/gpu/README.md). On the GPU machine, from the repo
# root, with .gpu-bundle carried (tools/gpu/prepare_bundle.sh made it here):
#
#   device run --carry .gpu-bundle 'bash tools/gpu/device_check.sh'
#
# 1. unpacks the Debian bundle into a private prefix (never into /), points CMake and Open MPI at
#    it; finds the CUDA LibTorch and NCCL inside the image's PyTorch;
# 2. configures and builds only what the check needs (Release, all cores);
# 3. runs the one-rank tests on CUDA tensors (device_test: CUDA = CPU in fp32, bf16 training on
#    CUDA with a checkpoint and a resume, the NCCL backend on a communicator of one with the
#    stream handoff) and the NCCL link test;
# 4. benchmarks gpt2-small (124M, sequence 1024) in bf16: braid against the plain PyTorch loop of
#    tools/bench/gpt_pytorch_loop.py in the image's python3, side by side, each with MFU against
#    the bf16 matmul rate it measures in the same call;
# 5. writes logs and table.md under $OUT and prints the table last.
# BRAID_GPU_CONFIGURE_ONLY=1 stops after configuring and prints where each dependency was found
# (how the bundle is checked on a machine without a GPU). Every step is logged and timed; a failing step is recorded in the table, and the steps after it
# still run where they can.
set -uo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
OUT=${OUT:-/tmp/braid-gpu-out}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
prefix=${BRAID_BUNDLE_PREFIX:-/tmp/braid-bundle}
build=${BRAID_GPU_BUILD:-/tmp/braid-gpu-build}
MICRO=${BRAID_BENCH_MICRO:-16}
STEPS=${BRAID_BENCH_STEPS:-12}
table=$OUT/table.md
start=$(date +%s)
log() { echo "[$(($(date +%s) - start))s] $*" | tee -a "$OUT/steps.log"; }
row() { echo "| $1 | $2 |" >>"$table"; }
: >"$OUT/steps.log"
echo "| what | result |" >"$table"
echo "| --- | --- |" >>"$table"

# ---- 0. the machine ----
gpu=$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | head -1)
torch_info=$($PY -c 'import torch; print(torch.__version__, "cuda", torch.version.cuda)' 2>&1)
log "gpu: $gpu; torch: $torch_info; $(nproc) cores"
row "card" "$gpu"
row "PyTorch" "$torch_info"

# ---- 1. the bundle and the paths ----
rm -rf "$prefix"
mkdir -p "$prefix"
for f in .gpu-bundle/debs/*.deb; do dpkg -x "$f" "$prefix" || log "dpkg -x failed: $f"; done
lib=$prefix/usr/lib/x86_64-linux-gnu
# The links Debian's alternatives would make (dpkg -x runs no maintainer scripts).
ln -sf "$prefix/usr/lib/libpsm1/libpsm_infinipath.so.1.16" "$lib/libpsm_infinipath.so.1"
for n in mpicc mpicxx mpirun mpiexec; do ln -sf "$n.openmpi" "$prefix/usr/bin/$n"; done
for so in libudev.so.1 libuuid.so.1 libatomic.so.1; do  # the image's own copies win
  if ldconfig -p | grep -q "$so "; then rm -f "$lib/$so"*; fi
done
export OPAL_PREFIX=$prefix/usr
export PATH=$prefix/usr/bin:$PATH:/usr/local/cuda/bin
export CUDACXX=${CUDACXX:-/usr/local/cuda/bin/nvcc}
export LD_LIBRARY_PATH=$lib:$lib/openmpi/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_ess_singleton_isolated=1   # one rank without mpirun: no daemon
export OMPI_MCA_pml=ob1 OMPI_MCA_btl=self,vader OMPI_MCA_mtl='^ofi,psm,psm2' OMPI_MCA_osc='^ucx'
torch_cmake=$($PY -c 'import torch; print(torch.utils.cmake_prefix_path)')
torch_minor=$($PY -c 'import torch; v = torch.__version__.split("."); print(int(v[0]) * 100 + int(v[1]))')
cxx_std=17
((torch_minor >= 213)) && cxx_std=20
nccl_h=$(find $($PY -c 'import nvidia, sys; print(" ".join(nvidia.__path__))' 2>/dev/null) -name nccl.h 2>/dev/null | head -1)
nccl_root=${BRAID_NCCL_ROOT:-$(dirname "$(dirname "${nccl_h:-/none/include/nccl.h}")")}
log "torch cmake: $torch_cmake; nccl: $nccl_root; C++$cxx_std"
export LD_LIBRARY_PATH=$LD_LIBRARY_PATH:$nccl_root/lib

# ---- 2. configure and build ----
t0=$(date +%s)
cmake -G Ninja -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$torch_cmake;$prefix/usr" \
  -DMPI_CXX_COMPILER="$prefix/usr/bin/mpicxx" -DMPI_C_COMPILER="$prefix/usr/bin/mpicc" \
  -DProtobuf_PROTOC_EXECUTABLE="$prefix/usr/bin/protoc" \
  -DBRAID_NCCL_ROOT="$nccl_root" -DBRAID_CUDA_ROOT=/usr/local/cuda -DBRAID_CXX_STANDARD=$cxx_std \
  -DCMAKE_CUDA_COMPILER=/usr/local/cuda/bin/nvcc -DTORCH_CUDA_ARCH_LIST=9.0 \
  >"$OUT/configure.log" 2>&1
configured=$?
grep -E "braid:|Torch|CUDA|NCCL|MPI|Protobuf|Error|error" "$OUT/configure.log" | head -40 | tee -a "$OUT/steps.log"
if ((configured != 0)); then
  row "configure" "FAILED (configure.log)"
elif [[ ${BRAID_GPU_CONFIGURE_ONLY:-0} == 1 ]]; then  # checking the bundle on a CPU machine
  grep -E "^(yaml-cpp_DIR|absl_DIR|GTest_DIR|SENTENCEPIECE_LIBRARY|Protobuf_LIBRARY|Protobuf_PROTOC_EXECUTABLE|MPI_CXX_HEADER_DIR|MPI_mpi_LIBRARY|Protobuf_INCLUDE_DIR|NCCL_LIBRARY):" \
    "$build/CMakeCache.txt"
  exit 0
else
  targets=(device_test nccl_link_test bench_gpt)
  ninja -C "$build" "${targets[@]}" >"$OUT/build.log" 2>&1
  built=$?
  grep -E "error|FAILED" "$OUT/build.log" | head -30 | tee -a "$OUT/steps.log"
  row "build (${targets[*]})" "$([[ $built == 0 ]] && echo ok || echo 'FAILED (build.log)') in $(($(date +%s) - t0)) s"
fi

# ---- 3. tests on CUDA tensors ----
run_rank1() {  # a one-rank MPI program: directly (singleton); under the bundle's mpirun only
               # when the direct start failed in MPI itself (its own errors are final)
  local out rc
  out=$(mktemp)
  "$@" >"$out" 2>&1
  rc=$?
  cat "$out"
  if ((rc != 0)) && grep -qiE "MPI_Init|orte|opal|pmix|singleton" "$out"; then
    log "direct start failed in MPI (rc $rc); trying mpirun -np 1"
    mpirun -np 1 "$@"
    rc=$?
  fi
  rm -f "$out"
  return $rc
}
if [[ -x $build/tests/device_test ]]; then
  run_rank1 "$build/tests/device_test" >"$OUT/tests.log" 2>&1
  rc=$?
  passed=$(grep -c '\[       OK \]' "$OUT/tests.log")
  failed=$(grep -c '\[  FAILED  \].*\.' "$OUT/tests.log")
  skipped=$(grep -c '\[  SKIPPED \].*(' "$OUT/tests.log")
  row "device_test (CUDA = CPU, bf16 training + resume, NCCL of one)" "rc $rc: $passed passed, $failed failed, $skipped skipped"
fi
if [[ -x $build/tests/nccl_link_test ]]; then
  "$build/tests/nccl_link_test" >>"$OUT/tests.log" 2>&1
  row "nccl_link_test" "rc $? ($(grep -o 'NCCL [0-9.]*' "$OUT/tests.log" | head -1))"
fi

# ---- 4. gpt2-small bf16, braid vs plain PyTorch ----
shape=(--layers 12 --hidden 768 --heads 12 --seq 1024 --vocab 50257 --micro "$MICRO" --steps "$STEPS")
if [[ -x $build/bin/bench_gpt ]]; then
  run_rank1 "$build/bin/bench_gpt" "${shape[@]}" --global "$MICRO" --cuda 1 --bf16 1 \
    >"$OUT/bench.log" 2>&1
  log "braid bench rc $?"
fi
$PY tools/bench/gpt_pytorch_loop.py "${shape[@]}" --device cuda --bf16 1 --sdpa 1 \
  >>"$OUT/bench.log" 2>&1
log "torch bench rc $?"
braid_line=$(grep '^braid  step' "$OUT/bench.log" | tail -1)
torch_line=$(grep '^torch  step' "$OUT/bench.log" | tail -1)
b_tok=$(sed -n 's/.*| \([0-9]*\) tokens\/s.*/\1/p' <<<"$braid_line")
t_tok=$(sed -n 's/.*| \([0-9]*\) tokens\/s.*/\1/p' <<<"$torch_line")
row "braid gpt2-small bf16, seq 1024, micro $MICRO" "${braid_line:-no result (bench.log)}"
row "PyTorch eager loop, same model (SDPA, autocast)" "${torch_line:-no result (bench.log)}"
if [[ -n $b_tok && -n $t_tok ]]; then
  row "braid / PyTorch tokens/s" "$(awk -v b="$b_tok" -v t="$t_tok" 'BEGIN { printf "%.2f", b / t }')"
fi
row "wall time of this check" "$(($(date +%s) - start)) s"
echo
cat "$table"
