#!/usr/bin/env bash
# "SIGTERM to mpirun saves nothing" (hardening, second round): Open MPI answers SIGTERM by sending
# the ranks SIGTERM after odls_base_sigkill_timeout seconds and SIGKILL after twice that (1 s by
# default, which cut every save short). A tiny GPT at DP 2 whose checkpoint of step 10 takes over
# 4 s (BRAID_TEST_SAVE_DELAY; 12 s where mpirun is signaled) is stopped in the middle of that save:
#   1. SIGTERM to launch/launch.sh (a terminal, a scheduler): passed on to mpirun as SIGUSR1;
#   2. SIGTERM to the sbatch templates' braid_run (launch/slurm/common.sh: what Slurm signals
#      first), with asynchronous saves: passed on as SIGUSR1 too;
#   3. and 4. SIGTERM to the mpirun process itself, started as the sbatch templates start it
#      (--mca odls_base_sigkill_timeout, here 10 s to keep the test short), with synchronous and
#      asynchronous saves: the ranks get SIGTERM 10 s later, still inside the save, finish it,
#      stop at the next boundary with a checkpoint, all before mpirun's SIGKILL at 20 s.
# Each time: the checkpoint of step 10 is complete, the run stops at a step boundary after saving
# it, `latest` names the step it stopped at, the status file says "preempted step N", and
# rerunning continues with losses bit-identical to an uninterrupted run.
set -euo pipefail
bin=$1
src=$2
source "$src/tests/lib/e2e.sh"
common=(--recipe recipes/gpt/tiny.yaml --set train.eval_steps=0 --set logging.interval=1000
        --set checkpoint.save_interval=10 --set checkpoint.keep_last=5)
run 2 "$tmp/straight" --set train.train_steps=40

# preempt ID NAME HOW(launch|braid_run|mpirun) ASYNC
preempt() {
  local R=$tmp/$1 name=$2 how=$3 async=$4
  local args=("${common[@]}" --set train.train_steps=40 --set checkpoint.async_save="$async"
              --set logging.run_dir="$R" --status-file "$R/status")
  case $how in
    launch)
      BRAID_TEST_SAVE_DELAY=10:4 launch/launch.sh --ranks-per-node 2 --threads 1 -- "${args[@]}" \
        > "$R.log" 2>&1 & ;;
    braid_run)
      BRAID_TEST_SAVE_DELAY=10:4 bash -c 'source launch/slurm/common.sh; braid_run "$@"' braid_run \
        "$R/status" "${mpi[@]}" -np 2 "$bin/pretrain" "${args[@]}" > "$R.log" 2>&1 & ;;
    mpirun)
      BRAID_TEST_SAVE_DELAY=10:12 "${mpi[@]}" -np 2 --mca odls_base_sigkill_timeout 10 "$bin/pretrain" \
        "${args[@]}" > "$R.log" 2>&1 & ;;
  esac
  local job=$!
  for _ in $(seq 1200); do compgen -G "$R/checkpoints/.tmp_step_00000010*" > /dev/null && break; sleep 0.05; done
  compgen -G "$R/checkpoints/.tmp_step_00000010*" > /dev/null || { echo "FAIL $name: no save began"; cat "$R.log"; exit 1; }
  sleep 1  # well inside the save's 4 s
  kill -TERM $job
  local start=$SECONDS rc=0
  wait $job || rc=$?
  local steps latest status
  steps=$(wc -l < "$R/losses.tsv")
  latest=$(cat "$R/checkpoints/latest")
  status=$(cat "$R/status")
  [[ -f $R/checkpoints/step_00000010/manifest.pb ]] || { echo "FAIL $name: the save of step 10 did not complete"; cat "$R.log"; exit 1; }
  [[ $latest == $(printf 'step_%08d' "$steps") ]] || { echo "FAIL $name: $steps steps ran, latest is $latest"; cat "$R.log"; exit 1; }
  [[ $status == "preempted step $steps" ]] || { echo "FAIL $name: status '$status' (exit $rc)"; cat "$R.log"; exit 1; }
  (( steps < 40 )) || { echo "FAIL $name: the run did not stop"; exit 1; }
  echo "ok   $name: the save of step 10 completed; stopped at step $steps with a checkpoint" \
       "(exit $rc $((SECONDS - start)) s after the signal), status '$status'"
  run 2 "$R" --set train.train_steps=40 || { echo "FAIL $name: resume"; exit 1; }
  compare "$tmp/straight" "$R" 0 "$name: resumed to step 40"
}
preempt launcher "SIGTERM to launch.sh during a save" launch false
preempt braid_run "SIGTERM to braid_run (sbatch templates) during an asynchronous save" braid_run true
preempt mpirun "SIGTERM to mpirun during a save" mpirun false
preempt mpirun_async "SIGTERM to mpirun during an asynchronous save" mpirun true
