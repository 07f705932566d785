// Package cluster is sft's failover across nodes: which node owns which
// group, decided by a quorum and never by two nodes at once.
//
// # Running a node
//
// [Start] runs one [Node] from a [Config]: the static node list
// ([NodeSpec]: name, raft TCP address, one UDP heartbeat address per
// interconnect path, witness or not), the [Timing], the shared key, the
// data dir, the monitor ([Local], *monitor.Monitor in managed mode) and
// the groups' placement specs. A node runs
//
//   - raft (hashicorp/raft) over TCP on its raft address, with the log
//     and stable store in hashicorp/raft-boltdb v2 (DataDir/raft.db) and
//     file snapshots under DataDir. Requests from other nodes to the leader share the port
//     (first byte 0xC5, HMAC-signed with the key);
//   - the UDP heartbeat detector (package detector) on every path;
//   - the leader loop, while it is the raft leader: node states from the
//     detector (down when a majority of the others agree; up once heard
//     without a break for 2W), then a placement pass (policy) turned into
//     compare-and-set SetOwner commands. A group moving away from a live
//     owner (a move, failback, drain) is drained: MoveGroup, the owner
//     takes it offline and sends Release, then SetOwner. A group whose
//     owner is down, or that failed and stopped there, gets its new owner
//     at once. A new leader re-reads the state after a barrier and never
//     re-places a healthy group: leadership moves nothing;
//   - the owner loop, on every node that hosts: a group comes online
//     here only while the state names this node its owner, the node
//     holds its lease, its copy of the state is current (below), and the
//     epoch is newer than any it fenced; it goes offline when that ends.
//     On LeaseLost every group not surely down is fenced at once (monitor
//     Fence, bounded by Timing.Drop), on a goroutine of its own: the
//     heartbeats go on meanwhile (a fence that held them back would make
//     the others find this node silent, and move its groups, after a mere
//     lease loss).
//   - staleness: from start and from every lease loss until, after the
//     lease returns, the raft leader's state after a barrier has reached
//     this node (a request on the raft port), nothing comes online here:
//     a takeover committed while the node had no lease may not have
//     reached it yet. At that sync, every group the state names this
//     node the owner of is reclaimed: SetOwner by the owner with a new
//     epoch, a compare-and-set that also defeats a stale decision still
//     in flight. A node that kept its lease syncs nothing and waits for
//     nothing.
//   - adoption at start: a starting node touches nothing at first. A
//     group the state still names it the owner of (nobody took it over)
//     is reclaimed once it holds its lease, and then adopted: monitor
//     Probe keeps what a previous run left running (an address still
//     bound) and Online brings up the rest, instead of fencing and
//     starting it again. A group owned by another node or by nobody is
//     fenced at once; every group not adopted within the adoption grace
//     (2W holdoff + W) is fenced. Meanwhile a previous run's leftovers
//     may still run without a lease: like a frozen owner (below), the
//     new owner's address probe holds a takeover back until they are
//     fenced.
//   - failures: a group that failed and stopped here is reported
//     (RecordFailure with its class: node-local bans this node,
//     configuration every node); while the monitor is still stopping it
//     (Failed, not yet FailedAndStopped) it is never brought online
//     again. An Online refused because the address is held elsewhere
//     ([IsHeldElsewhere]) is not a failure: the group waits, the event
//     says fence-needed, Config.FenceHook runs once per epoch, and the
//     Online is retried every W.
//
// The API: [Node.Status] (nodes with state and evidence, groups with
// owner, epoch, reason and local state, this node's lease and margin),
// [Node.Move], [Node.Online] and [Node.Offline] (cluster-wide),
// [Node.Clear], [Node.SetMaintenance], [Node.AddNode], [Node.RemoveNode],
// [Node.Subscribe] and [Node.Events] (events: [EventKind]; Config.Events
// keeps the first moments, which a Subscribe after Start can miss) and
// [Node.Simulate].
//
// Raft storage: hashicorp/raft-boltdb v2.3.0 over bbolt v1.4 (one file,
// DataDir/raft.db, fsync per commit; v2.3.1 does not build against raft
// v1.8.0: it imports go-metrics/compat, gone in go-metrics v0.7.0). bbolt
// commits by a copy-on-write page tree and a meta page switch, so a kill
// at any moment leaves the last committed state (TestStoreCrash SIGKILLs a
// writer 20 times). It replaced raft-wal v0.4.0, whose log could panic
// at the next start after a kill (hashicorp/raft-wal#31); a DataDir still
// holding raft-wal's raft/ directory is refused: clear it and start the
// node with Config.Join set. An
// empty DataDir keeps raft in memory (tests and examples only).
//
// # The groundwork
//
//   - Placement: pure functions in package policy ([policy.Cluster.Place],
//     [policy.Cluster.PlaceAll]) with a reason per node.
//   - The authoritative state: package cluster/state, a pure state machine
//     (versioned typed commands, one apply switch, an epoch per group that
//     grows on every ownership change, compare-and-set on it) and its
//     hashicorp/raft FSM adapter, tested over three in-memory raft nodes.
//   - Failure detection and the owner's lease: package cluster/detector, a
//     pure core and a UDP runner (HMAC-signed heartbeats, one socket per
//     interconnect path).
//   - [Timing]: the detector window, the lease, the drop budget and raft's
//     timeouts, with named profiles and a Validate that refuses an unsafe
//     configuration with the arithmetic.
//   - [Simulate]: a what-if run of placement over the state (Pacemaker's
//     crm_simulate).
//   - [Local]: the small interface through which the node drives its
//     monitor.
//
// # Why a takeover is safe: the timing argument
//
// Every node sends a heartbeat to every peer every Heartbeat (10 ms; 5 ms
// in the fast profile) on
// every interconnect path, and echoes in each heartbeat the newest one it
// received from that peer. Let N be the number of nodes (a witness counts).
//
// A node X is declared dead only when a majority of the other nodes
// (floor((N-1)/2)+1 of N-1) have heard nothing from it on any path for the
// window W, each by its own clock.
//
// The owner O holds a lease until L after it sent its newest heartbeat that
// floor(N/2) peers echoed (with O itself, a majority of N), measured on O's
// own monotonic clock. When the lease runs out, O takes its groups down
// (Local.Fence) within t_drop.
//
// Any majority of the others shares at least one node P with those
// echoers (floor(N/2) + floor((N-1)/2)+1 > N-1). P received that heartbeat
// after O sent it, at real time s or later, so P cannot call O silent
// before s + W(1-rho) (P's clock may run fast by rho). O's lease, L on a
// clock that may run slow by rho, ends by s + L(1+rho) in real time, and
// the groups are down by s + L(1+rho) + t_drop. So O is down before anyone
// may declare it dead, and a fortiori before a new owner is committed
// through raft, when
//
//	L(1+rho) + t_drop < W(1-rho)
//
// [Timing.Validate] refuses a configuration that breaks it and prints the
// arithmetic. The default profile (W 500 ms, L 300 ms, rho 1e-3) allows
// t_drop up to 199.2 ms and budgets 150 ms; the fast profile (W 200 ms,
// L 110 ms) allows 199.8 - 110.11 = 89.69 ms and budgets 70 ms (a margin
// of 19.69 ms: the fence of an address and a contained app takes a few ms
// on a host without scheduling stalls). Validate also wants L and W
// to span at least MinBeats heartbeats, raft's heartbeat timeout no longer
// than W (else raft, not the detector, would set the outage when the raft
// leader dies) and raft's own rules (raft.ValidateConfig).
//
// The argument needs P's suspicion to be current. A report can be stale:
// P called O silent, then heard O again, but a third node still counts P's
// last report (for up to W, until P falls silent to it). So P echoes O's
// heartbeats only after hearing O without a break for an echo holdoff of
// 2W; any report in which P called O silent is superseded or expired by
// then, as long as a datagram takes less than about W(1-3 rho) in transit.
// A node therefore gets its first lease 2W after it (re)joins. And a node
// that lost its lease must not bring its groups back on the old epoch when
// it regains one: only a new SetOwner (a new epoch) may; the owner loop
// reclaims with one.
//
// Echoes of old heartbeats renew nothing (the lease counts from the send
// time of the echoed heartbeat), and the detector reports a lost lease
// before anything else when it runs again after a stall. The tests attack
// the inequality with a simulated network and skewed clocks: a partition,
// both asymmetric partitions, a frozen owner, a stale report, 20 % and
// 40 % loss for 60 s, and randomized runs of all of these on three and
// five nodes with every node watched (TestTimingChaos); and, to show the
// checker can fail, a configuration Validate refuses and a detector
// without the echo holdoff.
//
// # Loss: the arithmetic
//
// With heartbeats every 10 ms and independent loss p on a link, a false
// "silent" needs W/10ms datagrams lost in a row: at p = 0.4 and W = 500 ms,
// 0.4^50 (about 1e-20) per heartbeat; and a majority must agree. The lease
// needs one echo round trip (both ways: 1-(1-p)^2 = 0.64 lost at p = 0.4)
// from one of two peers (three nodes) within L: 0.64^2 = 0.41 per
// heartbeat, 0.41^30 (about 2e-12) for L = 300 ms. The fast profile
// sends every 5 ms, so its 110 ms lease spans 22 heartbeats: 0.41^22
// (about 3e-9 per heartbeat, one lost lease in some 4 days of sustained
// 40 % loss), and its 200 ms window 40 (0.4^40, about 1e-16). A lost lease is a fence and a restart of the group on
// the same node (a black hole of some 100-300 ms), not a move: nobody
// declares the owner dead, which takes W of silence.
//
// # What it does not protect against
//
//   - A frozen owner (SIGSTOP, a paused VM) keeps its address until it runs
//     again, longer than its lease. On resuming it fences first, but
//     meanwhile its kernel answers ARP: the new owner must probe the
//     address before binding it, and a fence hook (power off, isolate) is
//     the only cure for a node that stays frozen. A stall longer than
//     t_drop between the lease check and the address removal is the same
//     case.
//   - An owner that hears nobody while the others hear it (one-way loss
//     towards it) loses its lease and fences itself, but nobody declares it
//     dead: its groups stay down until it hears a quorum again. Heartbeats
//     could carry "fenced" so the others take over; not done yet.
//   - Two nodes without a witness have no majority once one dies: quorum
//     mode needs three voters.
//   - A process that stalls between checking its lease and calling the
//     monitor's Online: the Online then starts after the lease ran out;
//     the owner loop fences it as soon as the monitor reports it, so the
//     stall counts against t_drop like any other scheduling delay.
//   - A lease loss, even a short one, costs a fence, a sync and a
//     reclaim (a new epoch), and so a restart of the group on the same
//     node: fencing at the lease's end is what makes a takeover safe.
//     A host process restart that ends before the others' window keeps
//     what still runs (adoption); one that ends later finds the group
//     taken over and fences its leftovers.
//   - Requests to the leader (the sync and the reclaim after a lost
//     lease, a Release, a move) open a TCP connection each: under heavy
//     loss (40 %) lost SYNs cost seconds of retransmission, so a group
//     whose owner lost its lease may stay down that long (a black hole,
//     never a second holder).
//   - Raft's own traffic is not authenticated (hashicorp/raft has no such
//     option): keep the interconnect on a private network. Heartbeats and
//     requests to the leader are signed.
//   - Every node must run the same command and snapshot format; the
//     commands Release and SetStopped were added without a version bump
//     (no released cluster runs version 1 without them).
//
// # Tests
//
// node_test.go runs three-node clusters in one process on 127.0.0.1-3
// with real raft TCP and real UDP, real monitors and fake resources whose
// virtual IP is a shared register that records every claim made while
// another node holds it (asserted empty): kill the owner, partition it
// both ways and each one-way (a test-only filter in the UDP sender and the
// raft stream layer), the raft leader killed while not the owner, one of
// two paths lost, a witness keeping two nodes available, a move, group
// failures past the restart and the failover thresholds, failback
// immediate, prevented and in a daily window (a test placement clock),
// the fence hook for a frozen owner, offline/online/maintenance, every
// node restarting from its DataDir, a crashed owner restarting before
// anyone noticed (it adopts its group: TestRestartAdopts) and after a
// takeover (it fences what it left: TestRestartAfterTakeover), and a
// node added and removed at run time (TestAddRemoveNode, Config.Join).
// The example host runs the same faults with sftd processes in network
// namespaces (examples/host/cluster_test.go) and measures them
// (examples/host/clusterbench).
//
// # Not done
//
//   - An owner that hears nobody (one-way loss towards it) fences itself
//     and is not replaced (see above).
//   - Peer mode (two nodes without quorum) is package cluster/peer.
package cluster
