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

// Timing is resource.Timing: one type for a resource's configuration, a
// type's suggestion and the resolved timing. This package holds its
// defaults, resolution (ResolveTiming), validation (ValidateTiming) and
// derived values (DeadlockGrace).
type Timing = resource.Timing

// DefaultTiming returns the defaults, resolved.
func DefaultTiming() Timing { return ResolveTiming(Timing{}) }

// ResolveTiming returns the final timing: every field set. Each field of t
// that is set is final. Unset fields come from the hints, in order (a
// resource type's suggestion, say), then from the defaults, except
// DeadlockTimeout, which is derived from the final CallTimeout: a hinted
// DeadlockTimeout is taken only when it is longer than the final
// CallTimeout (a type's hint was made for its own call timeout; a larger
// one the user configured makes it meaningless), otherwise it is
// 2 x CallTimeout. ResolveTiming is idempotent.
func ResolveTiming(t Timing, hints ...Timing) Timing {
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
	}
	fill(&t.LooksAliveInterval, DefaultLooksAliveInterval)
	fill(&t.IsAliveInterval, DefaultIsAliveInterval)
	fill(&t.CallTimeout, DefaultCallTimeout)
	fill(&t.PendingTimeout, DefaultPendingTimeout)
	if t.DeadlockTimeout == 0 {
		for _, h := range hints {
			if h.DeadlockTimeout > t.CallTimeout {
				t.DeadlockTimeout = h.DeadlockTimeout
				break
			}
		}
	}
	fill(&t.DeadlockTimeout, 2*t.CallTimeout)
	return t
}

// ValidateTiming checks t, a configuration (unset fields allowed): nothing
// negative, and a DeadlockTimeout that is set must be longer than the
// CallTimeout (t's own, else the default). Errors name the field.
func ValidateTiming(t Timing) error {
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
	d := ResolveTiming(t)
	if t.DeadlockTimeout > 0 && d.CallTimeout > 0 && d.DeadlockTimeout <= d.CallTimeout {
		errs = append(errs, errField("deadlock_timeout", d.DeadlockTimeout, "must be longer than call_timeout (%s)", d.CallTimeout))
	}
	return errors.Join(errs...)
}

// DeadlockGrace is how long a call may run past its own deadline before it
// counts as deadlocked: DeadlockTimeout - CallTimeout of the resolved t.
func DeadlockGrace(t Timing) time.Duration {
	t = ResolveTiming(t)
	return t.DeadlockTimeout - t.CallTimeout
}
