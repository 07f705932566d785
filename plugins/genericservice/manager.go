package genericservice

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
)

// Manager is an OS service manager: what the generic service drives. The
// Linux production backend is systemd over D-Bus ([NewSystemd]); other
// managers plug in through [Config.Managers]. A Manager is shared by every
// resource of a [Type] that names it and must be safe for concurrent use.
type Manager interface {
	// Start starts unit and returns when the manager has finished the start
	// job: nil when the job succeeded (for systemd: job result "done"),
	// an error wrapping [ErrNoSuchUnit] for a unit the manager does not
	// know or [ErrBadUnit] for one it cannot use (masked, bad settings),
	// a *JobError otherwise. It does not wait for anything beyond
	// the job (a readiness check is the resource's business).
	Start(ctx context.Context, unit string) error

	// Stop stops unit, returns when the stop job is finished and clears a
	// failed state, so that the unit ends inactive. Stopping a stopped unit
	// is not an error.
	Stop(ctx context.Context, unit string) error

	// Kill sends SIGKILL to every process of unit at once, then stops it
	// and clears its failed state. Killing a unit without processes is
	// not an error.
	Kill(ctx context.Context, unit string) error

	// Status asks the manager for unit's state now (for systemd, one D-Bus
	// round trip).
	Status(ctx context.Context, unit string) (Status, error)

	// Watch keeps unit's state in memory, updated from the manager's change
	// notifications, and calls fn with each new state. fn runs on the
	// manager's notification goroutine: it must not block or call the
	// Manager. Close the Watch to stop.
	Watch(ctx context.Context, unit string, fn func(Status)) (Watch, error)

	// Close releases the manager's connections. Watches end.
	Close() error
}

// Watch is a unit state kept current by a [Manager].
type Watch interface {
	// Status returns the latest state known, from memory.
	Status() Status
	// Close stops the watch. It is idempotent.
	Close()
}

// ManagerFactory makes a Manager. log is the type's logger; address is the
// resource's "address" property, empty for the backend's default. What the
// address means is the backend's business (systemd: the D-Bus address of
// its private socket).
type ManagerFactory func(log *slog.Logger, address string) (Manager, error)

// ActiveState is a unit's high-level state, as systemd names it.
type ActiveState string

// Active states (systemd.unit(5), "ActiveState").
const (
	StateActive       ActiveState = "active"
	StateReloading    ActiveState = "reloading"
	StateInactive     ActiveState = "inactive"
	StateFailed       ActiveState = "failed"
	StateActivating   ActiveState = "activating"
	StateDeactivating ActiveState = "deactivating"
	StateMaintenance  ActiveState = "maintenance"
	// StateUnknown: the state is not known (no answer yet, or the
	// connection to the manager was lost).
	StateUnknown ActiveState = ""
)

// Up reports whether the unit runs: active or reloading.
func (s ActiveState) Up() bool { return s == StateActive || s == StateReloading }

// Load states that matter (systemd "LoadState").
const (
	LoadLoaded   = "loaded"
	LoadNotFound = "not-found"
	LoadMasked   = "masked"
	LoadError    = "error"
	LoadBad      = "bad-setting"
)

// Status is a unit's state.
type Status struct {
	// Unit is the unit's name ("nginx.service").
	Unit string
	// Load is the load state: "loaded", "not-found", "masked", ...
	Load string
	// Active is the high-level state.
	Active ActiveState
	// Sub is the type-specific state ("running", "dead", "failed", ...).
	Sub string
}

func (s Status) String() string {
	a := string(s.Active)
	if a == "" {
		a = "unknown"
	}
	return fmt.Sprintf("%s %s (%s, %s)", s.Unit, a, s.Sub, s.Load)
}

// ErrNoSuchUnit is wrapped by errors about a unit the manager does not know.
var ErrNoSuchUnit = errors.New("no such unit")

// ErrBadUnit is wrapped by errors about a unit the manager knows but cannot
// use: masked, or failing to load (bad settings).
var ErrBadUnit = errors.New("unit cannot be used")

// ErrManagerClosed is returned by a Manager after Close or after its
// connection to the service manager was lost.
var ErrManagerClosed = errors.New("service manager connection closed")

// JobError is a start or stop job that did not succeed.
type JobError struct {
	Unit string
	// Job is "start" or "stop".
	Job string
	// Result is the manager's job result: for systemd "canceled",
	// "timeout", "failed", "dependency", "skipped", ...
	Result string
}

func (e *JobError) Error() string {
	return fmt.Sprintf("%s job for %s finished with result %q", e.Job, e.Unit, e.Result)
}
