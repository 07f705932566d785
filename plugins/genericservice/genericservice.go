package genericservice

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sftkit/sft/internal/health"
	"github.com/sftkit/sft/resource"
)

// TypeName is the name of the type in a resource.Registry.
const TypeName = "genericservice"

// DefaultManager is the manager property's default.
const DefaultManager = "systemd"

// Config configures the type. The zero value is ready to use.
type Config struct {
	// Managers maps values of the "manager" property to the factories of
	// their backends. Default: {"systemd": [SystemdFactory]}. A Manager is
	// made on the first Open that names it (with that address) and shared
	// by the type's resources until the last of them is closed.
	Managers map[string]ManagerFactory
	// Logger receives manager-level logs. Default: discard.
	Logger *slog.Logger
}

// Props are the properties of a generic service resource.
type Props struct {
	// Service is the unit to drive ("nginx" or "nginx.service";
	// "name@instance.service" for a template). Required.
	Service string `json:"service"`
	// Manager names the service manager backend. Default "systemd".
	Manager string `json:"manager,omitempty"`
	// Address is where the manager listens, if not at its default place.
	// For systemd: the D-Bus address of its private socket
	// ("unix:path=/run/systemd/private"); the client must be in systemd's
	// PID namespace. Default: as systemctl connects (see DialSystemd).
	Address string `json:"address,omitempty"`
	// StartTimeout bounds Online's start job and wait for the active
	// state, on top of the monitor's pending timeout. Default 0: only the
	// monitor's timeout applies.
	StartTimeout resource.Duration `json:"start_timeout,omitempty"`
	// StopTimeout bounds Offline's stop job, on top of the monitor's
	// pending timeout. Default 0: only the monitor's timeout applies.
	StopTimeout resource.Duration `json:"stop_timeout,omitempty"`
	// Readiness, if set, must pass before Online returns (tried every
	// readiness.interval until the pending timeout).
	Readiness *health.Config `json:"readiness,omitempty"`
	// Health, if set, is checked by IsAlive after the manager reports the
	// unit active.
	Health *health.Config `json:"health,omitempty"`
}

// Type is the generic service resource type.
type Type struct {
	cfg Config
	log *slog.Logger

	mu      sync.Mutex
	current map[managerKey]Manager // the one new resources get
	refs    map[Manager]int
	keys    map[Manager]managerKey
}

type managerKey struct{ name, address string }

// New returns the type with the default configuration (systemd over its
// default connection).
func New() resource.Type { return NewWithConfig(Config{}) }

// NewWithConfig returns the type configured by cfg.
func NewWithConfig(cfg Config) *Type {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Managers == nil {
		cfg.Managers = map[string]ManagerFactory{DefaultManager: SystemdFactory}
	}
	return &Type{cfg: cfg, log: log, current: make(map[managerKey]Manager),
		refs: make(map[Manager]int), keys: make(map[Manager]managerKey)}
}

// Name returns "genericservice".
func (t *Type) Name() string { return TypeName }

// DefaultTiming: services often take seconds to start; the monitor's own
// defaults otherwise.
func (t *Type) DefaultTiming() resource.Timing {
	return resource.Timing{PendingTimeout: 90 * time.Second}
}

// Validate checks the properties without side effects (apart from looking
// a check command up in PATH). It does not ask the manager whether the unit
// exists: Online does.
func (t *Type) Validate(ctx context.Context, props resource.Properties) error {
	_, err := t.parse(props)
	return err
}

type parsed struct {
	Props
	unit      string
	readiness *health.Check
	health    *health.Check
}

func (t *Type) parse(props resource.Properties) (*parsed, error) {
	var p parsed
	if err := props.Decode(&p.Props); err != nil {
		return nil, err
	}
	if _, ok := props["service"]; !ok {
		return nil, resource.ConfigError("service", nil, "required (the unit to drive, e.g. \"nginx.service\")")
	}
	unit, err := normalizeUnit(p.Service)
	if err != nil {
		return nil, resource.ConfigError("service", p.Service, "%v", err)
	}
	p.unit = unit
	if p.Manager == "" {
		p.Manager = DefaultManager
	}
	if _, ok := t.cfg.Managers[p.Manager]; !ok {
		return nil, resource.ConfigError("manager", p.Manager, "unknown service manager (known: %s)",
			strings.Join(slices.Sorted(maps.Keys(t.cfg.Managers)), ", "))
	}
	if p.Address != "" && (!strings.Contains(p.Address, ":") || strings.ContainsAny(p.Address, " \n\x00")) {
		return nil, resource.ConfigError("address", p.Address, "not an address (systemd: a D-Bus address like \"unix:path=/run/systemd/private\")")
	}
	if p.StartTimeout < 0 {
		return nil, resource.ConfigError("start_timeout", p.StartTimeout.D().String(), "must not be negative")
	}
	if p.StopTimeout < 0 {
		return nil, resource.ConfigError("stop_timeout", p.StopTimeout.D().String(), "must not be negative")
	}
	if p.Readiness != nil {
		if p.readiness, err = health.New("readiness", *p.Readiness); err != nil {
			return nil, err
		}
	}
	if p.Health != nil {
		if p.health, err = health.New("health", *p.Health); err != nil {
			return nil, err
		}
	}
	return &p, nil
}

// Open validates the properties, connects to the manager (shared by the
// type's resources) and starts watching the unit. It does not start it.
func (t *Type) Open(ctx context.Context, req resource.OpenRequest) (resource.Resource, error) {
	p, err := t.parse(req.Properties)
	if err != nil {
		return nil, err
	}
	m, err := t.acquire(p.key())
	if err != nil {
		return nil, resource.Transient(fmt.Errorf("manager %s: %w", p.Manager, err))
	}
	r := &service{
		t: t, p: p, m: m, log: req.Log().With("service", p.unit),
		changed:  make(chan struct{}, 1),
		inflight: make(map[*context.CancelFunc]struct{}),
	}
	r.watch, err = m.Watch(ctx, p.unit, r.onChange)
	if err != nil {
		t.release(m)
		return nil, resource.Transient(fmt.Errorf("watch %s: %w", p.unit, err))
	}
	return r, nil
}

func (p *parsed) key() managerKey { return managerKey{p.Manager, p.Address} }

// acquire returns the shared Manager for k, making it if needed.
func (t *Type) acquire(k managerKey) (Manager, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if m := t.current[k]; m != nil {
		t.refs[m]++
		return m, nil
	}
	m, err := t.cfg.Managers[k.name](t.log.With("manager", k.name, "address", k.address), k.address)
	if err != nil {
		return nil, err
	}
	t.current[k], t.refs[m], t.keys[m] = m, 1, k
	return m, nil
}

// reacquire replaces a Manager whose connection was lost: the next acquire
// makes a new one, and the caller's reference moves to it.
func (t *Type) reacquire(k managerKey, old Manager) (Manager, error) {
	t.mu.Lock()
	if t.current[k] == old {
		delete(t.current, k)
	}
	t.mu.Unlock()
	m, err := t.acquire(k)
	if err != nil {
		return nil, err
	}
	t.release(old)
	return m, nil
}

// release drops a reference to m and closes it with the last one.
func (t *Type) release(m Manager) error {
	t.mu.Lock()
	t.refs[m]--
	if t.refs[m] > 0 {
		t.mu.Unlock()
		return nil
	}
	k := t.keys[m]
	delete(t.refs, m)
	delete(t.keys, m)
	if t.current[k] == m {
		delete(t.current, k)
	}
	t.mu.Unlock()
	return m.Close()
}

// service is one generic service resource.
type service struct {
	t   *Type
	p   *parsed
	log *slog.Logger

	connMu sync.Mutex // guards m and watch (replaced after a lost connection)
	m      Manager
	watch  Watch

	// changed gets a token whenever the watched state changes.
	changed chan struct{}

	mu       sync.Mutex
	online   bool // Online succeeded and neither Offline nor Terminate began
	pushed   bool // a failure was pushed since the last Online
	onFail   func(error)
	inflight map[*context.CancelFunc]struct{}
	closed   bool
}

var (
	_ resource.Resource        = (*service)(nil)
	_ resource.FailureReporter = (*service)(nil)
	_ resource.Closer          = (*service)(nil)
)

func (r *service) SetFailureHandler(fn func(error)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.onFail = fn
}

// conn returns the current manager and watch.
func (r *service) conn() (Manager, Watch) {
	r.connMu.Lock()
	defer r.connMu.Unlock()
	return r.m, r.watch
}

// do runs fn with the manager; when the manager's connection turns out to
// be lost, it reconnects (a new shared Manager, a new watch) and runs fn
// once more.
func (r *service) do(ctx context.Context, fn func(Manager) error) error {
	r.connMu.Lock()
	werr := r.rewatchLocked(ctx)
	m := r.m
	r.connMu.Unlock()
	err := fn(m)
	if err == nil && werr != nil {
		err = werr
	}
	if !errors.Is(err, ErrManagerClosed) || ctx.Err() != nil {
		return err
	}
	if rerr := r.reconnect(ctx, m); rerr != nil {
		return errors.Join(err, rerr)
	}
	m, _ = r.conn()
	return fn(m)
}

func (r *service) reconnect(ctx context.Context, old Manager) error {
	r.connMu.Lock()
	defer r.connMu.Unlock()
	if r.m != old {
		return nil // done already
	}
	r.log.Warn("service manager connection lost, reconnecting")
	m, err := r.t.reacquire(r.p.key(), old)
	if err != nil {
		return fmt.Errorf("reconnect to %s: %w", r.p.Manager, err)
	}
	if r.watch != nil {
		r.watch.Close()
	}
	r.m, r.watch = m, nil
	return r.rewatchLocked(ctx)
}

// rewatchLocked starts a watch if there is none (a reconnect could not);
// r.connMu is held.
func (r *service) rewatchLocked(ctx context.Context) error {
	if r.watch != nil {
		return nil
	}
	w, err := r.m.Watch(ctx, r.p.unit, r.onChange)
	if err != nil {
		return fmt.Errorf("watch %s: %w", r.p.unit, err)
	}
	r.watch = w
	return nil
}

// onChange runs on the manager's notification goroutine.
func (r *service) onChange(st Status) {
	select {
	case r.changed <- struct{}{}:
	default:
	}
	if st.Active.Up() || st.Active == StateUnknown {
		// Unknown: the connection to the manager was lost, which says
		// nothing about the service. LooksAlive fails until IsAlive
		// reconnects and asks.
		return
	}
	r.mu.Lock()
	fn := r.onFail
	push := r.online && !r.pushed && fn != nil
	if push {
		r.pushed = true
	}
	r.mu.Unlock()
	if push {
		r.log.Warn("service left the active state", "state", st.Active, "sub", st.Sub)
		fn(resource.Transient(fmt.Errorf("service %s", st)))
	}
}

// track returns ctx, also canceled by Terminate.
func (r *service) track(ctx context.Context, timeout time.Duration) (context.Context, func()) {
	ctx, cancel := context.WithCancel(ctx)
	var tcancel context.CancelFunc = func() {}
	if timeout > 0 {
		ctx, tcancel = context.WithTimeout(ctx, timeout)
	}
	key := &cancel
	r.mu.Lock()
	r.inflight[key] = struct{}{}
	r.mu.Unlock()
	return ctx, func() {
		r.mu.Lock()
		delete(r.inflight, key)
		r.mu.Unlock()
		tcancel()
		cancel()
	}
}

func (r *service) setOffline() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.online = false
}

// Online starts the unit, waits for the start job and for the active state
// (as the watch sees it, so LooksAlive agrees at once), then for the
// readiness check if one is set.
func (r *service) Online(ctx context.Context) error {
	ctx, done := r.track(ctx, r.p.StartTimeout.D())
	defer done()
	r.setOffline()
	// No status query first: the start job itself says whether the unit
	// exists (NoSuchUnit) or can be used (masked, bad settings).
	if err := r.do(ctx, func(m Manager) error { return m.Start(ctx, r.p.unit) }); err != nil {
		if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
			// Terminate (or the deadline) ended the job: say so.
			return fmt.Errorf("online %s: %w (%v)", r.p.unit, cerr, err)
		}
		return r.classify("start", err)
	}
	m, watch := r.conn()
	if watch == nil {
		return resource.Transient(fmt.Errorf("online %s: not watching the unit (connection to %s lost)", r.p.unit, r.p.Manager))
	}
	// Wait until the watch sees the unit up: every signal older than that
	// one has then been applied, so what follows is a real change.
	for {
		st := watch.Status()
		if st.Active.Up() {
			break
		}
		if st.Active == StateFailed || st.Active == StateInactive {
			// The job is done, so this may be the stale state from
			// before the start: ask the manager.
			fresh, err := m.Status(ctx, r.p.unit)
			if err != nil {
				return r.classify("status", err)
			}
			if fresh.Active == StateFailed || fresh.Active == StateInactive {
				return resource.Transient(fmt.Errorf("service %s after its start job", fresh))
			}
		}
		select {
		case <-r.changed:
		case <-ctx.Done():
			return fmt.Errorf("online %s: waiting for the active state (now %s): %w", r.p.unit, st.Active, ctx.Err())
		}
	}
	if r.p.readiness != nil {
		err := health.Wait(ctx, r.p.readiness, r.p.readiness.Interval(), func(attempt int, err error) {
			if err != nil {
				resource.ReportProgress(ctx, fmt.Sprintf("readiness attempt %d: %v", attempt, err))
			}
		})
		if err != nil {
			return fmt.Errorf("online %s: readiness: %w", r.p.unit, err)
		}
		if st := watch.Status(); !st.Active.Up() {
			return resource.Transient(fmt.Errorf("service %s while waiting for readiness", st))
		}
	}
	r.mu.Lock()
	if err := ctx.Err(); err != nil {
		// Terminate ran (or the deadline passed) while we finished.
		r.mu.Unlock()
		return fmt.Errorf("online %s: %w", r.p.unit, err)
	}
	r.online, r.pushed = true, false
	r.mu.Unlock()
	r.log.Info("service online")
	return nil
}

// classify maps manager errors: an unknown unit is a configuration error
// naming the service property; ctx errors stay wrapped; the rest is
// transient.
func (r *service) classify(op string, err error) error {
	switch {
	case errors.Is(err, ErrNoSuchUnit):
		return resource.ConfigError("service", r.p.Service, "no such unit on this node (%s: %v)", op, err)
	case errors.Is(err, ErrBadUnit):
		return resource.ConfigError("service", r.p.Service, "unit cannot be used (%s: %v)", op, err)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s %s: %w", op, r.p.unit, err)
	}
	return resource.Transient(fmt.Errorf("%s %s: %w", op, r.p.unit, err))
}

// Offline stops the unit and waits for the stop job; a failed state left by
// the stop is cleared.
func (r *service) Offline(ctx context.Context) error {
	ctx, done := r.track(ctx, r.p.StopTimeout.D())
	defer done()
	r.setOffline()
	if err := r.do(ctx, func(m Manager) error { return m.Stop(ctx, r.p.unit) }); err != nil {
		return r.classify("stop", err)
	}
	r.log.Info("service offline")
	return nil
}

// LooksAliveInstant implements resource.InstantChecker: LooksAlive reads
// the watch's in-memory state.
func (r *service) LooksAliveInstant() bool { return true }

// LooksAlive answers from the watch's in-memory state: no manager round trip.
func (r *service) LooksAlive(ctx context.Context) error {
	r.mu.Lock()
	on := r.online
	r.mu.Unlock()
	if !on {
		return fmt.Errorf("service %s is not online", r.p.unit)
	}
	_, watch := r.conn()
	if watch == nil {
		return fmt.Errorf("service %s: not watched (connection to %s lost)", r.p.unit, r.p.Manager)
	}
	if st := watch.Status(); !st.Active.Up() {
		return fmt.Errorf("service %s", st)
	}
	return nil
}

// IsAlive asks the manager (one round trip) and runs the health check.
func (r *service) IsAlive(ctx context.Context) error {
	r.mu.Lock()
	on := r.online
	r.mu.Unlock()
	if !on {
		return fmt.Errorf("service %s is not online", r.p.unit)
	}
	var st Status
	err := r.do(ctx, func(m Manager) (err error) {
		st, err = m.Status(ctx, r.p.unit)
		return err
	})
	if err != nil {
		return r.classify("status", err)
	}
	if !st.Active.Up() {
		return fmt.Errorf("service %s", st)
	}
	if r.p.health != nil {
		if err := r.p.health.Check(ctx); err != nil {
			return fmt.Errorf("service %s: health: %w", r.p.unit, err)
		}
	}
	return nil
}

// Terminate cancels in-flight calls, then kills every process of the unit
// with SIGKILL and stops it.
func (r *service) Terminate(ctx context.Context) error {
	r.mu.Lock()
	r.online = false
	for c := range r.inflight {
		(*c)()
	}
	r.mu.Unlock()
	if err := r.do(ctx, func(m Manager) error { return m.Kill(ctx, r.p.unit) }); err != nil {
		return r.classify("kill", err)
	}
	return nil
}

// Close stops watching the unit and releases the manager.
func (r *service) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	r.online = false
	r.mu.Unlock()
	r.connMu.Lock()
	defer r.connMu.Unlock()
	if r.watch != nil {
		r.watch.Close()
	}
	return r.t.release(r.m)
}

var _ resource.InstantChecker = (*service)(nil)
