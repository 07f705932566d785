package monitor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sftkit/sft/policy"
	"github.com/sftkit/sft/resource"
)

// Config configures a Monitor. The zero value is usable.
type Config struct {
	// Logger receives state transitions (not every probe). Nil discards.
	Logger *slog.Logger
	// Observer, if set, is called after every call to a resource (for
	// metrics). It runs on the monitor's goroutines: keep it fast.
	Observer func(CallInfo)
	// Managed puts every group in managed mode (see GroupSpec.Managed):
	// set it when a cluster layer drives this monitor.
	Managed bool
}

// ResourceSpec is one resource of a group.
type ResourceSpec struct {
	// Name is unique within the group.
	Name string
	// Type is the resource type's name, for events and metrics.
	Type string
	// Resource is the opened instance. The monitor owns it from AddGroup
	// on and closes it (resource.Closer) when the group is removed or the
	// monitor closes.
	Resource resource.Resource
	// DependsOn names resources of the same group that must be online
	// before this one is brought online (and are taken offline after it).
	DependsOn []string
	// Restart is the restart policy; zero fields take defaults.
	Restart policy.Restart
	// Timing: zero fields take the type's defaults (resource.TimingProvider
	// of TypeTiming) and then the policy defaults; DeadlockTimeout, unset,
	// derives from the final CallTimeout (policy.ResolveTiming).
	Timing resource.Timing
	// TypeTiming is the type's default timing (resource.TimingProvider),
	// if it has one.
	TypeTiming resource.Timing
}

// GroupSpec is a group: resources that fail over together.
type GroupSpec struct {
	Name      string
	Resources []ResourceSpec
	// Managed: a failed group is not retried here after the restart
	// policy's RetryPeriod; it stays failed and stopped until the caller
	// (a cluster layer, which decides where a failed group goes) acts.
	Managed bool
}

// Errors of the Monitor API.
var (
	ErrClosed        = errors.New("monitor: closed")
	ErrNoSuchGroup   = errors.New("monitor: no such group")
	ErrGroupExists   = errors.New("monitor: group already exists")
	ErrGroupFailed   = errors.New("monitor: group failed")
	ErrGroupStopping = errors.New("monitor: group is being removed")
	// ErrStopFailed: a resource could not be stopped: Offline failed,
	// Terminate failed, and killing its hosting process (it may have none)
	// and terminating again did not help. It may still run here (hold its
	// address): it is
	// StopFailed, and so is its group, until a later Offline, Fence or
	// Close terminates it. Test with errors.Is.
	ErrStopFailed = errors.New("monitor: stop failed, the resource may still be running")
	// ErrSuperseded: a later request (or a failure, or a fence) replaced
	// this one before it completed; e.g. Offline cancels a pending Online,
	// whose caller gets ErrSuperseded.
	ErrSuperseded = errors.New("monitor: superseded")
	// ErrBusy: the group is not in a state the request needs (Probe needs
	// an offline, idle group).
	ErrBusy = errors.New("monitor: group busy")
	// ErrResourceSetChanged: UpdateGroup was given different resources
	// (names, order, types, dependencies or instances); remove the group
	// and add it again instead.
	ErrResourceSetChanged = errors.New("monitor: resource set changed")
)

// Monitor runs groups of resources on this node: it brings them online in
// dependency order, polls their health, restarts them by policy, and
// reports a group as failed when restarting does not help. It is safe for
// concurrent use.
type Monitor struct {
	cfg Config
	log *slog.Logger
	hub hub
	wg  sync.WaitGroup
	seq atomic.Uint64 // Event.Seq and GroupStatus.Seq
	// sweep drives LooksAlive for every group: one ticker per interval.
	sweep sweeper

	watchMu  sync.Mutex
	watchers map[*Watch]struct{}
	watchEnd bool

	mu     sync.Mutex
	groups map[string]*group
	closed bool
}

// New returns a monitor with no groups. It starts no goroutine until a
// group is added.
func New(cfg Config) *Monitor {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &Monitor{cfg: cfg, log: log, groups: make(map[string]*group)}
	m.sweep.m = m
	return m
}

// AddGroup validates spec (names, dependencies, policies, timing) and adds
// the group, offline. It installs the failure handlers of resources that
// push failures. To adopt a group that may already run here (after a
// restart of this process), call Probe before anything else.
func (m *Monitor) AddGroup(spec GroupSpec) error {
	gr, err := validate(spec)
	if err != nil {
		return err
	}
	g := newGroup(m, spec, gr)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	if _, dup := m.groups[spec.Name]; dup {
		return fmt.Errorf("%w: %q", ErrGroupExists, spec.Name)
	}
	m.groups[spec.Name] = g
	g.installHandlers()
	m.wg.Go(g.run)
	return nil
}

func validate(spec GroupSpec) (*graph, error) {
	if spec.Name == "" {
		return nil, errors.New("monitor: group name must not be empty")
	}
	gr, err := buildGraph(spec.Resources)
	if err != nil {
		return nil, fmt.Errorf("group %q: %w", spec.Name, err)
	}
	var errs []error
	for i, rs := range spec.Resources {
		if rs.Resource == nil {
			errs = append(errs, fmt.Errorf("group %q: resources[%d] %q: Resource is nil", spec.Name, i, rs.Name))
		}
		if err := rs.Restart.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("group %q: resources[%d] %q: restart: %w", spec.Name, i, rs.Name, err))
		}
		if err := policy.ValidateTiming(rs.Timing); err != nil {
			errs = append(errs, fmt.Errorf("group %q: resources[%d] %q: timing: %w", spec.Name, i, rs.Name, err))
		}
	}
	return gr, errors.Join(errs...)
}

func (m *Monitor) group(name string) (*group, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	g, ok := m.groups[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrNoSuchGroup, name)
	}
	return g, nil
}

// Request is a command to a group, for Do.
type Request int

const (
	// RequestOnline: see Online.
	RequestOnline Request = iota + 1
	// RequestOffline: see Offline.
	RequestOffline
	// RequestClear: see Clear.
	RequestClear
)

// Do sends req to the group and waits for its outcome, like Online,
// Offline and Clear; it also returns the generation the group gave the
// request (GroupStatus.Generation), or 0 if it was never delivered (ctx
// ended first, the group is being removed).
func (m *Monitor) Do(ctx context.Context, name string, req Request) (uint64, error) {
	g, err := m.group(name)
	if err != nil {
		return 0, err
	}
	var kind cmdKind
	switch req {
	case RequestOnline:
		kind = cmdOnline
	case RequestOffline:
		kind = cmdOffline
	case RequestClear:
		kind = cmdClear
	default:
		return 0, fmt.Errorf("monitor: unknown request %d", int(req))
	}
	r := g.request(ctx, command{kind: kind})
	return r.gen, r.err
}

// Online brings the group online and waits until it is online (nil), it
// failed (an error wrapping ErrGroupFailed and the classified cause), a
// later request superseded it (ErrSuperseded), or ctx ends. Online of a
// failed group clears its failure and restart counts first: it is an
// operator's decision to try again. A group with a stop-failed resource
// is refused (ErrStopFailed): take it offline or fence it first.
func (m *Monitor) Online(ctx context.Context, name string) error {
	_, err := m.Do(ctx, name, RequestOnline)
	return err
}

// Offline takes the group offline in reverse dependency order and waits
// until it is offline or ctx ends. An Online in progress is cancelled (its
// caller gets ErrSuperseded); pending restarts and the retry after a
// failure are cancelled for good. If a resource cannot be stopped the
// error wraps ErrStopFailed and the group is StopFailed, never Offline;
// Offline again retries the stop.
func (m *Monitor) Offline(ctx context.Context, name string) error {
	_, err := m.Do(ctx, name, RequestOffline)
	return err
}

// Clear resets a group's failed state, its pending retry, and the restart
// counts of its resources. Nothing else: an online group stays online, a
// failed group stays offline.
func (m *Monitor) Clear(ctx context.Context, name string) error {
	_, err := m.Do(ctx, name, RequestClear)
	return err
}

// Fence takes the group down now: every resource is terminated at once, in
// parallel, whatever it was doing (pending calls are superseded), each
// bounded by its deadlock timeout, escalating to killing its hosting
// process when Terminate fails. FenceResult.Down says whether everything
// is surely down; otherwise the error wraps ErrStopFailed and names the
// resources that may still run. ctx bounds the wait only. The group's
// target becomes Offline; a failed group stays failed.
func (m *Monitor) Fence(ctx context.Context, name string) (FenceResult, error) {
	g, err := m.group(name)
	if err != nil {
		return FenceResult{}, err
	}
	r := g.request(ctx, command{kind: cmdFence})
	r.fence.Generation = r.gen
	return r.fence, r.err
}

// Probe asks every resource of an offline, idle group whether it already
// runs here: resource.Prober if the resource implements it, else IsAlive
// (nil means running), each under its call timeout. Resources found running
// are adopted as Online (and polled) instead of being started twice, and
// the group's target becomes Online, so the rest is brought up; resources
// the probe cannot tell about are terminated. Call it right after AddGroup
// when this node (re)starts, before deciding anything; call Offline after
// it if the group should not run here. A group that is not offline and
// idle is refused with ErrBusy.
func (m *Monitor) Probe(ctx context.Context, name string) (ProbeResult, error) {
	g, err := m.group(name)
	if err != nil {
		return ProbeResult{}, err
	}
	r := g.request(ctx, command{kind: cmdProbe})
	r.probe.Generation = r.gen
	return r.probe, r.err
}

// UpdateGroup changes a group's spec without taking it down, when the
// resource set is the same (same names in the same order, same types,
// dependencies and instances): restart policies, timing and Managed apply
// at once (pollers restart with the new timing; a resource.PollScheduler
// is told). Restart history is kept. Any change to the resource set is
// refused with ErrResourceSetChanged: take the group offline, RemoveGroup
// and AddGroup. It returns the update's generation.
func (m *Monitor) UpdateGroup(ctx context.Context, spec GroupSpec) (uint64, error) {
	if _, err := validate(spec); err != nil {
		return 0, err
	}
	g, err := m.group(spec.Name)
	if err != nil {
		return 0, err
	}
	if len(spec.Resources) != len(g.res) {
		return 0, fmt.Errorf("group %q: %w: %d resources, was %d", spec.Name, ErrResourceSetChanged, len(spec.Resources), len(g.res))
	}
	for i, rs := range spec.Resources {
		old := g.res[i].spec
		if rs.Name != old.Name || rs.Type != old.Type || rs.Resource != old.Resource || !slices.Equal(rs.DependsOn, old.DependsOn) {
			return 0, fmt.Errorf("group %q: resources[%d] %q: %w", spec.Name, i, rs.Name, ErrResourceSetChanged)
		}
	}
	r := g.request(ctx, command{kind: cmdUpdate, update: slices.Clone(spec.Resources), managed: spec.Managed})
	return r.gen, r.err
}

// RemoveGroup takes the group offline, closes its resources and forgets it.
// The removal is delivered whatever ctx says; ctx bounds the wait. If ctx
// ends first, every resource still up is terminated (see Fence) and
// RemoveGroup returns an error; the group finishes on its own and closes
// its resources once their calls have returned. An error wraps
// ErrStopFailed when a resource could not be stopped.
func (m *Monitor) RemoveGroup(ctx context.Context, name string) error {
	g, err := m.group(name)
	if err != nil {
		return err
	}
	err = g.shutdown(ctx)
	m.mu.Lock()
	if m.groups[name] == g {
		delete(m.groups, name)
	}
	m.mu.Unlock()
	return err
}

// Subscribe returns a subscription to all events from now on, with a
// buffer of buffer events (DefaultSubscriptionBuffer if <= 0).
func (m *Monitor) Subscribe(buffer int) *Subscription { return m.hub.subscribe(buffer) }

// Status returns a snapshot of every group, sorted by name.
func (m *Monitor) Status() Status {
	m.mu.Lock()
	gs := make([]*group, 0, len(m.groups))
	for _, g := range m.groups {
		gs = append(gs, g)
	}
	m.mu.Unlock()
	st := Status{Groups: make([]GroupStatus, 0, len(gs))}
	for _, g := range gs {
		st.Groups = append(st.Groups, g.snapshot())
	}
	slices.SortFunc(st.Groups, func(a, b GroupStatus) int { return compareStrings(a.Name, b.Name) })
	return st
}

// GroupStatus returns a snapshot of one group.
func (m *Monitor) GroupStatus(name string) (GroupStatus, error) {
	g, err := m.group(name)
	if err != nil {
		return GroupStatus{}, err
	}
	return g.snapshot(), nil
}

// Close takes every group offline (each in reverse dependency order, groups
// in parallel), closes the resources, ends all subscriptions and watches
// and waits for every goroutine the monitor started. If ctx ends first, it
// terminates whatever is still up (a fence per group), then returns an
// error; calls that ignore both their context and Terminate may then still
// be running, and the resources are closed once they return. Close twice
// returns ErrClosed.
func (m *Monitor) Close(ctx context.Context) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ErrClosed
	}
	m.closed = true
	gs := make([]*group, 0, len(m.groups))
	for _, g := range m.groups {
		gs = append(gs, g)
	}
	m.mu.Unlock()

	errs := make([]error, len(gs))
	var wg sync.WaitGroup
	for i, g := range gs {
		wg.Go(func() { errs[i] = g.shutdown(ctx) })
	}
	wg.Wait()
	m.hub.close()
	m.endWatches()
	done := make(chan struct{})
	go func() { m.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("monitor: calls still running at close: %w", ctx.Err()))
	}
	return errors.Join(errs...)
}

func (m *Monitor) publish(e Event) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	m.hub.publish(e, &m.seq)
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
