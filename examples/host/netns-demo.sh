#!/usr/bin/env bash
# sft namespace demo: needs root (ip netns).
#
#   netns-demo.sh up       create the namespaces: <p>-sw (bridge br0),
#                          <p>-node1 (n1 10.99.0.1/24), <p>-client (c1 10.99.0.50/24)
#   netns-demo.sh down     remove them (idempotent)
#   netns-demo.sh run      up, run the host on netns-demo.yaml, down when it stops
#   netns-demo.sh client   curl the app's virtual IP from the client namespace
#   netns-demo.sh status   the host's status table
#
# <p> is $SFT_DEMO_PREFIX (default "sft"). The host command is $SFT_HOST
# (default: go run ./examples/host, from the repository root). Only the
# demo's own namespaces are touched: no address, route or link is added to
# the machine's network namespace.
set -euo pipefail

P=${SFT_DEMO_PREFIX:-sft}
SW=$P-sw NODE=$P-node1 CLIENT=$P-client
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

need_root() {
	if [ "$(id -u)" != 0 ]; then
		echo "netns-demo.sh: needs root (ip netns)" >&2
		exit 1
	fi
}

up() {
	need_root
	down
	ip netns add "$SW"
	ip netns add "$NODE"
	ip netns add "$CLIENT"
	ip -n "$SW" link add br0 type bridge
	ip -n "$SW" link set br0 up
	ip -n "$NODE" link add n1 type veth peer name sw-n1 netns "$SW"
	ip -n "$CLIENT" link add c1 type veth peer name sw-c1 netns "$SW"
	for port in sw-n1 sw-c1; do
		ip -n "$SW" link set "$port" master br0 up
	done
	ip -n "$NODE" link set lo up
	ip -n "$NODE" addr add 10.99.0.1/24 dev n1
	ip -n "$NODE" link set n1 up
	ip -n "$CLIENT" link set lo up
	ip -n "$CLIENT" addr add 10.99.0.50/24 dev c1
	ip -n "$CLIENT" link set c1 up
	echo "namespaces up: $SW (bridge), $NODE (10.99.0.1), $CLIENT (10.99.0.50)"
}

down() {
	need_root
	for ns in "$CLIENT" "$NODE" "$SW"; do
		if ip netns list | grep -qw "^$ns"; then
			ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
			ip netns del "$ns"
		fi
	done
}

host() {
	if [ -n "${SFT_HOST:-}" ]; then
		# shellcheck disable=SC2086
		$SFT_HOST "$@"
	else
		(cd "$ROOT" && go run ./examples/host "$@")
	fi
}

case "${1:-}" in
up) up ;;
down) down && echo "namespaces removed" ;;
client)
	ip netns exec "$CLIENT" curl -s -m 2 http://10.99.0.100:8080/
	;;
status) host status ;;
run)
	up
	trap down EXIT
	host run -config "$HERE/netns-demo.yaml" || true
	;;
*)
	sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
	exit 2
	;;
esac
