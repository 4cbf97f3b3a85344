#!/usr/bin/env bash
# Prepares, on the development machine, what a GPU machine needs to build braid and cannot fetch
# itself (it reaches no package registry; its image has CUDA, CMake, ninja and a CUDA PyTorch
# whose LibTorch and NCCL braid builds against): the Debian packages of yaml-cpp, Abseil,
# protobuf with protoc, sentencepiece, Oniguruma, utf8proc, nlohmann-json, simdjson, zstd, GoogleTest
# and Open MPI with the libraries it loads.
#
#   tools/gpu/prepare_bundle.sh            -> .gpu-bundle/debs/*.deb  (git-ignored, ~14 MB)
#
# The .deb files travel with the device call (carry: [".gpu-bundle"]) and tools/gpu/device_check.sh
# unpacks them there with dpkg -x into a private prefix (never into /). Before it finishes, this
# script unpacks them here into a scratch folder and checks that every shared library they need
# is in the bundle or is one the GPU image certainly has (glibc, libstdc++, libgcc, zlib), and
# that the bundle stays under the 64 MiB a device call may carry.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=$PWD/.gpu-bundle
pkgs=(
  libyaml-cpp-dev libyaml-cpp0.7
  libabsl-dev libabsl20220623
  libprotobuf-dev libprotobuf32 libprotobuf-lite32 libprotoc32 protobuf-compiler
  libsentencepiece-dev libsentencepiece0
  libonig-dev libonig5 libutf8proc-dev libutf8proc2 nlohmann-json3-dev
  libsimdjson-dev libsimdjson14 libzstd-dev zlib1g-dev
  libgtest-dev
  libopenmpi-dev libopenmpi3 openmpi-bin openmpi-common
  libpmix2 libhwloc15 libevent-2.1-7 libevent-core-2.1-7 libevent-pthreads-2.1-7
  libfabric1 libucx0 libibverbs1 ibverbs-providers librdmacm1 libpsm-infinipath1 libpsm2-2
  libnl-3-200 libnl-route-3-200 libmunge2 libnuma1
  # Usually on the image already; device_check.sh uses these only where ldconfig lacks them.
  libudev1 libuuid1 libatomic1
)
rm -rf "$out/debs"
mkdir -p "$out/debs"
if ! (cd "$out/debs" && apt-get download "${pkgs[@]}" >/dev/null 2>"$out/download.log"); then
  apt-get update -qq
  (cd "$out/debs" && apt-get download "${pkgs[@]}" >/dev/null 2>"$out/download.log") || {
    cat "$out/download.log" >&2
    echo "prepare_bundle: apt-get download failed (log above). HINT: run as root on Debian 12 " \
         "with the network reachable." >&2
    exit 1
  }
fi

# Check the closure of shared-library dependencies on an unpacked copy.
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
for f in "$out"/debs/*.deb; do dpkg -x "$f" "$scratch"; done
have=$(find "$scratch" -name '*.so*' -printf '%f\n' | sort -u)
base='^(libc|libm|libdl|libpthread|librt|libstdc\+\+|libgcc_s|libz|ld-linux-x86-64)\.so'
missing=()
while read -r lib; do
  [[ -z $lib ]] && continue
  grep -qxF "$lib" <<<"$have" && continue
  [[ $lib =~ $base ]] && continue
  # Made by libpsm-infinipath1's alternatives link, which dpkg -x skips: device_check.sh links it.
  [[ $lib == libpsm_infinipath.so.1 ]] && continue
  missing+=("$lib")
done < <(find "$scratch" -type f \( -name '*.so*' -o -path '*/bin/*' \) -print0 |
         xargs -0 -n 50 readelf -d 2>/dev/null |
         sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' | sort -u)
if ((${#missing[@]})); then
  echo "prepare_bundle: these libraries are needed but not in the bundle: ${missing[*]}" >&2
  echo "HINT: add the packages that hold them (dpkg -S '*/NAME') to the list in $0." >&2
  exit 1
fi
debs_mb=$(du -sm "$out/debs" | cut -f1)
unpacked_mb=$(du -sm "$scratch" | cut -f1)
if ((debs_mb >= 60)); then
  echo "prepare_bundle: the bundle is ${debs_mb} MB; a device call carries at most 64 MiB" >&2
  exit 1
fi
echo "prepare_bundle: $(ls "$out"/debs | wc -l) packages, ${debs_mb} MB of .deb (${unpacked_mb} MB" \
     "unpacked) in $out/debs; every needed library is inside or in glibc/libstdc++/zlib"
