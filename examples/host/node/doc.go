// Package node runs the example host's node: it opens the configured
// resources (in plugin processes, this binary re-executed, or in-process),
// runs their groups on a monitor, serves the control API and the
// Prometheus metrics, writes the structured event log and fires alerts.
//
// On a single node nothing can move: a failure whose policy asks for a
// failover is logged, streamed and alerted as a plain failure ("failed; no
// other node to fail over to"). Status adds restart tallies (within the
// policy's period, and in total), every counter exists at 0 from the
// start, and Abort is the second signal's last resort.
//
// With a cluster section the node runs its groups through a cluster.Node
// (cluster.go): the monitor in managed mode is its Local (none on a
// witness, which opens no resource), autostart is the cluster's, Online,
// Offline, Clear and Move act cluster-wide, Status adds the cluster's view
// (every node, the lease, every group's owner, epoch and reason), the
// cluster's events join the event stream, the log and the metrics, and a
// failover placement fires the failover alert. Failures are not
// localized there: another node may take the group.
//
// In peer mode (cluster.mode: peer, peer.go) a cluster/peer Node drives the
// monitor (managed mode) instead: it brings the groups homed here online,
// watches the others and takes them over; Status adds its view (both
// nodes, every group's address, role, owner and reason), its events join
// the stream as peer-<kind>, a takeover fires the failover alert and a peer
// alert the failed alert (the monitor's group failures fire none), Move is
// the peer's ordered move, and Online and Offline are refused (the other
// node would take over a group taken offline).
//
// The resource types are wired in one place, types.go: BundledTypes,
// PluginMain (the self re-exec hook main calls first) and openTypes.
package node
