// Package plugins runs resource types in separate processes over
// hashicorp/go-plugin and gRPC (protocol sft.resource.v1), so that a crash or
// a hang in a resource never takes the host down: the resource hosting
// subsystem of a failover cluster.
//
// # Plugin side
//
// A plugin binary's main calls [Serve] with its types; one process hosts
// every instance of them. A program that is also the host calls [Main]
// first instead: started as a plugin it serves and exits, otherwise it
// returns (package plugins/bundled does this for the bundled types). Logs of
// the types (their OpenRequest.Logger) travel to the host as hclog JSON
// lines and are re-emitted at their level. The plugin exits when its host
// dies (Pdeathsig, plus a parent check every second).
//
// # Host side
//
// [Launch] starts a plugin binary ([Config].Path, or the running executable
// re-executed) and returns a [Pool] whose [Pool.Types] are ordinary
// resource.Types: register them in a resource.Registry and the monitor
// cannot tell their instances from in-process ones. ("Pool": the plugin
// processes of one binary. "Host" in this project means a machine of the
// cluster or the daemon in examples/host.) go-plugin's handshake cookie and
// protocol version are always checked, and a plugin of another protocol
// version is refused with an error naming both versions; AutoMTLS is on
// unless [Config].DisableAutoMTLS; [Config].SHA256 pins the binary. Error
// classes, fields and values cross the wire as gRPC status details, so a
// configuration error in the plugin is a configuration error in the host.
// Progress reports (resource.ReportProgress) in the plugin's Online and
// Offline reach the host ctx's progress function.
//
// The plugin announces capabilities in Info and the host acts on them:
// without "events" it opens no event stream, and without "events" or
// "looksalive-loop" every LooksAlive and IsAlive is a call (as with
// [Config].RemoteChecks); "schedule" and "cycle" say that it honours the
// poll schedule and tags events with the online cycle (below). With
// "calls" (every plugin built with this SDK) the host opens one more
// stream per process, Calls, and Online, Offline, LooksAlive, IsAlive and
// Terminate of all its instances travel on it as messages with an id
// (progress reports and the end come back the same way; the caller's
// deadline travels with the call and follows it when the caller moves it,
// as the monitor does with each progress report of a pending call; its
// cancellation travels as a CANCEL message),
// instead of a gRPC call each: per call that saves each side a gRPC
// stream, and on both sides the calls run on shallow goroutines instead
// of ones whose stacks grow inside gRPC (a thousand Onlines at once:
// about 40 % less CPU, scalebench -phases noop). A plugin without it gets
// an RPC per call, as before, whose deadline is fixed when the call
// starts: there an Online that reports progress past its first deadline
// is still cut at it.
//
// Every proxy implements resource.FailureReporter, resource.ProcessKiller,
// resource.PollScheduler and resource.Closer:
//
//   - A plugin process that exits or is killed fails every online instance
//     it hosted at once: the host holds one server stream per process
//     (Events) and its end is the signal, with [ErrPluginExited]. Calls in
//     flight return ErrPluginExited (the caller's ctx is joined with the
//     process's life), never hang. What is left of the process group is
//     killed.
//   - When the host kills a shared process for one instance (KillProcess,
//     or a deadlock the plugin reported), the failures of the other
//     instances in it are marked resource.Collateral: the monitor restarts
//     them without counting the failure against their restart thresholds.
//     The culprit's own failure, a crash and a heartbeat kill are not
//     collateral.
//   - Relaunch: the next Online, Offline or Terminate relaunches the process
//     and reopens the instance there; Terminate then lets the type clean up
//     what the dead process left (an address, say). An instance whose whole
//     tree is one cgroup (resource.Contained, genericapp under cgroup
//     containment) needs none of that: when its process dies the host
//     kills the group, waits until it is empty and removes it, and
//     Terminate answers once that is done, without a call into any plugin
//     (after a crash with a thousand instances the reopens did not fit the
//     monitor's call timeout). A reopen runs on its own goroutine, at most
//     16 per Pool at once (the plugin answers the first first), so a
//     caller whose ctx ends loses nothing: the next finds the instance
//     open. A Terminate that gave up waiting for its reopen reached no live
//     process, and its error is resource.Collateral, so the monitor does
//     not kill the fresh process shared with every other instance. A
//     process that died
//     young (within [Config].BackoffReset, 1 min) delays the next launch by
//     a backoff doubling from 100 ms to 10 s, counted from the death, so it
//     decays: BackoffReset after the last death a launch is immediate. The
//     cleanup launch of Terminate never waits for the backoff, and Close
//     interrupts it. When a process dies while instances are open, it is
//     relaunched in the background after the backoff (and again, with
//     growing backoff, while that fails) and the instances of the dead
//     process are reopened in it at once, so after a crash a process with
//     the instances open is ready when the monitor restarts or retries the
//     resources, and [Config].OnProcess
//     reports the relaunch. Every process forked is reported started or
//     relaunched and, when it dies, exited, including one that dies during
//     its handshake (whose error says how it ended).
//   - After Close every call fails at once with ErrPluginExited.
//   - KillProcess kills the plugin's whole process group (SIGKILL;
//     go-plugin's Kill would block forever on a frozen plugin and orphan
//     its children) without waiting for the hung call; the monitor calls it
//     at the deadlock timeout.
//   - The host's calls return at their deadline even when the resource in
//     the plugin ignores its ctx (the call stream and gRPC honour it), so
//     the monitor runs Online and Offline on the operation's own
//     goroutine and never abandons them (internal/callhint), and its
//     deadlock timeout rarely fires for a plugin resource's checks. The
//     plugin watches instead: a call still running the deadlock grace after its
//     ctx ended (the deadline, or Terminate) is reported, and the host
//     kills the plugin's process group, failing its resources, as the
//     cluster service restarts a deadlocked resource host.
//   - A heartbeat kills a plugin that stops answering, so a frozen process
//     is noticed even when no call is in flight: a Ping every
//     [Config].HeartbeatInterval (1 s) not answered within HeartbeatTimeout
//     (2 s) is a miss, and HeartbeatMisses (3) misses in a row kill, within
//     9 s with the defaults. A single late answer (a GC pause, a VM stall)
//     is forgiven.
//   - Plugins start in a process group of their own, with Pdeathsig, forked
//     from the spawner thread of package internal/proc (Pdeathsig follows
//     the forking thread, not the process). The host reaps them itself, the
//     race-free way internal/proc documents: it waits for the leader's exit
//     without reaping it, kills the group while the zombie leader still
//     reserves the group id, then reaps, so a group signal never reaches a
//     stranger that reused the id.
//   - Each process gets its unix socket in a directory of its own inside
//     the Pool's private (0700) directory in $TMPDIR; it is removed when the
//     process is reaped, and Close removes the Pool's. Launch removes the
//     directories of earlier hosts whose pid is dead (killed hosts cannot).
//   - A plugin process runs with argv[0] "sft-plugin: NAME"
//     ([Config].Name, default the binary's base name) and comm
//     "sft-plugin", so `ps` tells it from its host.
//   - An instance may ask for a process of its own: property
//     "sft.isolate": true ([PropIsolate]), or [Config].Isolate for a type.
//
// # Where the poll loop runs
//
// A gRPC round trip costs about 170-200 us and real CPU on both sides
// (measured below), so 1,000 resources polled every second across the
// boundary cost more than the 2 % of a core we allow. Like the resource
// hosting subsystem, which runs LooksAlive and IsAlive next to the resource
// DLL and tells the cluster service only about changes, the plugin polls its
// own instances and pushes changes on the Events stream:
//
//   - LooksAlive: one sweep per interval over every online instance (one
//     timer wake-up per interval, not one per resource; LooksAlive is
//     contractually cheap), each call under the resource's call timeout,
//     or inline with no timer or context of its own when the resource
//     answers from memory (resource.InstantChecker). An instance busy with
//     a host call is skipped for that round. A pass that outlasts the
//     interval because it has many instances is let finish; only an
//     instance whose own LooksAlive overran its call timeout (it ignores
//     its ctx) is failed ("did not return within its call timeout") and
//     leaves the sweep until its next Online.
//   - IsAlive: at once after Online, then from one sweep per interval as
//     well: inline when the resource answers from memory
//     (resource.InstantIsAliveChecker, a genericapp without a health
//     check), else on a goroutine of its own per check (it may be slow),
//     bounded by the call timeout. A failure is pushed to the failure
//     handler at once.
//
// The proxy's LooksAlive answers from the last pushed LooksAlive result
// without a call; its IsAlive answers from the last IsAlive result while
// LooksAlive passes, and makes a real call otherwise (the monitor confirming
// a failed LooksAlive) or when the instance is not online. A failure the
// plugin pushed (the resource's own, or a failed plugin-side IsAlive) also
// fails both polls until the next Online, so none is lost between the end
// of Online and the monitor's first poll. Intervals and the call timeout are
// the resource's own: the monitor hands its final timing to the proxy
// (resource.PollScheduler) before the first Online, and the proxy sends it
// with every Online; a change applies from the next Online. Without it they
// come from [Config], then the type's DefaultTiming. Events never get lost:
// the plugin's queue keeps the latest state per instance and every failure,
// however slowly the host reads. Each Online starts a new online cycle and
// the plugin tags events with it, so a late event of an earlier cycle is
// dropped instead of failing the new one.
//
// A failure the resource itself reports while online is followed, in the
// plugin, by the instance's Terminate at once, the call the monitor makes
// next after any failure: the event says so (terminating), the plugin
// reports the end (KIND_TERMINATED), and the proxy's Terminate waits for
// that instead of making a call, one round trip less on every
// crash-to-restart. The plugin's Terminate takes the instance's call slot
// and runs only if no Online, Offline or Terminate came from the host
// since the failure; if it fails or does not run, the proxy calls
// Terminate as before.
//
// A failed LooksAlive therefore reaches the monitor within two intervals
// (plugin sweep, then the monitor's poll); IsAlive failures and pushed
// failures arrive at once. [Config].RemoteChecks turns all of this off and
// makes every check a call.
//
// # Measured (2 vCPU VM, Go 1.26, other jobs running on the machine)
//
// Round trip host -> plugin -> host, AutoMTLS on, one run
// (go test -bench RoundTrip -benchtime 5000x ./plugins):
//
//	bare go-plugin call (gRPC health check)  p50 166 us  p99 661 us
//	LooksAlive as a call (RemoteChecks)      p50 191 us  p99 653 us   (1.15x bare)
//	IsAlive as a call                        p50 174 us  p99 540 us   (1.05x bare)
//	LooksAlive, default (answered locally)   p50 0.09 us p99 0.2 us
//
// Crash to "resources failed" in the host (SIGKILL of the plugin to the
// last failure handler call; go test -bench CrashToFailed -benchtime 200x):
//
//	1 instance     p50 1.25 ms  p99 3.4 ms
//	100 instances  p50 1.84 ms  p99 26 ms
//
// Scale: 1,000 resources of one type in one plugin process driven by the
// real monitor (LooksAlive every 1 s, IsAlive every 10 s), measured over
// 60 s (package plugins/internal/scale):
//
//	plugin-side polling (default)  host 0.77 % + plugin 0.58 % = 1.35 % of one core; RSS 64 MB
//	                               (before the monitor swept instant LooksAlives inline: 1.95-2.12 %)
//	every check a gRPC call        host 12.2 % + plugin 8.8 % = 21 % of one core; RSS 66 MB
//	in-process (monitor alone)     host 0.97 %; RSS 30 MB (+ idle plugin)
//
// See README.md in this directory for the method.
package plugins
