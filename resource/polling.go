package resource

// PollScheduler is implemented by a resource whose health checks run
// somewhere other than in the monitor's calls: a plugin proxy whose plugin
// process runs the LooksAlive sweep next to the resource and pushes state
// changes. The monitor calls SetPollSchedule with the resource's final
// timing (group and resource configuration merged with the type's defaults
// and package policy's, every field set) before the resource's first Online,
// and again whenever the resource's timing changes (a spec update). The
// resource must then check itself at those intervals and within that call
// timeout. SetPollSchedule must not block.
type PollScheduler interface {
	SetPollSchedule(t Timing)
}
