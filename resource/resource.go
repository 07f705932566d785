package resource

import (
	"context"
	"log/slog"
	"time"
)

// Resource is one instance of a resource type: a virtual IP, an application, a
// service. The monitor drives it; a resource never drives itself.
//
// Concurrency: the monitor serializes Online, Offline, LooksAlive and IsAlive
// on one resource. Terminate is the exception: it may be called at any time,
// also while another call is in flight (typically a hung Online), and must make
// that call return promptly.
//
// Every method must respect its context: return when ctx is done, with an error
// that wraps ctx.Err(). The monitor puts the pending timeout on Online and
// Offline and the call timeout on LooksAlive and IsAlive.
type Resource interface {
	// Online brings the resource up and returns when it is up (nil) or
	// cannot be brought up (an error, classified with Transient, NodeLocal
	// or Configuration; unclassified errors count as transient). A long
	// Online may call ReportProgress(ctx, ...) to extend its deadline.
	// On error the monitor calls Terminate, so Online need not clean up
	// everything itself, but it must not leave work running in the
	// background.
	Online(ctx context.Context) error

	// Offline takes the resource down gracefully. It is idempotent: Offline
	// of a resource that is already offline returns nil.
	Offline(ctx context.Context) error

	// LooksAlive is the cheap check, called often (every second by
	// default): it should answer from state the resource already holds and
	// take well under a millisecond. nil means it looks alive. A failure
	// makes the monitor call IsAlive at once to confirm.
	LooksAlive(ctx context.Context) error

	// IsAlive is the thorough check, called less often (every ten seconds
	// by default) and whenever LooksAlive fails. nil means alive; an error
	// marks the resource Failed.
	IsAlive(ctx context.Context) error

	// Terminate stops the resource immediately, without grace: kill the
	// process, remove the address, drop the lock. It may run concurrently
	// with any other method and must cancel in-flight work. It must leave
	// nothing behind and be idempotent; it is called in every state,
	// including before Online and after Offline.
	Terminate(ctx context.Context) error
}

// Type is a named kind of resource ("ipaddress", "genericapp", ...). It
// validates properties and opens instances: the Open entry point of a
// resource DLL.
type Type interface {
	// Name is the type's unique name in a Registry.
	Name() string

	// Validate checks properties without side effects. Errors are
	// configuration errors (see ConfigError) naming the property and the
	// bad value.
	Validate(ctx context.Context, props Properties) error

	// Open creates an instance. It validates the properties (as Validate)
	// and allocates what the instance needs, but does not bring it online.
	Open(ctx context.Context, req OpenRequest) (Resource, error)
}

// OpenRequest is what Type.Open gets.
type OpenRequest struct {
	// Name identifies the instance in logs and events ("web/vip").
	Name string
	// Properties configure the instance; see Properties.
	Properties Properties
	// Logger receives the instance's logs. Nil means discard.
	Logger *slog.Logger
}

// Log returns r.Logger, or a logger that discards everything.
func (r OpenRequest) Log() *slog.Logger {
	if r.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return r.Logger
}

// Timing is a type's suggestion for how often and how long the monitor
// calls its resources. Zero fields mean "no opinion": the monitor falls back
// to the group's configuration and then to the defaults in package policy.
type Timing struct {
	LooksAliveInterval time.Duration
	IsAliveInterval    time.Duration
	CallTimeout        time.Duration
	PendingTimeout     time.Duration
	DeadlockTimeout    time.Duration
}

// TimingProvider is implemented by a Type that has default timing (a
// service that takes long to start wants a longer pending timeout).
type TimingProvider interface {
	DefaultTiming() Timing
}

// FailureReporter is implemented by a resource that can tell a failure the
// moment it happens (a process exited, an address was removed, a link went
// down) instead of waiting for the next poll. Polling stays the safety net.
type FailureReporter interface {
	// SetFailureHandler installs fn; the resource calls fn(err) for each
	// failure it detects while online. fn never blocks. The monitor calls
	// SetFailureHandler once, before the first Online; nil removes it.
	SetFailureHandler(fn func(err error))
}

// InstantChecker is implemented by a resource whose LooksAlive can answer
// from state in memory: no I/O, no lock held across I/O, no blocking (a
// plugin proxy answering from the last result the plugin pushed, a process
// watched by a waiter, an address tracked by a netlink subscription). For
// such resources the monitor calls LooksAlive inline from one sweep per
// group and interval instead of waking a goroutine per resource, which is
// what makes polling thousands of resources every second cheap.
// LooksAliveInstant is asked before every sweep call; returning false (for
// example while the answer would need a remote call) makes the monitor use
// its ordinary call, with its timeout, for that round.
type InstantChecker interface {
	LooksAliveInstant() bool
}

// Closer is implemented by a resource that holds something between Open and
// the end of its life (a netlink subscription, a plugin-side instance). The
// monitor calls Close once, after the final Offline or Terminate.
type Closer interface {
	Close() error
}

// ProcessKiller is implemented by a resource that runs in a process of its own
// (a plugin). When a call outlives the deadlock timeout the monitor abandons
// the call and calls KillProcess, which must kill the hosting process (and its
// process group) without waiting on the hung call. The host relaunches it.
type ProcessKiller interface {
	KillProcess(reason string) error
}

type progressKey struct{}

// WithProgress returns a context whose ReportProgress calls fn. The monitor
// uses it to extend an Online or Offline deadline while the resource reports
// that it is still making progress.
func WithProgress(ctx context.Context, fn func(message string)) context.Context {
	return context.WithValue(ctx, progressKey{}, fn)
}

// ReportProgress tells whoever called Online or Offline that the resource is
// still making progress; the monitor then extends the pending deadline by
// another pending timeout. It is a no-op when nobody listens.
func ReportProgress(ctx context.Context, message string) {
	if fn, ok := ctx.Value(progressKey{}).(func(string)); ok && fn != nil {
		fn(message)
	}
}
