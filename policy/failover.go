package policy

import (
	"errors"
	"fmt"
	"time"
)

// DefaultFailoverPeriod is WSFC's FailoverPeriod default.
const DefaultFailoverPeriod = 6 * time.Hour

// Failover limits how often a group may fail over within a period, so a
// group that fails everywhere does not bounce between nodes forever.
type Failover struct {
	// Threshold: failovers allowed within Period; 0 means nodes - 1
	// (WSFC's default: every other node gets one chance).
	Threshold int `json:"threshold,omitempty" yaml:"threshold,omitempty"`
	// Period: default 6 h.
	Period time.Duration `json:"period,omitempty" yaml:"period,omitempty"`
}

// WithDefaults returns f with zero fields set for a cluster of nodes nodes.
func (f Failover) WithDefaults(nodes int) Failover {
	if f.Threshold == 0 {
		f.Threshold = max(nodes-1, 1)
	}
	if f.Period == 0 {
		f.Period = DefaultFailoverPeriod
	}
	return f
}

// Validate checks f.
func (f Failover) Validate() error {
	var errs []error
	if f.Threshold < 0 {
		errs = append(errs, errField("threshold", f.Threshold, "must not be negative"))
	}
	if f.Period < 0 {
		errs = append(errs, errField("period", f.Period, "must not be negative"))
	}
	return errors.Join(errs...)
}

// Decide says whether a group that failed at now may fail over, given the
// times of its earlier failovers and the number of nodes. ActionFailover
// allows it; ActionStayFailed refuses it with the reason.
func (f Failover) Decide(now time.Time, failovers History, nodes int) Decision {
	f = f.WithDefaults(nodes)
	n := failovers.Within(now, f.Period)
	if n >= f.Threshold {
		return Decision{
			Action: ActionStayFailed,
			Reason: fmt.Sprintf("failover threshold reached: %d failovers within %s (threshold %d)", n, f.Period, f.Threshold),
		}
	}
	return Decision{
		Action: ActionFailover,
		Reason: fmt.Sprintf("failover %d of %d within %s", n+1, f.Threshold, f.Period),
	}
}
