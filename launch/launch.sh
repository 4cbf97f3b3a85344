#!/usr/bin/env bash
# Starts `pretrain` on one or more nodes with mpirun: ranks, TP size, threads per rank, binding,
# and the flags a root or oversubscribed workstation needs. --dry-run prints the exact command.
#
#   launch/launch.sh [--nodes N] [--ranks-per-node R] [--hosts h1,h2,...] [--tp T]
#                    [--threads K] [--bind none|core|socket] [--as-root auto|yes|no]
#                    [--oversubscribe auto|yes|no] [--kill-timeout S] [--dry-run]
#                    -- PRETRAIN_ARGS...
#
# Defaults: 1 node, as many ranks as cores, TP 1 (on several nodes it must divide the ranks per
# node, so that no TP group spans nodes), threads = cores / ranks (at least 1), bind none,
# --allow-run-as-root when run as root, --oversubscribe when ranks exceed the cores. Every rank
# gets OMP_NUM_THREADS and train.threads = K, and the BRAID_* variables of this environment;
# parallel.tensor_parallel_size = T.
#
# Stopping: SIGTERM or SIGINT to this script (Ctrl-C, a scheduler) is passed to mpirun as SIGUSR1,
# which mpirun forwards to every rank at once: each saves a checkpoint at its next step boundary
# and exits 75 (rerun to resume). A second SIGTERM or SIGINT is passed on as it is (mpirun then
# ends the ranks). mpirun runs in a session of its own, so a terminal's Ctrl-C reaches this script
# only: mpirun answers SIGTERM and SIGINT itself by sending the ranks SIGTERM after
# odls_base_sigkill_timeout seconds and SIGKILL after twice that (Open MPI's default: 1 s, too
# short for a checkpoint). --kill-timeout S sets it, for when something may signal mpirun directly;
# mpirun then also waits 2 x S before it exits after any rank failed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
nodes=1 rpn="" hosts="" tp=1 threads="" bind=none as_root=auto over=auto dry=0
kill_timeout=${BRAID_KILL_TIMEOUT:-}
cores=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)  # not nproc: it honours OMP_NUM_THREADS
usage() { awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit "${1:-2}"; }
die() { echo "launch.sh: $*" >&2; echo "see launch.sh --help" >&2; exit 2; }
value() {  # OPTION ARGS...: the option's value, or a usage error when there is none
  (($# >= 2)) && [[ $2 != --* ]] || die "$1 needs a value"
  printf '%s' "$2"
}
count() {  # OPTION VALUE: a positive integer
  [[ $2 =~ ^[1-9][0-9]*$ ]] || die "$1 must be a positive integer, not '$2'"
}
oneof() {  # OPTION VALUE CHOICES...
  local opt=$1 v=$2
  shift 2
  for c in "$@"; do [[ $v == "$c" ]] && return 0; done
  die "$opt must be one of: $*; not '$v'"
}
while (($#)); do
  case $1 in
    --nodes) nodes=$(value "$@"); count "$1" "$nodes"; shift 2 ;;
    --ranks-per-node) rpn=$(value "$@"); count "$1" "$rpn"; shift 2 ;;
    --hosts) hosts=$(value "$@"); shift 2 ;;
    --tp) tp=$(value "$@"); count "$1" "$tp"; shift 2 ;;
    --threads) threads=$(value "$@"); count "$1" "$threads"; shift 2 ;;
    --bind) bind=$(value "$@"); oneof "$1" "$bind" none core socket; shift 2 ;;
    --as-root) as_root=$(value "$@"); oneof "$1" "$as_root" auto yes no; shift 2 ;;
    --oversubscribe) over=$(value "$@"); oneof "$1" "$over" auto yes no; shift 2 ;;
    --kill-timeout) kill_timeout=$(value "$@"); count "$1" "$kill_timeout"; shift 2 ;;
    --cores) cores=$(value "$@"); count "$1" "$cores"; shift 2 ;;   # pretend the node has this many cores (tests)
    --dry-run) dry=1; shift ;;
    -h|--help) usage 0 ;;
    --) shift; break ;;
    *) die "unknown option '$1'" ;;
  esac
done
[[ -z $kill_timeout ]] || count "--kill-timeout (BRAID_KILL_TIMEOUT)" "$kill_timeout"
[[ -n $rpn ]] || rpn=$cores
[[ -n $threads ]] || threads=$(( cores / rpn > 0 ? cores / rpn : 1 ))
np=$(( nodes * rpn ))
if (( np % tp != 0 )); then
  echo "launch.sh: --tp $tp does not divide the $np ranks ($nodes node(s) x $rpn). HINT: world = TP x DP." >&2
  exit 2
fi
if (( nodes > 1 && rpn % tp != 0 )); then
  echo "launch.sh: --tp $tp does not divide --ranks-per-node $rpn: a TP group would span nodes," \
       "and its all-reduces in every layer would cross the network. HINT: ranks per node a" \
       "multiple of the TP size." >&2
  exit 2
fi
cmd=(mpirun -np "$np")
if [[ $as_root == yes || ( $as_root == auto && $(id -u) -eq 0 ) ]]; then cmd+=(--allow-run-as-root); fi
if [[ $over == yes || ( $over == auto && $(( rpn * threads )) -gt $cores ) ]]; then cmd+=(--oversubscribe); fi
cmd+=(--bind-to "$bind" --map-by "ppr:${rpn}:node")
[[ -z $kill_timeout ]] || cmd+=(--mca odls_base_sigkill_timeout "$kill_timeout")
if [[ -n $hosts ]]; then
  IFS=, read -r -a hl <<< "$hosts"
  [[ $hosts != *, && $hosts != ,* && $hosts != *,,* ]] || die "--hosts '$hosts' has an empty host name"
  for h in "${hl[@]}"; do
    [[ $h =~ ^[A-Za-z0-9._-]+$ ]] || die "--hosts: '$h' is not a host name"
  done
  if (( ${#hl[@]} != nodes )); then
    echo "launch.sh: --hosts names ${#hl[@]} host(s) for --nodes $nodes" >&2
    exit 2
  fi
  spec=""
  for h in "${hl[@]}"; do spec+="${spec:+,}$h:$rpn"; done
  cmd+=(--host "$spec")
fi
# braid's own settings (BRAID_STOP_GRACE_S, BRAID_DEFAULT_CORPUS_DIR, BRAID_PROFILE, ...) reach
# every rank, on every node.
for v in $(compgen -e); do [[ $v == BRAID_* ]] && cmd+=(-x "$v"); done
cmd+=(-x "OMP_NUM_THREADS=$threads" "$root/build/bin/pretrain"
      --set "parallel.tensor_parallel_size=$tp" --set "train.threads=$threads" "$@")
# Ranks are placed per node in blocks (ppr:R:node), and TP groups are consecutive ranks, so
# each TP group lies within one node: say which, before the run's own log confirms it.
if [[ -n $hosts ]]; then
  place=""
  for i in "${!hl[@]}"; do
    place+="${place:+, }${hl[$i]} = ranks $(( i * rpn ))-$(( i * rpn + rpn - 1 ))"
  done
  echo "launch.sh: $nodes nodes x $rpn ranks, TP $tp within each node: $place" >&2
fi
if (( dry )); then  # shell-quoted only where a word needs it
  out=""
  for w in "${cmd[@]}"; do
    if [[ $w =~ ^[A-Za-z0-9_./:=,@%+-]+$ ]]; then out+="${out:+ }$w"; else out+="${out:+ }$(printf '%q' "$w")"; fi
  done
  echo "$out"
  exit 0
fi
# A session of its own (no job control here, so setsid runs it in this same process, $!): the
# terminal's signals reach this script, which decides what mpirun gets. Nothing reads stdin.
setsid "${cmd[@]}" < /dev/null &
pid=$!
stops=0
stop() {  # the first stop signal asks for a checkpoint (SIGUSR1); the next one is passed on
  stops=$((stops + 1))
  if ((stops == 1)); then
    echo "launch.sh: stop signal: asking every rank to save and stop (SIGUSR1 to mpirun)" >&2
    kill -USR1 "$pid" 2>/dev/null || true
  else
    kill -"$1" "$pid" 2>/dev/null || true
  fi
}
trap 'stop TERM' TERM
trap 'stop INT' INT
trap 'kill -USR1 "$pid" 2>/dev/null || true' USR1
rc=0
while true; do
  wait "$pid" && rc=0 || rc=$?
  kill -0 "$pid" 2>/dev/null || break  # `wait` returned for a trap: wait again
done
exit "$rc"
