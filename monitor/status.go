package monitor

import (
	"slices"
	"time"

	"github.com/sftkit/sft/resource"
)

// Status is a snapshot of every group on this monitor.
type Status struct {
	Groups []GroupStatus `json:"groups"`
}

// GroupStatus is a snapshot of one group: the level-triggered view a
// cluster layer places groups by (see Watch).
type GroupStatus struct {
	Name string `json:"name"`
	// Seq orders snapshots: it is taken from one counter for the whole
	// monitor and grows with every change of any group, so of two
	// snapshots of a group the larger Seq is the newer.
	Seq uint64 `json:"seq"`
	// Generation is the generation of the latest request the group
	// accepted (Online, Offline, Clear, Fence, Probe, UpdateGroup: each
	// gets the next number, returned to its caller). State answers that
	// request or a later one.
	Generation uint64         `json:"generation"`
	State      resource.State `json:"state"`
	// Target is what the group is being brought to: Online or Offline.
	Target resource.State `json:"target"`
	// Failed is set while the group is failed here; Reason says why and
	// Class is the failure's error class (transient, node-local,
	// configuration). State is Failed once everything is stopped (see
	// FailedAndStopped), OfflinePending before, StopFailed if a resource
	// could not be stopped.
	Failed bool   `json:"failed"`
	Reason string `json:"reason,omitempty"`
	Class  string `json:"class,omitempty"`
	// Managed: no local retry after a failure (Config.Managed,
	// GroupSpec.Managed).
	Managed bool `json:"managed,omitempty"`
	// RetryAt is when a failed group is retried here (zero: never).
	RetryAt time.Time `json:"retry_at,omitzero"`
	// Removed is set on the last status a Watch yields for a group that
	// was removed.
	Removed   bool             `json:"removed,omitempty"`
	Resources []ResourceStatus `json:"resources"`
}

// FailedAndStopped reports the fact a cluster acts on: the group failed
// here and every resource is surely down (none stop-failed, nothing in
// flight). Class says where it may run next.
func (g GroupStatus) FailedAndStopped() bool { return g.Failed && g.State == resource.StateFailed }

// ResourceStatus is a snapshot of one resource.
type ResourceStatus struct {
	Name      string         `json:"name"`
	Type      string         `json:"type,omitempty"`
	State     resource.State `json:"state"`
	DependsOn []string       `json:"depends_on,omitempty"`
	// Restarts counts restarts by policy since the monitor started (or
	// the group was cleared).
	Restarts int `json:"restarts"`
	// LastFailure is the reason of the latest failure, if any.
	LastFailure     string    `json:"last_failure,omitempty"`
	LastFailureTime time.Time `json:"last_failure_time,omitzero"`
	// RestartPending is set while a restart waits for its delay.
	RestartPending bool `json:"restart_pending,omitempty"`
	// Counters since the monitor started, never reset (Clear included):
	// restarts by policy, entries into Failed, and the failures among them
	// that the resource reported itself (resource.FailureReporter). They
	// are level-triggered like the rest of the status, so metrics read
	// from it count every failure however many events a subscriber missed
	// in a burst (a plugin crash with thousands of resources).
	RestartsTotal  uint64 `json:"restarts_total"`
	Failures       uint64 `json:"failures_total"`
	FailuresPushed uint64 `json:"failures_pushed_total"`
}

// Resource returns the status of the named resource.
func (g GroupStatus) Resource(name string) (ResourceStatus, bool) {
	for _, r := range g.Resources {
		if r.Name == name {
			return r, true
		}
	}
	return ResourceStatus{}, false
}

// equal compares everything but Seq.
func (g GroupStatus) equal(o GroupStatus) bool {
	return g.Name == o.Name && g.Generation == o.Generation && g.State == o.State && g.Target == o.Target &&
		g.Failed == o.Failed && g.Reason == o.Reason && g.Class == o.Class && g.Managed == o.Managed &&
		g.RetryAt.Equal(o.RetryAt) && g.Removed == o.Removed &&
		slices.EqualFunc(g.Resources, o.Resources, ResourceStatus.equal)
}

func (x ResourceStatus) equal(y ResourceStatus) bool {
	return x.Name == y.Name && x.Type == y.Type && x.State == y.State && slices.Equal(x.DependsOn, y.DependsOn) &&
		x.Restarts == y.Restarts && x.LastFailure == y.LastFailure && x.LastFailureTime.Equal(y.LastFailureTime) &&
		x.RestartPending == y.RestartPending && x.RestartsTotal == y.RestartsTotal && x.Failures == y.Failures &&
		x.FailuresPushed == y.FailuresPushed
}

// FenceResult is what Fence found.
type FenceResult struct {
	// Generation of the fence request.
	Generation uint64 `json:"generation"`
	// Down is true when every resource is surely down.
	Down bool `json:"down"`
	// StopFailed names the resources that may still be running.
	StopFailed []string `json:"stop_failed,omitempty"`
}

// ProbeResult is what Probe found.
type ProbeResult struct {
	// Generation of the probe request.
	Generation uint64 `json:"generation"`
	// Running, NotRunning: the resources found up here, and surely not.
	Running    []string `json:"running,omitempty"`
	NotRunning []string `json:"not_running,omitempty"`
	// Unknown: the probe could not tell; the resource was terminated.
	Unknown []string `json:"unknown,omitempty"`
	// Adopted: something was running, so the group was adopted with
	// target Online (the resources found running were not started again).
	Adopted bool `json:"adopted"`
}
