#!/usr/bin/env bash
# The data tools link braid_core and braid_data only: no LibTorch among the libraries they load
# (LibTorch's ~300 libraries made their start-up take 0.45 s of a 0.5 s run).
set -u
bin=$1
fail=0
for tool in tokenize preprocess_data inspect_dataset; do
  libs=$(ldd "$bin/$tool")
  if grep -qE 'libtorch|libc10' <<<"$libs"; then
    echo "FAIL $tool loads LibTorch:"; grep -E 'libtorch|libc10' <<<"$libs"; fail=1
  else
    echo "ok   $tool: $(wc -l <<<"$libs") libraries, none of LibTorch"
  fi
done
exit $fail
