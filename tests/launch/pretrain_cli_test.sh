#!/usr/bin/env bash
# The pretrain command line: --print-config with --set overrides under mpirun (exit 0, derived
# sizes shown), a bad override or recipe (non-zero exit, message naming the key and place), and
# train.device: cuda on a machine without a GPU (refused before anything is built).
set -u
pretrain=$1
root=$2
mpirun=(mpirun --allow-run-as-root --oversubscribe --bind-to none)
fail=0
check() {  # check NAME EXPECTED_RC PATTERN -- command...
  local name=$1 want_rc=$2 pattern=$3
  shift 4
  local out rc
  out=$(timeout 60 "$@" 2>&1)
  rc=$?
  if [[ $want_rc == 0 && $rc != 0 ]] || [[ $want_rc != 0 && $rc == 0 ]]; then
    echo "FAIL $name: exit code $rc"; echo "$out"; fail=1; return
  fi
  if ! grep -qF -- "$pattern" <<<"$out"; then
    echo "FAIL $name: no '$pattern' in:"; echo "$out"; fail=1; return
  fi
  echo "ok   $name"
}
tiny=$root/recipes/gpt/tiny.yaml
check print-config 0 "num_layers: 3" -- \
  "${mpirun[@]}" -np 2 "$pretrain" --recipe "$tiny" --set model.num_layers=3 --print-config
check derived-sizes 0 "world_size=2 tp=2 dp=1" -- \
  "${mpirun[@]}" -np 2 "$pretrain" --recipe "$tiny" --set parallel.tensor_parallel_size=2 --print-config
check padded-vocab 0 "padded_vocab_size=8064" -- \
  "$pretrain" --recipe "$tiny" --set model.vocab_size=8000 --print-config
check origin-comment 0 "# --set 'train.lr=0.01'" -- \
  "$pretrain" --recipe "$tiny" --set train.lr=0.01 --print-config
check bad-override 1 "--set 'model.num_layerz=3': model.num_layerz: unknown key. HINT: did you mean 'num_layers'?" -- \
  "$pretrain" --recipe "$tiny" --set model.num_layerz=3 --print-config
check bad-world 1 "does not divide the world size 2" -- \
  "${mpirun[@]}" -np 2 "$pretrain" --recipe "$tiny" --set parallel.tensor_parallel_size=4 --print-config
check bad-family 1 "recipe: 'gtp' is not a model family of this build (gpt, bert, roberta, t5, bart, ul2). HINT: did you mean 'gpt'?" -- \
  "$pretrain" --recipe "$tiny" --set recipe=gtp --print-config
check missing-recipe 1 "cannot open config file" -- \
  "$pretrain" --recipe /nonexistent.yaml --print-config
check no-gpu 1 "train.device: cuda, but" -- \
  "$pretrain" --recipe "$tiny" --set train.device=cuda --set logging.run_dir=/tmp/braid_cli_nogpu
check no-gpu-hint 1 "HINT: set train.device: cpu" -- \
  "$pretrain" --recipe "$tiny" --set train.device=cuda --set logging.run_dir=/tmp/braid_cli_nogpu
check unknown-flag 2 "unknown flag '--bogus'" -- "$pretrain" --bogus
check help 0 "usage: pretrain --recipe FILE" -- "$pretrain" --help
exit $fail
