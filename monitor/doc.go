// Package monitor runs resources and groups on one node: the resource
// monitor of a failover cluster.
//
// A [Monitor] holds groups ([GroupSpec]): resources with dependencies (a
// DAG). Bringing a group online brings its resources online in dependency
// order, independent branches in parallel; taking it offline goes in
// reverse. Calls to one resource are serialized, except Terminate.
//
// # Timing
//
// Each resource runs with one resolved resource.Timing
// (policy.ResolveTiming): its own configuration, then its type's
// suggestion (resource.TimingProvider), then package policy's defaults; an
// unset DeadlockTimeout derives from the final CallTimeout. Every call's
// ctx carries its deadline: the pending timeout for Online and Offline
// (moved by each resource.ReportProgress), the call timeout for LooksAlive,
// IsAlive and Terminate, so a resource can budget and a plugin RPC carries
// a gRPC deadline. A health check is late only once it runs past its
// deadline; one that answers exactly at it is on time. A resource that
// runs its own checks (resource.PollScheduler) is given its resolved timing
// before its first Online and whenever UpdateGroup changes it.
//
// # Health and restarts
//
// Once a resource is online its health is polled: LooksAlive at once and
// then every LooksAliveInterval, IsAlive every IsAliveInterval (the first
// within one interval of going online), and IsAlive immediately whenever
// LooksAlive fails. Both schedules run from one sweep per interval and
// check for the whole monitor (one ticker, however many groups and
// resources). The LooksAlive of a resource.InstantChecker and the IsAlive
// of a resource.InstantIsAliveChecker are called inline from the sweep,
// under the same watchdog as any check: one that overruns its timeout is
// left behind and the sweep goes on. Any other check is posted to the
// resource's poller, which runs it on a goroutine started for it and gone
// once nothing is left to do (an online resource has no standing
// goroutine); so is an instant check that finds the resource busy (the two
// sweeps coincide every IsAliveInterval): it is deferred, never skipped. A
// resource that pushes failures (resource.FailureReporter) is failed the
// moment it reports. A check still running when polling stops (the
// resource goes offline) stays bounded by its timeout and the deadlock
// timeout.
//
// A failed IsAlive, a pushed failure, or a failed or timed-out Online marks
// the resource Failed and terminates it (a timed-out or superseded Online or
// Offline is terminated while it still hangs, to cut it short). A call
// still running past the deadlock timeout is abandoned; if the resource is
// a resource.ProcessKiller (a plugin-backed resource) its hosting process is
// killed, which makes the call return. (A plugin proxy's calls return at
// their deadline whatever the plugin does: the monitor runs its Online and
// Offline on the operation's own goroutine, ends them through their
// context, and leaves the watch for a hung call to the plugin side, which
// reports it and gets its process killed. A thousand Onlines in flight
// then hold a thousand goroutines, not two thousand.) Then the restart policy
// (policy.Restart) decides: restart after the delay, or fail the group. A
// failure marked resource.Collateral (the shared host was killed for
// another resource) is restarted without counting against the threshold.
// While a resource is down, the resources that depend on it are taken
// offline first and brought back after it is restarted.
//
// # States and stopping
//
// Resources and groups go through resource.State: Offline, OnlinePending,
// Online, OfflinePending, Failed, and StopFailed. Stopping a resource means
// Offline, then Terminate if Offline fails, then, if Terminate fails,
// killing its hosting process (resource.ProcessKiller) and Terminate again on
// the relaunched host: what the dead process held (an address bound to an
// interface) outlives it. A Terminate that failed with a
// resource.Collateral error never reached a live hosting process (a plugin
// still being relaunched after a crash): it is tried again without
// killing anything, since the kill would take down the fresh process and
// every other resource in it. Only a Terminate that succeeds makes a resource
// surely down. Otherwise it may still run here: it is StopFailed,
// its group is StopFailed and never reported Offline, Offline returns an
// error wrapping [ErrStopFailed] and an [EventStopFailed] is published. A
// later Offline, [Monitor.Fence] or Close tries the stop again.
//
// # Failure
//
// A group fails here when the restart policy gives up. It is then taken
// offline, and only when every resource is stopped is the failure
// published: [EventGroupFailed], and a [GroupStatus] with Failed set,
// State Failed ([GroupStatus.FailedAndStopped]) and the failure's error
// Class. Classes follow one rule (package resource): the outermost
// classified error wins, and an unclassified one is transient; every
// failure the monitor reports is classified, so errors.Is with
// resource.ErrTransient, ErrNodeLocal and ErrConfiguration agrees with
// resource.ClassOf. A node-local failure bans this node, a configuration
// failure every node: that is the cluster layer's decision (Event.Failover
// says what the policy wants). Unless the group is managed, this node
// tries it again after the policy's RetryPeriod.
//
// # Requests
//
// [Monitor.Online], [Monitor.Offline] and [Monitor.Clear] (or [Monitor.Do],
// which also returns the request's generation) wait for their outcome. A
// later request supersedes an earlier one: Offline cancels a pending
// Online, whose caller gets [ErrSuperseded]; Offline also cancels pending
// restarts and the retry after a failure for good. Clear resets the failed
// flag and restart counts and changes nothing else. [Monitor.RemoveGroup]
// and [Monitor.Close] deliver the stop whatever their ctx says and honour
// ctx while waiting: when it ends they fence what is left and return.
//
// # The cluster layer's API
//
//   - [Monitor.Watch]: a lossless, level-triggered view. Next returns the
//     latest [GroupStatus] of each group that changed, coalesced, never
//     dropping the latest. Statuses and events carry a Seq from one
//     counter; events ([Monitor.Subscribe]) stay lossy, for logs.
//   - Generations: each request gets the group's next generation, returned
//     by Do, Fence, Probe and UpdateGroup and shown in
//     GroupStatus.Generation, so a caller can tell which request a state
//     answers.
//   - Managed mode ([Config].Managed, [GroupSpec].Managed): no local retry
//     after a failure; where a failed group goes is the caller's decision.
//   - [Monitor.Fence]: every resource terminated at once, in parallel,
//     escalating to the host kill, bounded by the deadlock timeouts;
//     [FenceResult].Down says whether everything is surely down.
//   - [Monitor.Probe]: on adoption (a node starting, or restarting after a
//     crash), ask each resource whether it already runs here
//     (resource.Prober, else IsAlive); a group found running is adopted as
//     Online instead of started twice.
//   - [Monitor.UpdateGroup]: restart policy, timing and Managed change
//     live; a change of the resource set is refused
//     ([ErrResourceSetChanged]): take the group offline, remove and add it.
//
// # Restart history
//
// The monitor keeps, per resource and locally, the restart history the
// restart policy counts (restarts within RestartPeriod) and the restart
// count shown in ResourceStatus: both describe this node and are reset by
// Clear and by Online of a failed group. ResourceStatus also carries
// counters that are never reset (RestartsTotal, Failures,
// FailuresPushed), for metrics that must not miss what a burst of events
// made a subscriber drop. Failover history (how often a
// group moved within FailoverPeriod, policy.Failover) and the ban of a
// node after a node-local or configuration failure belong to the cluster
// layer, which sees every node; the monitor never counts failovers.
//
// Events ([Event]) reach subscribers through bounded buffers: a slow
// subscriber loses events (counted and reported to it with EventsDropped)
// and never blocks the monitor; the status ([Monitor.Watch]) is the
// level-triggered view that loses nothing. [Monitor.Status] is a snapshot of every
// group and resource. [Monitor.Close] takes everything offline in order and
// waits for every goroutine it started.
package monitor
