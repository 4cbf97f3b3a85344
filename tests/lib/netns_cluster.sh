# A cluster of two hosts on one Linux machine, for tests (sourced, bash). Each host is a network
# namespace joined to the other by a veth pair on a private link (n1 = 10.77.0.2, n2 = 10.77.0.3).
# A command "on" a host runs in its network namespace, in a UTS namespace of its own (hostname n1
# or n2: what MPI_Get_processor_name and Open MPI see) and in a private mount namespace where
# $CLUSTER_DIR/hosts is bound over /etc/hosts (n1 and n2 resolve) and the host's own folder over
# $CLUSTER_DIR/local (a node-local disk). Everything else, the repository and run directories
# included, is shared, as on a cluster with a shared filesystem. Nothing outside $CLUSTER_DIR and
# the two namespaces is written.
#
#   cluster_up DIR     make the hosts; DIR (empty, made by the caller) holds their state. Returns 77
#                      after a message on stderr when this machine does not allow network namespaces
#                      (not root, or no CAP_NET_ADMIN, or no `ip`).
#   on HOST CMD...     run CMD on HOST (its arguments are passed through unchanged).
#   cluster_mpi_env [--link-only]  the Open MPI settings for ranks on these hosts, as VAR=value
#                      words: the rsh agent below (so mpirun starts its daemon on n2 inside n2;
#                      not with --link-only), TCP for the out-of-band channel and between
#                      hosts on the private link only, and yielding while waiting (the hosts
#                      share the machine's cores).
#   cluster_pids HOST  the processes on HOST;  cluster_kill HOST  SIGKILL to all of them
#   cluster_down       kill every process left on the hosts, delete the namespaces (which deletes
#                      the link) and the agent. Safe to call twice.
#
# Names carry the process id (braid-PID-n1), so concurrent runs and a user's own namespaces are
# never touched. $CLUSTER_DIR/rsh is the agent: `rsh HOST WORDS...` runs the words as a shell
# command line on HOST, as ssh does (Open MPI passes its daemon's command line that way).

CLUSTER_HOSTS=(n1 n2)
CLUSTER_NET=10.77.0.0/24
declare -A CLUSTER_ADDR=([n1]=10.77.0.2 [n2]=10.77.0.3)

cluster_up() {
  CLUSTER_DIR=$1
  CLUSTER_NS=braid-$$
  local ns1=$CLUSTER_NS-n1 ns2=$CLUSTER_NS-n2 v1=br$$a v2=br$$b
  local tool
  for tool in ip unshare nsenter hostname; do
    if ! command -v "$tool" >/dev/null; then
      echo "SKIPPED: '$tool' is not installed (iproute2, util-linux, hostname)" >&2
      return 77
    fi
  done
  if [[ $(id -u) -ne 0 ]]; then
    echo "SKIPPED: network namespaces need root (CAP_NET_ADMIN, CAP_SYS_ADMIN)" >&2
    return 77
  fi
  if ! ip netns add "$ns1" 2>"$CLUSTER_DIR/netns.err"; then
    echo "SKIPPED: this machine does not allow network namespaces: $(cat "$CLUSTER_DIR/netns.err")" >&2
    return 77
  fi
  CLUSTER_UP=1
  ip netns add "$ns2"
  ip link add "$v1" type veth peer name "$v2"
  ip link set "$v1" netns "$ns1"
  ip link set "$v2" netns "$ns2"
  ip -n "$ns1" addr add "${CLUSTER_ADDR[n1]}/24" dev "$v1"
  ip -n "$ns2" addr add "${CLUSTER_ADDR[n2]}/24" dev "$v2"
  ip -n "$ns1" link set lo up
  ip -n "$ns2" link set lo up
  ip -n "$ns1" link set "$v1" up
  ip -n "$ns2" link set "$v2" up
  mkdir -p "$CLUSTER_DIR/local" "$CLUSTER_DIR/nodes/n1" "$CLUSTER_DIR/nodes/n2"
  printf '127.0.0.1 localhost\n%s n1\n%s n2\n' "${CLUSTER_ADDR[n1]}" "${CLUSTER_ADDR[n2]}" \
    > "$CLUSTER_DIR/hosts"
  # The agent: HOST, then a command line for a shell on HOST. nsenter, not `ip netns exec`: that
  # one remounts /sys, which hides the cgroup mounts Slurm's slurmd needs; the mount namespace
  # (hosts file, node-local folder) is the agent's own, private, so nothing leaks to the machine.
  cat > "$CLUSTER_DIR/rsh" <<AGENT
#!/usr/bin/env bash
host=\$1
shift
case \$host in n1|n2) ;; *) echo "rsh: no host '\$host' in this test cluster (n1, n2)" >&2; exit 255 ;; esac
exec nsenter --net="/run/netns/$CLUSTER_NS-\$host" unshare --uts --mount --propagation private \\
  bash -c 'hostname "\$0" && mount --bind "$CLUSTER_DIR/hosts" /etc/hosts &&
           mount --bind "$CLUSTER_DIR/nodes/\$0" "$CLUSTER_DIR/local" && eval "exec \$1"' \\
  "\$host" "\$*"
AGENT
  chmod +x "$CLUSTER_DIR/rsh"
}

on() {
  local host=$1
  shift
  "$CLUSTER_DIR/rsh" "$host" "$(printf '%q ' "$@")"
}

cluster_mpi_env() {
  [[ ${1:-} == --link-only ]] || echo -n "OMPI_MCA_plm_rsh_agent=$CLUSTER_DIR/rsh "
  # Both hosts share this machine's cores, but each declares its own slots, so Open MPI does not
  # see the oversubscription and its ranks busy-poll while they wait: 4 ranks on 2 cores then
  # ran the tiny GPT at 0.3x (5895-6199 tokens/s against 19573 with yielding, measured). Real
  # nodes have their own cores: this setting belongs to the test cluster only.
  echo "OMPI_MCA_oob_tcp_if_include=$CLUSTER_NET" \
    "OMPI_MCA_btl=self,vader,tcp" \
    "OMPI_MCA_btl_tcp_if_include=$CLUSTER_NET" \
    "OMPI_MCA_mpi_yield_when_idle=1"
}

# The processes on HOST (those in its network namespace), one line.
cluster_pids() {
  ip netns pids "$CLUSTER_NS-$1" 2>/dev/null | tr '\n' ' ' | sed 's/ $//'
}

# A node failure: SIGKILL to every process on HOST (the host itself stays, as after a reboot).
cluster_kill() {
  local pids
  pids=$(cluster_pids "$1")
  [[ -z $pids ]] || kill -9 $pids 2>/dev/null || true
}

cluster_down() {
  [[ ${CLUSTER_UP:-0} == 1 ]] || return 0
  local h
  for h in n1 n2; do cluster_kill "$h"; done
  sleep 0.5
  for h in n1 n2; do ip netns del "$CLUSTER_NS-$h" 2>/dev/null || true; done
  rm -f "$CLUSTER_DIR/rsh"
  CLUSTER_UP=0
}

# Lines describing whatever cluster_down should have removed and did not (empty when clean).
cluster_leftovers() {
  ip netns list 2>/dev/null | grep "^$CLUSTER_NS-" | sed 's/^/namespace left: /'
  ip link show 2>/dev/null | grep -o "br$$[ab]" | sed 's/^/link left: /'
  true
}
