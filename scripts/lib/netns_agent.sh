#!/bin/sh
# scripts/lib/netns_agent.sh — Open MPI's launch agent for scripts/two_hosts.sh, in place of ssh:
# `netns_agent.sh HOST COMMAND…` runs COMMAND inside the network namespace that holds HOST's
# address, under that host's own hostname (a new UTS namespace).
host=$1
shift
case "$host" in
10.213.0.1) ns=$MEGATRON_NETNS_A ;;
10.213.0.2) ns=$MEGATRON_NETNS_B ;;
*)
    echo "netns_agent: no namespace holds host '$host' (expected 10.213.0.1 or 10.213.0.2)" >&2
    exit 1
    ;;
esac
exec ip netns exec "$ns" unshare --uts sh -c "hostname $ns; $*"
