package policy

import (
	"errors"
	"fmt"
	"time"

	"github.com/sftkit/sft/resource"
)

// RestartAction is what happens when a resource fails, like WSFC's
// RestartAction.
type RestartAction int

const (
	// RestartDefault (the zero value) means RestartThenFailover.
	RestartDefault RestartAction = iota
	// NoRestart leaves a failed resource failed (and its group with it).
	NoRestart
	// RestartNoFailover restarts in place up to the threshold, then leaves
	// the resource failed on this node.
	RestartNoFailover
	// RestartThenFailover restarts in place up to the threshold, then fails
	// the group over to another node.
	RestartThenFailover
)

var restartActionNames = map[RestartAction]string{
	RestartDefault:      "default",
	NoRestart:           "no-restart",
	RestartNoFailover:   "restart-no-failover",
	RestartThenFailover: "restart-then-failover",
}

func (a RestartAction) String() string {
	if s, ok := restartActionNames[a]; ok {
		return s
	}
	return fmt.Sprintf("RestartAction(%d)", int(a))
}

// ParseRestartAction is the inverse of String ("" is RestartDefault).
func ParseRestartAction(s string) (RestartAction, error) {
	if s == "" {
		return RestartDefault, nil
	}
	for a, n := range restartActionNames {
		if n == s {
			return a, nil
		}
	}
	return 0, errField("action", s, "unknown restart action (want no-restart, restart-no-failover or restart-then-failover)")
}

// MarshalText implements encoding.TextMarshaler.
func (a RestartAction) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (a *RestartAction) UnmarshalText(b []byte) error {
	v, err := ParseRestartAction(string(b))
	if err != nil {
		return err
	}
	*a = v
	return nil
}

// Defaults of Restart (see DESIGN.md: WSFC's 15 min and 500 ms, a threshold of 3
// between WSFC's 1 and systemd's 5).
const (
	DefaultRestartThreshold     = 3
	DefaultRestartPeriod        = 15 * time.Minute
	DefaultRestartDelay         = 500 * time.Millisecond
	DefaultRetryPeriodOnFailure = time.Hour
)

// Restart is a resource's restart policy: how often it may be restarted in
// place within a period before the failure escalates.
type Restart struct {
	// Action: default RestartThenFailover.
	Action RestartAction `json:"action,omitempty" yaml:"action,omitempty"`
	// Threshold: restarts allowed within Period; default 3. The failure
	// that would be restart number Threshold+1 escalates.
	Threshold int `json:"threshold,omitempty" yaml:"threshold,omitempty"`
	// Period: the window in which restarts are counted; default 15 min.
	// Older restarts are forgotten.
	Period time.Duration `json:"period,omitempty" yaml:"period,omitempty"`
	// Delay before a restart; default 500 ms. Negative means none
	// (WithDefaults keeps it negative; Decide restarts at once).
	Delay time.Duration `json:"delay,omitempty" yaml:"delay,omitempty"`
	// RetryPeriod: after a resource was left failed, try it again here
	// after this long, with a fresh count; default 1 h. Negative: never.
	RetryPeriod time.Duration `json:"retry_period,omitempty" yaml:"retry_period,omitempty"`
}

// WithDefaults returns r with zero fields set to the defaults.
func (r Restart) WithDefaults() Restart {
	if r.Action == RestartDefault {
		r.Action = RestartThenFailover
	}
	if r.Threshold == 0 {
		r.Threshold = DefaultRestartThreshold
	}
	if r.Period == 0 {
		r.Period = DefaultRestartPeriod
	}
	if r.Delay == 0 {
		r.Delay = DefaultRestartDelay
	}
	// A negative Delay (none) stays negative so that WithDefaults is
	// idempotent; Decide turns it into 0.
	if r.RetryPeriod == 0 {
		r.RetryPeriod = DefaultRetryPeriodOnFailure
	}
	return r
}

// Validate checks r (zero fields are fine: they take defaults).
func (r Restart) Validate() error {
	var errs []error
	if _, ok := restartActionNames[r.Action]; !ok {
		errs = append(errs, errField("action", int(r.Action), "unknown restart action"))
	}
	if r.Threshold < 0 {
		errs = append(errs, errField("threshold", r.Threshold, "must not be negative"))
	}
	if r.Period < 0 {
		errs = append(errs, errField("period", r.Period, "must not be negative"))
	}
	return errors.Join(errs...)
}

// Decide says what to do about a resource that failed at now with err,
// given the times of its earlier restarts (restarts). The caller records a
// restart in its History when it acts on ActionRestart.
func (r Restart) Decide(now time.Time, restarts History, err error) Decision {
	r = r.WithDefaults()
	class := resource.ClassOf(err)
	giveUp := func(reason string) Decision {
		d := Decision{Action: ActionStayFailed, Reason: reason}
		if r.RetryPeriod > 0 && class != resource.ClassConfiguration {
			d.Delay = r.RetryPeriod
			d.Reason += fmt.Sprintf("; retry here in %s", r.RetryPeriod)
		}
		return d
	}
	switch class {
	case resource.ClassConfiguration:
		return giveUp("configuration error: not restarting anywhere until it is fixed")
	case resource.ClassNodeLocal:
		if r.Action == RestartThenFailover {
			return Decision{Action: ActionFailover, Reason: "this node cannot host the resource: failing the group over"}
		}
		return giveUp(fmt.Sprintf("this node cannot host the resource and the restart action is %s", r.Action))
	}
	if r.Action == NoRestart {
		return giveUp("restart action is no-restart")
	}
	n := restarts.Within(now, r.Period)
	if n < r.Threshold {
		return Decision{
			Action: ActionRestart,
			Delay:  max(r.Delay, 0),
			Reason: fmt.Sprintf("restart %d of %d within %s", n+1, r.Threshold, r.Period),
		}
	}
	reason := fmt.Sprintf("restart threshold reached: %d restarts within %s", n, r.Period)
	if r.Action == RestartThenFailover {
		return Decision{Action: ActionFailover, Reason: reason + ": failing the group over"}
	}
	return giveUp(reason + " and the restart action is restart-no-failover")
}
