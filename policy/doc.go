// Package policy holds the pure decisions of sft: restart in place, fail
// over, fail back, which node owns a group, and how often and how long the
// monitor calls a resource.
//
// Everything here is a value with a Validate method and WithDefaults (timing
// is resource.Timing, sft's one timing type: [ResolveTiming] and
// [ValidateTiming] do the same for it, and derive unset values from the
// final ones), and every decision is a pure function of its inputs: no goroutines, no clock
// reads (the current time is passed in), no I/O. A [Decision] carries the
// action, the delay before it, and a reason a person can read, so the monitor
// and the cluster can log why they did what they did.
//
// Placement ([Cluster.Place], [Cluster.PlaceAll]) decides which node runs
// each group, with a reason per node (Nomad's AllocMetric in small): a group
// stays on a healthy owner; when the owner is lost or the group failed there,
// it goes to the next node by preference among its possible owners, then to
// the least loaded; before preference and load, it avoids nodes that host
// groups of a shared anti-affinity class (fewest such groups first, so a
// class spreads even when it cannot avoid sharing); failovers are throttled
// by Failover (past the threshold the group stays offline, with the reason);
// it fails back or rebalances per Failback only to a node that came up
// after the group moved and has been up for the group's StablePeriod since.
// Witnesses, down nodes, nodes in maintenance,
// non-possible owners and banned nodes never receive a group.
//
// The knobs are named after their failover-cluster counterparts:
//
//	sft                          WSFC
//	Restart.Action               RestartAction (0 don't restart, 1 restart no failover, 2 restart then fail over)
//	Restart.Threshold / Period   RestartThreshold / RestartPeriod
//	Restart.Delay                RestartDelay
//	Restart.RetryPeriod          RetryPeriodOnFailure
//	Failover.Threshold / Period  FailoverThreshold / FailoverPeriod
//	Failback                     AutoFailbackType, FailbackWindowStart / End
//	Owners.Preferred / Possible  preferred owners / possible owners
//	Group.AntiAffinity           AntiAffinityClassNames
//	Timing                       LooksAlivePollInterval, IsAlivePollInterval, PendingTimeout, DeadlockTimeout
package policy
