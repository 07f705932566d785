#!/usr/bin/env bash
# sft peer-mode demo: needs root (ip netns), run from anywhere in the repository.
#
#   peer-demo.sh run    build sftd, create the namespaces, start two nodes in
#                       peer mode (cluster.mode: peer), show the group on its
#                       home n1, kill n1 (link down + SIGKILL), show n2 taking
#                       the address over as the client sees it, bring n1 back
#                       (it finds the address held and does not steal it),
#                       move the group home by hand (`sftd move web n1`), then
#                       tear everything down (also on Ctrl-C or error)
#   peer-demo.sh down   remove what a crashed run left (idempotent)
#
# Network (all inside namespaces <p>-*, <p> = $SFT_DEMO_PREFIX, default "sftp";
# the functions are cluster-demo.sh's):
#   <p>-sw      bridge br0 (the switch)
#   <p>-n1 n2   nodes, eth0 10.98.0.1-2/24 (peer interconnect :7946)
#   <p>-client  10.98.0.100/24: the client, and the nodes' reference (the
#               gateway a node must reach before it takes anything over)
# The group "web": service address 10.98.0.50/24 (ipaddress) and an app on
# 10.98.0.50:8080 that answers GET /node with its node's name; the watching
# node pings the address every 10 ms and connects to the app as its check.
# Nothing is added to the machine's own network namespace.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
SFT_DEMO_PREFIX=${SFT_DEMO_PREFIX:-sftp}
# shellcheck source=cluster-demo.sh
source "$HERE/cluster-demo.sh"
NODES=(n1 n2)

peer_config() {
	umask 077
	head -c 24 /dev/urandom | base64 >"$WORK/cluster.key"
	cat >"$WORK/cluster.yaml" <<YAML
log: {level: info, format: text}
shutdown_timeout: 10s
cluster:
  mode: peer
  key_file: $WORK/cluster.key
  nodes:
    - {name: n1, interconnect: ["10.98.0.1:7946"]}
    - {name: n2, interconnect: ["10.98.0.2:7946"]}
  peer: {reference: 10.98.0.100}
groups:
  - name: web
    placement: {preferred: [n1]}          # its home; failback by hand (sftd move)
    peer: {check: {tcp: "$VIP:8080", interval: 500ms, timeout: 200ms}}
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
YAML
}

# watch_client prints who the client gets answers from whenever it
# changes, until it gets answers from $1 (at most 3 s).
watch_client() {
	local want=$1 last=${2:-} t0 a
	t0=$(date +%s%N)
	for _ in $(seq 300); do
		a=$(ask)
		if [ "$a" != "$last" ]; then
			printf '+%4d ms  the client gets: %s\n' "$((($(date +%s%N) - t0) / 1000000))" "$a"
			last=$a
		fi
		[ "$a" = "$want" ] && return 0
		sleep 0.01
	done
	echo "the client did not get answers from $want" >&2
	return 1
}

peer_run() {
	begin
	peer_config
	for n in "${NODES[@]}"; do start "$n"; done
	echo "two peer-mode nodes started (logs in $WORK/n*.log); waiting for web on n1..."
	for _ in $(seq 100); do
		[ "$(ask)" = n1 ] && break
		sleep 0.2
	done
	[ "$(ask)" = n1 ] || { echo "web did not come online on n1; see $WORK/*.log" >&2; exit 1; }
	sleep 2 # n2's first judgement waits for its start grace
	"$WORK/sftd" status -socket "$WORK/n2.sock"
	echo
	echo "killing n1: its link goes down, its sftd and app get SIGKILL"
	ip -n "$SW" link set p-n1 down
	kill -KILL -- "-$PID_n1"
	watch_client n2 n1
	echo
	"$WORK/sftd" status -socket "$WORK/n2.sock"
	echo
	echo "n1 comes back (a reboot: its stale address is gone, link up, sftd started)"
	ip -n "$P-n1" addr del "$VIP/24" dev eth0 2>/dev/null || true
	ip -n "$SW" link set p-n1 up
	start n1
	for _ in $(seq 100); do
		"$WORK/sftd" events -socket "$WORK/n1.sock" 2>/dev/null | grep -q peer-recovery-held && break
		sleep 0.2
	done
	sleep 2
	echo "the client still gets: $(ask)"
	"$WORK/sftd" status -socket "$WORK/n1.sock"
	echo
	"$WORK/sftd" events -socket "$WORK/n1.sock" | grep peer- | tail -3
	echo
	echo "failback is the administrator's decision: sftd move web n1"
	"$WORK/sftd" move -socket "$WORK/n1.sock" web n1
	watch_client n1 n2
	echo
	echo "tearing down (processes, namespaces, $WORK)"
}

case "${1:-}" in
run) peer_run ;;
down) need_root && down && echo "removed" ;;
*)
	sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'
	exit 2
	;;
esac
