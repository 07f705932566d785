package policy

import (
	"errors"
	"time"

	"github.com/sftkit/sft/resource"
)

// Default timing (DESIGN.md): faster than WSFC's 5 s / 60 s polls, like
// keepalived's 1 s script and Pacemaker's 10 s monitor.
const (
	DefaultLooksAliveInterval = time.Second
	DefaultIsAliveInterval    = 10 * time.Second
	DefaultCallTimeout        = 2 * time.Second
	DefaultPendingTimeout     = 60 * time.Second
)

// Timing says how often and how long the monitor calls a resource.
type Timing struct {
	// LooksAliveInterval: default 1 s.
	LooksAliveInterval time.Duration `json:"looks_alive_interval,omitempty" yaml:"looks_alive_interval,omitempty"`
	// IsAliveInterval: default 10 s.
	IsAliveInterval time.Duration `json:"is_alive_interval,omitempty" yaml:"is_alive_interval,omitempty"`
	// CallTimeout bounds LooksAlive and IsAlive: default 2 s.
	CallTimeout time.Duration `json:"call_timeout,omitempty" yaml:"call_timeout,omitempty"`
	// PendingTimeout bounds Online and Offline, and the gap between two
	// progress reports: default 60 s.
	PendingTimeout time.Duration `json:"pending_timeout,omitempty" yaml:"pending_timeout,omitempty"`
	// DeadlockTimeout: a LooksAlive or IsAlive call still running this
	// long after it started is deadlocked; an Online or Offline call is
	// deadlocked when it runs DeadlockTimeout-CallTimeout past its pending
	// deadline. The monitor then abandons it and kills the hosting process
	// (resource.ProcessKiller). Default 2 x CallTimeout.
	DeadlockTimeout time.Duration `json:"deadlock_timeout,omitempty" yaml:"deadlock_timeout,omitempty"`
}

// DefaultTiming returns the defaults.
func DefaultTiming() Timing { return Timing{}.WithDefaults() }

// WithDefaults fills zero fields from the hints, in order (a resource type's
// resource.Timing, say), then from the defaults.
func (t Timing) WithDefaults(hints ...resource.Timing) Timing {
	fill := func(dst *time.Duration, vals ...time.Duration) {
		for _, v := range vals {
			if *dst != 0 {
				return
			}
			*dst = v
		}
	}
	for _, h := range hints {
		fill(&t.LooksAliveInterval, h.LooksAliveInterval)
		fill(&t.IsAliveInterval, h.IsAliveInterval)
		fill(&t.CallTimeout, h.CallTimeout)
		fill(&t.PendingTimeout, h.PendingTimeout)
		fill(&t.DeadlockTimeout, h.DeadlockTimeout)
	}
	fill(&t.LooksAliveInterval, DefaultLooksAliveInterval)
	fill(&t.IsAliveInterval, DefaultIsAliveInterval)
	fill(&t.CallTimeout, DefaultCallTimeout)
	fill(&t.PendingTimeout, DefaultPendingTimeout)
	fill(&t.DeadlockTimeout, 2*t.CallTimeout)
	return t
}

// Validate checks t after defaults are applied: all positive, and the
// deadlock timeout longer than the call timeout.
func (t Timing) Validate() error {
	d := t.WithDefaults()
	var errs []error
	for _, f := range []struct {
		name string
		v    time.Duration
	}{
		{"looks_alive_interval", t.LooksAliveInterval},
		{"is_alive_interval", t.IsAliveInterval},
		{"call_timeout", t.CallTimeout},
		{"pending_timeout", t.PendingTimeout},
		{"deadlock_timeout", t.DeadlockTimeout},
	} {
		if f.v < 0 {
			errs = append(errs, errField(f.name, f.v, "must not be negative"))
		}
	}
	if d.DeadlockTimeout > 0 && d.CallTimeout > 0 && d.DeadlockTimeout <= d.CallTimeout {
		errs = append(errs, errField("deadlock_timeout", d.DeadlockTimeout, "must be longer than call_timeout (%s)", d.CallTimeout))
	}
	return errors.Join(errs...)
}

// Resource returns t as a resource.Timing.
func (t Timing) Resource() resource.Timing { return resource.Timing(t) }

// DeadlockGrace is how long a call may run past its own deadline before it
// counts as deadlocked: DeadlockTimeout - CallTimeout.
func (t Timing) DeadlockGrace() time.Duration {
	t = t.WithDefaults()
	return t.DeadlockTimeout - t.CallTimeout
}
