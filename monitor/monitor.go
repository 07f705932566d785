package monitor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
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
	// of TypeTiming) and then the policy defaults.
	Timing policy.Timing
	// TypeTiming is the type's default timing (resource.TimingProvider),
	// if it has one.
	TypeTiming resource.Timing
}

// GroupSpec is a group: resources that fail over together.
type GroupSpec struct {
	Name      string
	Resources []ResourceSpec
}

// Errors of the Monitor API.
var (
	ErrClosed        = errors.New("monitor: closed")
	ErrNoSuchGroup   = errors.New("monitor: no such group")
	ErrGroupExists   = errors.New("monitor: group already exists")
	ErrGroupFailed   = errors.New("monitor: group failed")
	ErrGroupStopping = errors.New("monitor: group is being removed")
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
	return &Monitor{cfg: cfg, log: log, groups: make(map[string]*group)}
}

// AddGroup validates spec (names, dependencies, policies, timing) and adds
// the group, offline. It installs the failure handlers of resources that
// push failures.
func (m *Monitor) AddGroup(spec GroupSpec) error {
	if spec.Name == "" {
		return errors.New("monitor: group name must not be empty")
	}
	gr, err := buildGraph(spec.Resources)
	if err != nil {
		return fmt.Errorf("group %q: %w", spec.Name, err)
	}
	var errs []error
	for i, rs := range spec.Resources {
		if rs.Resource == nil {
			errs = append(errs, fmt.Errorf("group %q: resources[%d] %q: Resource is nil", spec.Name, i, rs.Name))
		}
		if err := rs.Restart.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("group %q: resources[%d] %q: restart: %w", spec.Name, i, rs.Name, err))
		}
		if err := rs.Timing.WithDefaults(rs.TypeTiming).Validate(); err != nil {
			errs = append(errs, fmt.Errorf("group %q: resources[%d] %q: timing: %w", spec.Name, i, rs.Name, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
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

// Online brings the group online and waits until it is online (nil), it
// failed (an error wrapping ErrGroupFailed with the reason), or ctx ends.
// Online of a failed group clears its failure and restart counts first: it
// is an operator's decision to try again.
func (m *Monitor) Online(ctx context.Context, name string) error {
	g, err := m.group(name)
	if err != nil {
		return err
	}
	return g.request(ctx, cmdOnline)
}

// Offline takes the group offline in reverse dependency order and waits
// until it is offline or ctx ends.
func (m *Monitor) Offline(ctx context.Context, name string) error {
	g, err := m.group(name)
	if err != nil {
		return err
	}
	return g.request(ctx, cmdOffline)
}

// Clear resets a group's failed state and the restart counts of its
// resources, leaving it offline.
func (m *Monitor) Clear(ctx context.Context, name string) error {
	g, err := m.group(name)
	if err != nil {
		return err
	}
	return g.request(ctx, cmdClear)
}

// RemoveGroup takes the group offline, closes its resources and forgets it.
func (m *Monitor) RemoveGroup(ctx context.Context, name string) error {
	g, err := m.group(name)
	if err != nil {
		return err
	}
	err = g.request(ctx, cmdStop)
	<-g.quit
	m.mu.Lock()
	delete(m.groups, name)
	m.mu.Unlock()
	return errors.Join(err, g.closeResources())
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
// in parallel), closes the resources, ends all subscriptions and waits for
// every goroutine the monitor started. If ctx ends first, it terminates
// whatever is still online and returns an error; calls that ignore both
// their context and Terminate may then still be running.
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

	var errs []error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, g := range gs {
		wg.Go(func() {
			err := g.request(ctx, cmdStop)
			if err != nil {
				g.forceStop()
			}
			<-g.quit
			err = errors.Join(err, g.closeResources())
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
		})
	}
	wg.Wait()
	m.hub.close()
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
	m.hub.publish(e)
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
