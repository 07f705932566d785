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
//	Timing                       LooksAlivePollInterval, IsAlivePollInterval, PendingTimeout, DeadlockTimeout
package policy
