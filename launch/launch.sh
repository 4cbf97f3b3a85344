#!/usr/bin/env bash
# Starts `pretrain` on one or more nodes with mpirun: ranks, TP size, threads per rank, binding,
# and the flags a root or oversubscribed workstation needs. --dry-run prints the exact command.
#
#   launch/launch.sh [--nodes N] [--ranks-per-node R] [--hosts h1,h2,...] [--tp T]
#                    [--threads K] [--bind none|core|socket] [--as-root auto|yes|no]
#                    [--oversubscribe auto|yes|no] [--dry-run] -- PRETRAIN_ARGS...
#
# Defaults: 1 node, as many ranks as cores, TP 1 (on several nodes it must divide the ranks per
# node, so that no TP group spans nodes), threads = cores / ranks (at least 1), bind none,
# --allow-run-as-root when run as root, --oversubscribe when ranks exceed the cores. Every rank
# gets OMP_NUM_THREADS and train.threads = K; parallel.tensor_parallel_size = T.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
nodes=1 rpn="" hosts="" tp=1 threads="" bind=none as_root=auto over=auto dry=0
cores=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)  # not nproc: it honours OMP_NUM_THREADS
usage() { awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit "${1:-2}"; }
while (($#)); do
  case $1 in
    --nodes) nodes=$2; shift 2 ;;
    --ranks-per-node) rpn=$2; shift 2 ;;
    --hosts) hosts=$2; shift 2 ;;
    --tp) tp=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --bind) bind=$2; shift 2 ;;
    --as-root) as_root=$2; shift 2 ;;
    --oversubscribe) over=$2; shift 2 ;;
    --cores) cores=$2; shift 2 ;;   # pretend the node has this many cores (tests)
    --dry-run) dry=1; shift ;;
    -h|--help) usage 0 ;;
    --) shift; break ;;
    *) echo "launch.sh: unknown option '$1'" >&2; usage ;;
  esac
done
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
if [[ -n $hosts ]]; then
  IFS=, read -r -a hl <<< "$hosts"
  if (( ${#hl[@]} != nodes )); then
    echo "launch.sh: --hosts names ${#hl[@]} host(s) for --nodes $nodes" >&2
    exit 2
  fi
  spec=""
  for h in "${hl[@]}"; do spec+="${spec:+,}$h:$rpn"; done
  cmd+=(--host "$spec")
fi
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
exec "${cmd[@]}"
