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
	// Logger receives the instance's logs. Nil means discard. The caller
	// names the instance in it (the example host adds group, resource
	// and type; the plugin server resource and type): a type adds only
	// attributes of its own, or its lines carry the keys twice.
	Logger *slog.Logger
}

// Log returns r.Logger, or a logger that discards everything.
func (r OpenRequest) Log() *slog.Logger {
	if r.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return r.Logger
}

// Timing says how often and how long the monitor calls a resource. It is
// the one timing type of sft: a resource's configuration, a type's
// suggestion (TimingProvider) and the final, resolved timing the monitor
// runs with (policy.ResolveTiming, handed to a PollScheduler) all use it.
// A zero field means "not set": resolution fills it from the next layer
// (type suggestion, then package policy's defaults) or derives it from the
// final values of the others (DeadlockTimeout from CallTimeout).
type Timing struct {
	// LooksAliveInterval: how often LooksAlive runs. Default 1 s.
	LooksAliveInterval time.Duration `json:"looks_alive_interval,omitempty" yaml:"looks_alive_interval,omitempty"`
	// IsAliveInterval: how often IsAlive runs. Default 10 s.
	IsAliveInterval time.Duration `json:"is_alive_interval,omitempty" yaml:"is_alive_interval,omitempty"`
	// CallTimeout bounds LooksAlive, IsAlive and Terminate. Default 2 s.
	CallTimeout time.Duration `json:"call_timeout,omitempty" yaml:"call_timeout,omitempty"`
	// PendingTimeout bounds Online and Offline, and the gap between two
	// progress reports. Default 60 s.
	PendingTimeout time.Duration `json:"pending_timeout,omitempty" yaml:"pending_timeout,omitempty"`
	// DeadlockTimeout: a call still running this long after it started
	// (for Online and Offline: DeadlockTimeout-CallTimeout past their
	// pending deadline) is abandoned and the hosting process killed
	// (ProcessKiller). Must be longer than CallTimeout. Default 2 x the final
	// CallTimeout.
	DeadlockTimeout time.Duration `json:"deadlock_timeout,omitempty" yaml:"deadlock_timeout,omitempty"`
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
	// Terminate follows a reported failure, and may run before fn has
	// returned (a plugin calls it right away, on another goroutine): do
	// not hold a lock Terminate needs while calling fn.
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

// InstantIsAliveChecker is InstantChecker for IsAlive: a resource whose
// thorough check, too, answers from memory at the moment (a plugin proxy
// answering from the plugin's last IsAlive result, a program with no
// health check configured) says so, and the monitor calls IsAlive inline
// from one sweep per interval instead of waking a goroutine per resource.
// IsAliveInstant is asked before every sweep call; false makes the
// monitor use its ordinary call for that round.
type InstantIsAliveChecker interface {
	IsAliveInstant() bool
}

// Closer is implemented by a resource that holds something between Open and
// the end of its life (a netlink subscription, a plugin-side instance). The
// monitor calls Close once, after the final Offline or Terminate.
type Closer interface {
	Close() error
}

// ProcessKiller is implemented by a resource that runs in a process of its own
// (a plugin). When a call outlives the deadlock timeout, or Terminate fails,
// the monitor calls KillProcess, which must kill the hosting process (and its
// process group) without waiting on the hung call. The host relaunches it;
// the monitor then calls Terminate again, so that the relaunched process
// cleans up what the dead one held (an address outlives its process), and
// counts the resource as down only if that Terminate succeeds. A Terminate
// that failed with a Collateral error never reached a live hosting process
// (it was being relaunched): the monitor calls Terminate again without
// killing anything.
type ProcessKiller interface {
	KillProcess(reason string) error
}

// Contained is implemented by a resource whose every trace on the machine
// is a process in one cgroup v2 group (an application under cgroup
// containment). CgroupDir returns the group's absolute directory, "" when
// the resource has none. Once the process hosting the resource (a plugin)
// is dead and that group is killed and empty, nothing of the resource is
// left, so its host answers Terminate itself after a crash instead of
// relaunching the plugin to let the resource clean up.
type Contained interface {
	CgroupDir() string
}

// Prober is implemented by a resource that can tell whether it is already
// up on this node without having been brought online by this process: a
// leftover address, a unit still running after the host restarted. The
// monitor probes a group it adopts (monitor.AddGroup with Probe set) before
// deciding anything, as WSFC and Pacemaker probe on start. Probe returns
// (true, nil) when the resource runs here, (false, nil) when it surely does
// not, and an error when it cannot tell (the monitor then treats it as
// possibly running and terminates it before any Online).
//
// A resource that is not a Prober is probed with IsAlive: nil means up. That
// is right for a resource whose IsAlive looks at the system (is the address
// bound, is the unit active) and wrong for one that answers from its own
// memory, which says "down" before its first Online; such a resource must
// implement Prober to be adopted.
type Prober interface {
	Probe(ctx context.Context) (running bool, err error)
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
