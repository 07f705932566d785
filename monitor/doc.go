// Package monitor runs resources and groups on one node: the resource
// monitor of a failover cluster.
//
// A [Monitor] holds groups ([GroupSpec]): resources with dependencies (a
// DAG). Bringing a group online brings its resources online in dependency
// order, independent branches in parallel; taking it offline goes in
// reverse. Every call to a resource runs under a timeout: the pending
// timeout for Online and Offline (extended by resource.ReportProgress), the
// call timeout for LooksAlive and IsAlive. Calls to one resource are
// serialized, except Terminate.
//
// Once a resource is online its health is polled: LooksAlive at once and
// then every LooksAliveInterval, IsAlive every IsAliveInterval, and IsAlive
// immediately whenever LooksAlive fails. A resource that pushes failures
// (resource.FailureReporter) is failed the moment it reports.
//
// A failed IsAlive, a pushed failure, or a failed or timed-out Online marks
// the resource Failed and calls Terminate (a timed-out Online or Offline is
// terminated while it still hangs, to cut it short). A call still running
// past the deadlock timeout is abandoned; if the resource is a
// resource.ProcessKiller (a plugin-backed resource) its hosting process is
// killed, which makes the call return. Then the restart policy
// (policy.Restart) decides: restart after the delay, or fail the group.
// While a resource is down, the resources that depend on it are taken
// offline first and brought back after it is restarted.
//
// A failed group is taken offline here and reported with an
// EventGroupFailed; whether it moves to another node is the cluster
// layer's decision (Event.Failover says what the policy wants).
//
// Events ([Event]) reach subscribers ([Monitor.Subscribe]) through bounded
// buffers: a slow subscriber loses events (counted and reported to it with
// EventsDropped) and never blocks the monitor. [Monitor.Status] is a
// snapshot of every group and resource. [Monitor.Close] takes everything
// offline in order and waits for every goroutine it started.
package monitor
