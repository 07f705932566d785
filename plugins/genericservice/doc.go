// Package genericservice is the "genericservice" resource type: it drives a
// service of the operating system's service manager, like the Generic
// Service resource of a failover cluster.
//
//   - Online starts the unit, waits for the manager's start job to finish
//     ("done") and for the unit to be active, then for the optional
//     readiness check.
//   - Offline stops the unit, waits for the stop job and clears a failed
//     state.
//   - Terminate cancels in-flight calls, sends SIGKILL to every process of
//     the unit, then stops it and clears the failed state.
//   - LooksAlive: the manager reports the unit active, answered from an
//     in-memory state kept current by the manager's change notifications
//     (systemd: PropertiesChanged signals): no round trip per poll.
//   - IsAlive: one round trip to the manager (active now) plus the optional
//     health check.
//   - A unit that leaves the active state while online (its process died,
//     someone stopped it) is pushed at once as a transient failure
//     ([resource.FailureReporter]), once per Online. The manager's own
//     restarts (Restart=) count as failures too: let sft own the policy.
//
// Properties:
//
//	service        required  unit name: "nginx", "nginx.service", "getty@tty1"
//	manager        "systemd" backend name (see Config.Managers)
//	address        default   where the manager listens; systemd: D-Bus address of its private socket
//	start_timeout  0         bounds Online on top of the pending timeout ("30s")
//	stop_timeout   0         bounds Offline on top of the pending timeout
//	readiness      none      check Online waits for: {"tcp"|"http"|"command", "interval", "timeout", "expect_status"}
//	health         none      check IsAlive runs, same shape
//
// Errors: a unit the manager does not know (or masked, or failing to load)
// is a configuration error naming the service property; a failed start job
// is a transient [*JobError].
//
// The service manager sits behind the small [Manager] interface (Start,
// Stop, Kill, Status, Watch). The Linux backend is systemd over D-Bus
// ([NewSystemd], github.com/coreos/go-systemd/v22 for calls and job results
// plus a connection of its own for signals). By default it connects as
// systemctl does: the private socket /run/systemd/private as root, else the
// system bus; [SystemdConfig.Dial] replaces that (the tests reach a systemd
// booted in a sandbox through a proxy). One Manager is shared by all
// resources of a Type naming it.
//
// Costs, measured against systemd 252 in the test sandbox on a loaded 2-core
// VM (see the benchmarks): LooksAlive about 0.1 us (memory only); IsAlive one
// GetAll round trip, about 0.6-0.9 ms; Online and Offline cost what the
// start and stop jobs cost (the same as bare go-systemd calls in the same
// run). On the private socket systemd unloads an inactive unit and parses
// its file again on the next start (a few ms); Unit.Ref would pin it but
// needs a bus daemon, so it is tried and skipped when it fails.
//
// A lost connection to the manager (systemd restarting) is not pushed as a
// failure: LooksAlive fails (state unknown), and IsAlive, Online, Offline
// and Terminate reconnect once and retry.
//
// The package imports resource and internal packages only, never plugins,
// so it works in-process as well as served as a plugin.
package genericservice
