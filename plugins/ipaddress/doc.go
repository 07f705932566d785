// Package ipaddress is the "ipaddress" resource type: a virtual IP address
// (IPv4 or IPv6) that moves between nodes, as in MiniSFT.
//
// [NewType] returns the type; register it in a resource.Registry or serve
// it as a plugin. It imports only package resource, sft's internal packages
// and libraries, so it works in-process as well.
//
// # Properties
//
//	name            default            meaning
//	address         (required)         address with prefix length: "192.0.2.10/24", "2001:db8::10/64"
//	interface       automatic          interface name; empty: the one interface with an address
//	                                   whose subnet contains the address (error if none or several)
//	label           none               IPv4 address label, at most 15 characters (IPv4 only)
//	announce        ["0s","100ms","1s"] offsets after binding at which to announce; [] = never
//	refresh         0 (off)            announce again every refresh after the schedule (>= 10ms)
//	probe_count     3                  duplicate-address probes before binding; 0 = no probe
//	                                   (IsAlive then skips its probe too)
//	probe_interval  "50ms"             gap between probes
//	probe_wait      "100ms"            listening time after the last probe
//	netns           the process's      network namespace path (/run/netns/NAME, /proc/PID/ns/net)
//
// Durations accept Go duration strings ("250ms") or numbers of seconds. The
// probe defaults decide "free" after 2 x 50 ms + 100 ms = 200 ms, a LAN
// default: a holder answers an ARP probe within microseconds (tens of
// microseconds measured on a bridge); RFC 5227's own timers (1-2 s between
// probes, 2 s announce wait) suit DHCP clients, not failover. On a slow or
// lossy network raise probe_count and probe_wait.
//
// # Online
//
//  1. Resolve the interface (it must be up with carrier), probe: IPv4 sends
//     RFC 5227 ARP probes (sender IP 0.0.0.0, so nobody caches anything);
//     IPv6 sends duplicate address detection neighbour solicitations from ::
//     to the solicited-node group. Any host that answers for the address
//     (or, IPv4, that probes for it at the same time) makes Online fail with
//     a node-local error, without binding: this keeps a recovering node from
//     stealing the address back. For IPv6 sft runs this probe itself and
//     adds the address with IFA_F_NODAD rather than relying on the kernel's
//     DAD, which keeps the address tentative (unusable) for 1-2 s.
//  2. Add the address with netlink (AddrReplace: idempotent) and wait until
//     the netlink subscription reports it (that notification is also a
//     barrier: every older event has been applied). For IPv6 also wait until
//     the kernel has joined the address's solicited-node group: Linux does
//     that from its address worker, possibly long after the notification
//     under load, and ignores other nodes' DAD probes until then, so the
//     new owner could not yet defend the address.
//  3. Announce: gratuitous ARP in request form (op=1, SPA=TPA=address,
//     THA=0; Linux ignores some reply forms within its locktime) or an
//     unsolicited neighbour advertisement with the Override flag to ff02::1.
//     Announcements at offset 0 go out before Online returns; the rest of the
//     schedule and the refresh run in a goroutine that Offline, Terminate and
//     Close cancel and wait for.
//
// Frames go through raw packet sockets (mdlayher/packet), built with
// mdlayher/arp, mdlayher/ethernet and mdlayher/ndp in pure functions; the
// socket is opened inside the configured namespace on a locked OS thread
// (internal/netns.Do). arp.Dial is not used because it needs an IPv4 address
// on the interface, which a node taking over an address may not have. An
// instance keeps one socket from its first Online until Close: closing a
// packet socket waits for an RCU grace period (7-20 ms measured here), which
// would otherwise delay every takeover. A BPF filter on the socket passes
// only ARP frames with the address as sender or target IP, or neighbour
// solicitations and advertisements whose target is the address, so many
// instances on a busy interface do not each copy its traffic; frames queued
// between probes are discarded before each probe.
//
// Neighbours update an existing cache entry from these announcements; with
// the Linux default arp_accept=0 (and IPv6's accept_untracked_na=0) a
// neighbour without an entry for the address creates none, and will resolve
// the address normally when it first needs it.
//
// # Health
//
// LooksAlive answers from an in-memory view kept current by netlink address
// and link subscriptions in the instance's namespace (started by Open, ended
// by Close): the address is on the interface and the link is up and running.
// No netlink request is made per call (about 80 ns). IsAlive adds one
// probe and listens probe_wait (100 ms by default): another host answering
// for the address is a node-local failure. Answers that arrive in time but
// are read late (a loaded machine) still count: the socket is drained
// without waiting when the window ends.
//
// While online, the address disappearing (removed by someone else), the link
// going down or losing carrier, or the interface vanishing is pushed at once
// to the handler set with SetFailureHandler (one push per online session).
//
// # Errors
//
// Bad properties, a missing namespace or interface, an address in no local
// subnet (automatic interface) are configuration errors naming the property
// and value, from Validate and Open. At Online time a vanished interface, a
// link without carrier or another holder of the address are node-local.
//
// Offline and Terminate remove the address (idempotent: an address already
// gone is fine) and cancel the announcements.
package ipaddress
