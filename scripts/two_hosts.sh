#!/usr/bin/env bash
# scripts/two_hosts.sh — one mpirun job over two hosts made on this machine: two network namespaces
# joined by a veth pair (hosts 10.213.0.1 and 10.213.0.2, each with its own hostname), Open MPI's
# launch agent entering the other namespace instead of ssh (scripts/lib/netns_agent.sh), and the
# ranks talking over TCP only (no shared memory between the hosts). Ranks 0 … N−1 run on the first
# host, N … 2N−1 on the second. The namespaces are removed when the job ends. Needs root.
#   scripts/two_hosts.sh RANKS_PER_HOST megatron-arguments…     (MEGATRON_BIN picks the binary)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
per_host=${1:?usage: scripts/two_hosts.sh RANKS_PER_HOST megatron-arguments…}
shift
bin=${MEGATRON_BIN:-$here/../.build/release/megatron}
export MEGATRON_NETNS_A=mgA$$ MEGATRON_NETNS_B=mgB$$
cleanup() {
    ip netns del "$MEGATRON_NETNS_A" 2>/dev/null || true
    ip netns del "$MEGATRON_NETNS_B" 2>/dev/null || true
}
trap cleanup EXIT
ip netns add "$MEGATRON_NETNS_A"
ip netns add "$MEGATRON_NETNS_B"
ip link add "mgva$$" type veth peer name "mgvb$$"
ip link set "mgva$$" netns "$MEGATRON_NETNS_A"
ip link set "mgvb$$" netns "$MEGATRON_NETNS_B"
ip -n "$MEGATRON_NETNS_A" addr add 10.213.0.1/24 dev "mgva$$"
ip -n "$MEGATRON_NETNS_B" addr add 10.213.0.2/24 dev "mgvb$$"
for ns in "$MEGATRON_NETNS_A" "$MEGATRON_NETNS_B"; do
    ip -n "$ns" link set lo up
done
ip -n "$MEGATRON_NETNS_A" link set "mgva$$" up
ip -n "$MEGATRON_NETNS_B" link set "mgvb$$" up
ip netns exec "$MEGATRON_NETNS_A" unshare --uts "$BASH" -c 'hostname "$MEGATRON_NETNS_A"; exec "$@"' two_hosts \
    mpirun --allow-run-as-root --oversubscribe -np $((2 * per_host)) \
    --host "10.213.0.1:$per_host,10.213.0.2:$per_host" \
    --mca plm_rsh_agent "$here/lib/netns_agent.sh" \
    --mca pml ob1 --mca btl self,tcp --mca btl_tcp_if_include 10.213.0.0/24 --mca oob_tcp_if_include 10.213.0.0/24 \
    -x OPENBLAS_NUM_THREADS=1 -x PATH -x LD_LIBRARY_PATH \
    "$bin" "$@"
