package monitor

import (
	"time"

	"github.com/sftkit/sft/resource"
)

// Status is a snapshot of every group on this monitor.
type Status struct {
	Groups []GroupStatus `json:"groups"`
}

// GroupStatus is a snapshot of one group.
type GroupStatus struct {
	Name  string         `json:"name"`
	State resource.State `json:"state"`
	// Target is what the group is being brought to: Online or Offline.
	Target resource.State `json:"target"`
	// Failed is set while the group is failed here; Reason says why.
	Failed    bool             `json:"failed"`
	Reason    string           `json:"reason,omitempty"`
	Resources []ResourceStatus `json:"resources"`
}

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
