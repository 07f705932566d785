#!/usr/bin/env bash
# sft cluster demo: needs root (ip netns), run from anywhere in the repository.
#
#   cluster-demo.sh run    build sftd, create the namespaces, start three nodes,
#                          show the group on its owner, kill the owner (link down
#                          + SIGKILL), show the failover as the client sees it,
#                          then tear everything down (also on Ctrl-C or error)
#   cluster-demo.sh down   remove what a crashed run left (idempotent)
#
# Network (all inside namespaces <p>-*, <p> = $SFT_DEMO_PREFIX, default "sftc"):
#   <p>-sw      bridge br0 (the switch)
#   <p>-n1..n3  nodes, eth0 10.98.0.1-3/24 (raft :7400, heartbeats :7401)
#   <p>-client  10.98.0.100/24
# The group "web": virtual IP 10.98.0.50/24 (ipaddress) and an app on
# 10.98.0.50:8080 that answers GET /node with its node's name.
# Nothing is added to the machine's own network namespace.
set -euo pipefail

P=${SFT_DEMO_PREFIX:-sftc}
SW=$P-sw CLIENT=$P-client
NODES=(n1 n2 n3)
VIP=10.98.0.50
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
WORK=${TMPDIR:-/tmp}/$P-demo
PIDS=()

need_root() {
	if [ "$(id -u)" != 0 ]; then
		echo "cluster-demo.sh: needs root (ip netns)" >&2
		exit 1
	fi
}

down() {
	# The nodes this script started (their process groups: sftd and its app).
	for pid in "${PIDS[@]}"; do
		kill -KILL -- "-$pid" 2>/dev/null || true
	done
	for ns in "$CLIENT" "${NODES[@]/#/$P-}" "$SW"; do
		if ip netns list | grep -qw "^$ns"; then
			# What a crashed run left inside the demo's own namespaces.
			ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
			ip netns del "$ns"
		fi
	done
	rm -rf "$WORK"
}

up() {
	ip netns add "$SW"
	ip -n "$SW" link add br0 type bridge
	ip -n "$SW" link set br0 up
	i=0
	for h in "${NODES[@]}" client; do
		i=$((i + 1))
		ns=$P-$h ip=10.98.0.$i
		[ "$h" = client ] && ip=10.98.0.100
		ip netns add "$ns"
		ip -n "$ns" link set lo up
		# Created in the switch namespace, the peer born in the node's.
		ip -n "$SW" link add "p-$h" type veth peer name eth0 netns "$ns"
		ip -n "$SW" link set "p-$h" master br0 up
		ip -n "$ns" addr add "$ip/24" dev eth0
		ip -n "$ns" link set eth0 up
	done
}

config() {
	umask 077
	head -c 24 /dev/urandom | base64 >"$WORK/cluster.key"
	cat >"$WORK/cluster.yaml" <<EOF
log: {level: info, format: text}
shutdown_timeout: 10s
cluster:
  key_file: $WORK/cluster.key
  profile: default
  nodes:
    - {name: n1, raft: "10.98.0.1:7400", interconnect: ["10.98.0.1:7401"]}
    - {name: n2, raft: "10.98.0.2:7400", interconnect: ["10.98.0.2:7401"]}
    - {name: n3, raft: "10.98.0.3:7400", interconnect: ["10.98.0.3:7401"]}
groups:
  - name: web
    placement: {preferred: [n1, n2, n3]}
    resources:
      - name: vip
        type: ipaddress
        properties: {address: $VIP/24, interface: eth0, probe_count: 1, probe_wait: 50ms}
      - name: app
        type: genericapp
        depends_on: [vip]
        properties:
          argv: [$WORK/sftd, demo-http, --listen, "$VIP:8080", --allow-any-address, --name, NODE]
          stop_grace: 1s
EOF
}

start() {
	local n=$1
	sed "s/--name, NODE/--name, $n/" "$WORK/cluster.yaml" >"$WORK/$n.yaml"
	setsid ip netns exec "$P-$n" "$WORK/sftd" run -config "$WORK/$n.yaml" -node "$n" \
		-socket "$WORK/$n.sock" -plugins inprocess -metrics-listen off >"$WORK/$n.log" 2>&1 &
	PIDS+=($!)
	disown $! # no "Killed" job notices: the script kills it on purpose
	eval "PID_$n=$!"
}

ask() { ip netns exec "$CLIENT" curl -s -m 0.2 "http://$VIP:8080/node" 2>/dev/null || echo "-"; }

# begin removes a previous run's leftovers, arranges the teardown, builds
# sftd and creates the network.
begin() {
	need_root
	down
	trap down EXIT
	trap 'exit 130' INT TERM
	mkdir -p "$WORK"
	echo "building sftd..."
	(cd "$ROOT" && go build -o "$WORK/sftd" ./examples/host/sftd)
	up
}

run() {
	begin
	config
	for n in "${NODES[@]}"; do start "$n"; done
	echo "three nodes started (logs in $WORK/n*.log); waiting for web..."
	for _ in $(seq 100); do
		[ "$(ask)" != "-" ] && break
		sleep 0.2
	done
	first=$(ask)
	[ "$first" != "-" ] || { echo "web did not come online; see $WORK/*.log" >&2; exit 1; }
	echo "the client gets answers from $first"
	"$WORK/sftd" status -socket "$WORK/n2.sock"
	echo
	echo "killing $first: its link goes down, its sftd and app get SIGKILL"
	ip -n "$SW" link set "p-$first" down
	pidvar=PID_$first
	kill -KILL -- "-${!pidvar}"
	t0=$(date +%s%N)
	last=$first
	for _ in $(seq 300); do
		a=$(ask)
		if [ "$a" != "$last" ]; then
			printf '+%4d ms  the client gets: %s\n' "$((($(date +%s%N) - t0) / 1000000))" "$a"
			last=$a
		fi
		[ "$a" != "-" ] && [ "$a" != "$first" ] && break
		sleep 0.01
	done
	echo
	for n in "${NODES[@]}"; do [ "$n" != "$first" ] && survivor=$n; done
	"$WORK/sftd" status -socket "$WORK/$survivor.sock"
	echo
	"$WORK/sftd" events -socket "$WORK/$survivor.sock" | grep cluster- | tail -6
	echo
	echo "tearing down (processes, namespaces, $WORK)"
}

# peer-demo.sh sources this file for its functions (and runs no command).
[ "${BASH_SOURCE[0]}" = "$0" ] || return 0

case "${1:-}" in
run) run ;;
down) need_root && down && echo "removed" ;;
*)
	sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
	exit 2
	;;
esac
