// Package peer is sft's peer mode: MiniSFT's two-node watch, without a
// quorum. Each node serves the groups it holds; for every group it does
// not hold it pings the group's service address and takes the group over
// when the holder is judged dead.
//
// # Roles
//
// A [Group] names its service address and its Home node. A group homed on
// each node is active/active (mutual takeover); every group homed on one
// node is active/passive. For each group a node is either the Holder (the
// group is online in its monitor, driven through [Local]) or the Watcher.
// [Start] brings the groups homed here online; a home node coming back
// finds its address answered by the peer (the ipaddress type's RFC 5227
// probe refuses it, node-local) and does not bind it: an [EventRecovery],
// and it watches instead. Failback is manual ([Node.Move]) unless the group
// sets Failback (policy.Failback): then the holder moves the group home
// once the home node has answered a ping of its own address and its sft
// has answered an authenticated status request for StablePeriod, inside
// the failback window.
//
// # Judging the holder dead
//
// LooksAlive is an ICMP echo to the service address every Interval
// ([ICMP]: pro-bing in privileged mode; its unprivileged UDP mode fails
// even as root until net.ipv4.ping_group_range is set; without the
// privilege Start fails, [CheckICMP], rather than count every echo lost).
// IsAlive is the
// group's functional check (package internal/health: TCP connect, HTTP
// GET with an expected status and, with CheckBody, body text, or a
// command) every Check.Interval, up to 3 attempts; the first unanswered
// echo of a run triggers a quick one at once (one attempt, bounded by the
// detect window), whose failure does not count as a service failure. The
// [Detector] (a pure core, no clock) says Dead when k
// (Misses) echoes in a row are unanswered and a functional check started
// after the first of them failed (or the group has no check). Misses are
// counted in echoes sent, not in time: a stalled watcher sends fewer
// echoes and cannot misjudge a live holder by its own stall.
//
// The arithmetic. Let q be the probability that one echo exchange is
// lost (loss p on the link in one direction gives q = p; p in both
// directions gives q = 1-(1-p)^2, 0.64 for p = 0.4). A run of k lost
// echoes starts after an answered one with probability (1-q)q^k, so a
// watcher sending an echo every interval i expects
//
//	false judgements per period T = T/i x (1-q) x q^k      ([FalseRate])
//
// The defaults, i = 10 ms and k = 24 (window 240 ms), give at q = 0.4:
// 6000 x 0.6 x 0.4^24 = 1.0e-6 per minute, 0.53 per year; at q = 0.2,
// 8e-14 per minute. [Detect.Validate] refuses a configuration that
// predicts more than MaxFalsePerYear (1) at SurviveLoss (0.4) and names
// the smallest k that would do ([MinMisses]). For q = 0.64 (40 % each way)
// set SurviveLoss 0.64: that needs k = 47 at 10 ms (470 ms) or k = 49 at
// 5 ms (245 ms). Not counted, and so extra margin: a false takeover also
// needs the functional check to fail (about q again under loss) and the
// address probe to go unanswered (q^probe_count).
//
// MiniSFT's 3 s x 3 takes 9 s to detect and, at 40 % loss, predicts
// 4e5 false takeovers a year; the defaults detect in 240 ms (37x faster).
// The outage a client sees is the window plus the takeover: the
// reference ping (if any, answered in about a millisecond) and Online,
// whose address probe takes probe_count-1 x probe_interval + probe_wait
// (200 ms with the ipaddress defaults; 60 ms with 2 probes, 20 ms and
// 40 ms). Keep the functional check's Timeout below the window for a
// dead holder's check to fail in time.
//
// # Taking over
//
// Dead does not mean take: first the optional Reference (the gateway)
// must answer a ping within ReferenceWait, else [EventIsolated] ("isolated,
// taking nothing"). Then Local.Online: the address type probes the
// address first; if it is still answered (the holder is alive but does not
// answer echoes) nothing is stolen: [EventAddressHeld], an alert.
//
// When the address answers pings but the functional check fails
// ServiceFailures times in a row (a periodic check makes up to 3
// attempts, so at loss q it fails with about q^3: at 40 %, 3 failed checks
// in a row every 1.5 s is about 2.6e-4, 0.01 alerts a minute) (MiniSFT's "ping answers, service dead",
// where "Hier kann eigentlich nur ein Alarm ausgelöst werden"), the
// watcher raises [EventServiceDead]. With Group.Release it then asks the
// peer's sft to release the group over the interconnect; the holder runs
// the same functional check locally and agrees only if it fails there
// too, takes the group offline and answers; the watcher brings it online
// (an orderly move, [EventMoved]). Loss between the nodes can therefore
// raise alerts but cannot move a healthy service.
//
// # Interconnect
//
// One TCP connection per request between the nodes' own addresses
// (Config.Listen, Config.PeerAddr): the server sends a fresh 32-byte
// challenge, the client's request (op, group, sender, challenge, its own
// nonce) carries an HMAC-SHA256 over the shared Key, the reply an HMAC
// over the client's nonce. A recorded request cannot be replayed (its
// challenge is never issued again), a recorded reply cannot answer another
// request, and an unauthenticated request gets no answer. Ops: release
// (Admin: without the local check, for Move), take, status.
//
// # API
//
// [Node.Status] (per group: role, owner, state, reason; for watchers the
// last reply, misses in a row and failed checks; with Options.PeerCheck
// whether the peer's sft answers), [Node.Subscribe] (lossy
// [Event]s, alerts flagged), [Node.Move] (orderly: the holder goes offline
// before the other goes online; a failed take is rolled back), and
// [Simulate], a dry run of the watcher's decisions for a [Scenario] (host
// or service dying, random loss) in simulated time; [ParseScenarios] reads
// scenarios as text (`duration=60s loss=40%`), [DefaultScenarios] is a
// standard set. Options.Events subscribes before the group loops start, so
// that a host sees the first events (a home group online, its address
// found held). The example host (examples/host, cluster.mode: peer) runs
// a Node over its monitor.
//
// # Tests and benchmark
//
// The lab tests (root) build two nodes, a client and a gateway on a
// bridge in network namespaces; each node is this package's test binary
// re-executed inside its namespace with ip netns exec, running the real
// monitor, the real ipaddress type and a TCP service. A dead node is its
// bridge port down and its process SIGKILLed; loss is an nftables netdev
// ingress drop. The benchmark:
//
//	SFT_PEER_BENCH=1 go test -run TestPeerBench -v ./cluster/peer/
//
// kills the owner 10 times and runs 60 s of loss per level. Measured here
// (2 shared vCPUs busy with other work, defaults, address probe 2 x 20 ms
// + 40 ms), two runs: outage seen by a client connecting every 10 ms,
// median 404 ms (min 339, max 547) and 323 ms (min 318, max 329); 20 %
// and 40 % loss one way and 40 % both ways (q = 0.64), 60 s each: no
// takeover, no alert.
//
// pro-bing keeps every unanswered sequence number; [ICMP] restarts its
// pinger every 20000 echoes so that a long loss does not grow memory.
package peer
