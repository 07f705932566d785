package monitor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/sftkit/sft/policy"
	"github.com/sftkit/sft/resource"
)

type cmdKind int

const (
	cmdOnline cmdKind = iota
	cmdOffline
	cmdClear
	cmdStop
)

type command struct {
	kind cmdKind
	done chan error // buffered 1
}

type opKind int

const (
	opOnline opKind = iota
	opOffline
	opTerminate
)

// evKind is an internal event delivered to the group's actor.
type evKind int

const (
	evOpDone evKind = iota
	evPollFailed
	evRestartDue
	evRetryDue
)

type groupEvent struct {
	kind   evKind
	x      *res
	op     opKind
	epoch  int
	err    error
	pushed bool
}

// res is the monitor's view of one resource. The fields below "actor" are
// owned by the group's actor goroutine.
type res struct {
	idx    int
	spec   ResourceSpec
	r      resource.Resource
	timing policy.Timing
	sem    chan struct{} // serializes calls other than Terminate
	push   chan error    // pushed failures, buffered 1

	// actor
	state        resource.State
	busy         bool
	epoch        int
	pollCancel   context.CancelFunc
	waitRestart  bool
	restartTimer *time.Timer
	restarts     policy.History
	restartCount int
	lastFailure  string
	lastFailedAt time.Time
	closed       bool
}

type group struct {
	m    *Monitor
	name string
	res  []*res
	g    *graph
	cmds chan command
	evs  chan groupEvent
	quit chan struct{}

	// actor
	target     resource.State // StateOnline or StateOffline
	state      resource.State
	failed     bool
	failReason string
	stopping   bool
	waiters    []command
	retryTimer *time.Timer

	sweep sweeper

	snapMu sync.Mutex
	snap   GroupStatus
}

func newGroup(m *Monitor, spec GroupSpec, gr *graph) *group {
	g := &group{
		m:      m,
		name:   spec.Name,
		g:      gr,
		cmds:   make(chan command),
		evs:    make(chan groupEvent, 16),
		quit:   make(chan struct{}),
		target: resource.StateOffline,
		state:  resource.StateOffline,
	}
	g.sweep.g = g
	for i, rs := range spec.Resources {
		rs.DependsOn = slices.Clone(rs.DependsOn)
		g.res = append(g.res, &res{
			idx:    i,
			spec:   rs,
			r:      rs.Resource,
			timing: rs.Timing.WithDefaults(rs.TypeTiming),
			sem:    make(chan struct{}, 1),
			push:   make(chan error, 1),
		})
	}
	g.publishSnapshot()
	return g
}

func (g *group) installHandlers() {
	for _, x := range g.res {
		if fr, ok := x.r.(resource.FailureReporter); ok {
			fr.SetFailureHandler(func(err error) {
				if err == nil {
					err = errors.New("failure reported without a reason")
				}
				select {
				case x.push <- err:
				default: // one pending failure is enough
				}
			})
		}
	}
}

// request sends a command to the actor and waits for its outcome.
func (g *group) request(ctx context.Context, kind cmdKind) error {
	c := command{kind: kind, done: make(chan error, 1)}
	select {
	case g.cmds <- c:
	case <-g.quit:
		return fmt.Errorf("%w: %q", ErrGroupStopping, g.name)
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-c.done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("group %q: %w", g.name, ctx.Err())
	}
}

// send delivers an internal event unless the actor has quit.
func (g *group) send(ev groupEvent) {
	select {
	case g.evs <- ev:
	case <-g.quit:
	}
}

func (g *group) run() {
	defer close(g.quit)
	defer g.stopTimers()
	for {
		select {
		case c := <-g.cmds:
			g.command(c)
		case ev := <-g.evs:
			g.event(ev)
			// Take what else is queued before reconciling and publishing
			// a snapshot once (a large group starts with a burst).
			for more := true; more; {
				select {
				case ev := <-g.evs:
					g.event(ev)
				default:
					more = false
				}
			}
		}
		g.reconcile()
		g.settle()
		if g.stopping && g.quiescent() {
			for _, w := range g.waiters {
				w.done <- nil
			}
			return
		}
	}
}

func (g *group) command(c command) {
	switch c.kind {
	case cmdOnline:
		if g.stopping {
			c.done <- fmt.Errorf("%w: %q", ErrGroupStopping, g.name)
			return
		}
		if g.failed {
			g.clearFailure("brought online by request")
		}
		g.target = resource.StateOnline
	case cmdOffline:
		g.target = resource.StateOffline
		g.cancelRestarts()
		if g.retryTimer != nil { // taken offline on purpose: no retry here
			g.retryTimer.Stop()
			g.retryTimer = nil
		}
	case cmdClear:
		g.clearFailure("cleared by request")
		g.target = resource.StateOffline
		g.cancelRestarts()
		for _, x := range g.res {
			x.restartCount = 0
			x.lastFailure = ""
			x.lastFailedAt = time.Time{}
		}
	case cmdStop:
		g.stopping = true
		g.target = resource.StateOffline
		g.cancelRestarts()
	}
	g.waiters = append(g.waiters, c)
}

func (g *group) clearFailure(reason string) {
	if g.retryTimer != nil {
		g.retryTimer.Stop()
		g.retryTimer = nil
	}
	g.failed = false
	g.failReason = ""
	for _, x := range g.res {
		x.restarts = nil
	}
	g.m.log.Info("group failure cleared", "group", g.name, "reason", reason)
}

func (g *group) cancelRestarts() {
	for _, x := range g.res {
		if x.restartTimer != nil {
			x.restartTimer.Stop()
			x.restartTimer = nil
		}
		x.waitRestart = false
	}
}

func (g *group) stopTimers() {
	g.cancelRestarts()
	if g.retryTimer != nil {
		g.retryTimer.Stop()
	}
}

func (g *group) event(ev groupEvent) {
	x := ev.x
	switch ev.kind {
	case evOpDone:
		if ev.epoch != x.epoch {
			return
		}
		x.busy = false
		switch ev.op {
		case opOnline:
			if ev.err == nil {
				g.setState(x, resource.StateOnline, "online")
				g.startPoller(x)
				return
			}
			g.failResource(x, ev.err, "online failed")
			g.decide(x, ev.err)
		case opOffline:
			reason := "offline"
			if ev.err != nil {
				reason = "offline failed, terminated: " + ev.err.Error()
			}
			g.setState(x, resource.StateOffline, reason)
		case opTerminate:
			g.decide(x, ev.err)
		}
	case evPollFailed:
		if ev.epoch != x.epoch || x.state != resource.StateOnline || x.busy {
			return
		}
		g.stopPoller(x)
		if ev.pushed {
			g.emitResource(x, Event{Kind: EventFailurePushed, Reason: ev.err.Error(), Class: resource.ClassOf(ev.err).String()})
		}
		g.failResource(x, ev.err, "health check failed")
		g.startOp(x, opTerminate, ev.err)
	case evRestartDue:
		if ev.epoch != x.epoch || !x.waitRestart {
			return
		}
		x.waitRestart = false
		x.restartTimer = nil
	case evRetryDue:
		if g.failed && !g.stopping {
			g.clearFailure("retry period on failure elapsed")
			g.target = resource.StateOnline
		}
	}
}

func (g *group) failResource(x *res, err error, what string) {
	x.lastFailure = err.Error()
	x.lastFailedAt = time.Now()
	g.setState(x, resource.StateFailed, what+": "+err.Error())
	g.m.log.Warn("resource failed", "group", g.name, "resource", x.spec.Name, "reason", err.Error(), "class", resource.ClassOf(err).String())
}

// decide applies the restart policy to a failed (and terminated) resource.
func (g *group) decide(x *res, cause error) {
	if g.target != resource.StateOnline || g.failed || g.stopping {
		return
	}
	if cause == nil {
		cause = errors.New(x.lastFailure)
	}
	now := time.Now()
	d := x.spec.Restart.Decide(now, x.restarts, cause)
	switch d.Action {
	case policy.ActionRestart:
		period := x.spec.Restart.WithDefaults().Period
		x.restarts = x.restarts.Add(now, period)
		x.restartCount++
		x.waitRestart = true
		epoch := x.epoch
		x.restartTimer = time.AfterFunc(d.Delay, func() {
			g.send(groupEvent{kind: evRestartDue, x: x, epoch: epoch})
		})
		g.m.log.Info("restarting resource", "group", g.name, "resource", x.spec.Name, "delay", d.Delay, "reason", d.Reason)
		g.emitResource(x, Event{Kind: EventRestart, Delay: d.Delay, Reason: d.Reason})
	default:
		g.fail(x, d)
	}
}

// fail marks the group failed here: everything goes offline and the
// policy's verdict is published.
func (g *group) fail(x *res, d policy.Decision) {
	g.failed = true
	g.failReason = fmt.Sprintf("resource %s: %s", x.spec.Name, d.Reason)
	g.target = resource.StateOffline
	g.cancelRestarts()
	ev := Event{Kind: EventGroupFailed, Resource: x.spec.Name, Type: x.spec.Type, Reason: g.failReason, Failover: d.Action == policy.ActionFailover}
	retry := d.Delay
	if d.Action == policy.ActionFailover {
		// Until someone moves it (the cluster layer takes it offline here,
		// which cancels this), this node tries again after the retry
		// period, as a failover cluster does with RetryPeriodOnFailure.
		retry = x.spec.Restart.WithDefaults().RetryPeriod
	}
	if retry > 0 {
		ev.RetryAfter = retry
		g.retryTimer = time.AfterFunc(retry, func() { g.send(groupEvent{kind: evRetryDue}) })
	}
	g.m.log.Error("group failed", "group", g.name, "reason", g.failReason, "failover", ev.Failover)
	g.m.publish(withGroup(ev, g.name))
}

// reconcile starts whatever operations move the resources toward the target.
func (g *group) reconcile() {
	if g.target == resource.StateOnline && !g.failed {
		for _, i := range g.g.order {
			x := g.res[i]
			if x.busy {
				continue
			}
			depsUp, down := g.depsOnline(x)
			switch x.state {
			case resource.StateOnline:
				if !depsUp {
					g.startOp(x, opOffline, fmt.Errorf("dependency %s is not online", down))
				}
			case resource.StateOffline, resource.StateFailed:
				if !x.waitRestart && depsUp && g.dependentsDown(x) {
					g.startOp(x, opOnline, nil)
				}
			}
		}
		return
	}
	for _, i := range slices.Backward(g.g.order) {
		x := g.res[i]
		if !x.busy && x.state == resource.StateOnline && g.dependentsDown(x) {
			g.startOp(x, opOffline, errors.New("group going offline"))
		}
	}
}

func (g *group) depsOnline(x *res) (bool, string) {
	for _, j := range g.g.deps[x.idx] {
		d := g.res[j]
		if d.busy || d.state != resource.StateOnline {
			return false, d.spec.Name
		}
	}
	return true, ""
}

func (g *group) dependentsDown(x *res) bool {
	for _, j := range g.g.dependents[x.idx] {
		d := g.res[j]
		if d.busy || d.state == resource.StateOnline {
			return false
		}
	}
	return true
}

func (g *group) quiescent() bool {
	for _, x := range g.res {
		if x.busy || x.state == resource.StateOnline {
			return false
		}
	}
	return true
}

// startOp runs an operation on its own goroutine and marks the resource
// busy until the result comes back.
func (g *group) startOp(x *res, op opKind, why error) {
	g.stopPoller(x)
	x.busy = true
	x.epoch++
	epoch := x.epoch
	switch op {
	case opOnline:
		g.setState(x, resource.StateOnlinePending, "bringing online")
	case opOffline:
		g.setState(x, resource.StateOfflinePending, why.Error())
	}
	g.m.wg.Go(func() {
		var err error
		switch op {
		case opOnline:
			for len(x.push) > 0 { // failures pushed before this Online are stale
				<-x.push
			}
			err = g.invoke(context.Background(), x, MethodOnline, x.r.Online)
			if err != nil && !errors.Is(err, ErrCallTimeout) && !errors.Is(err, ErrDeadlocked) {
				g.terminate(x, "online failed: "+err.Error())
			}
		case opOffline:
			err = g.invoke(context.Background(), x, MethodOffline, x.r.Offline)
			if err != nil && !errors.Is(err, ErrCallTimeout) && !errors.Is(err, ErrDeadlocked) {
				g.terminate(x, "offline failed: "+err.Error())
			}
		case opTerminate:
			g.terminate(x, why.Error())
			err = why
		}
		g.send(groupEvent{kind: evOpDone, x: x, op: op, epoch: epoch, err: err})
	})
}

func (g *group) startPoller(x *res) {
	ctx, cancel := context.WithCancel(context.Background())
	x.pollCancel = cancel
	epoch := x.epoch
	g.m.wg.Go(func() { g.poll(ctx, x, epoch) })
}

func (g *group) stopPoller(x *res) {
	if x.pollCancel != nil {
		x.pollCancel()
		x.pollCancel = nil
	}
}

// forceStop is used when Close's context ends: terminate everything.
func (g *group) forceStop() {
	var wg sync.WaitGroup
	for _, x := range g.res {
		wg.Go(func() { g.terminate(x, "monitor closing: forced") })
	}
	wg.Wait()
}

func (g *group) closeResources() error {
	var errs []error
	for _, x := range g.res {
		if x.closed {
			continue
		}
		x.closed = true
		if c, ok := x.r.(resource.Closer); ok {
			if err := c.Close(); err != nil {
				errs = append(errs, fmt.Errorf("group %q resource %q: close: %w", g.name, x.spec.Name, err))
			}
		}
		if fr, ok := x.r.(resource.FailureReporter); ok {
			fr.SetFailureHandler(nil)
		}
	}
	return errors.Join(errs...)
}

func (g *group) setState(x *res, to resource.State, reason string) {
	from := x.state
	if from == to {
		return
	}
	x.state = to
	g.m.log.Info("resource state", "group", g.name, "resource", x.spec.Name, "from", from.String(), "to", to.String(), "reason", reason)
	g.emitResource(x, Event{Kind: EventStateChanged, From: from, To: to, Reason: reason})
}

func (g *group) emitResource(x *res, e Event) {
	e.Resource = x.spec.Name
	e.Type = x.spec.Type
	g.m.publish(withGroup(e, g.name))
}

func withGroup(e Event, name string) Event {
	e.Group = name
	return e
}

// settle derives the group state, answers waiters and publishes a
// snapshot.
func (g *group) settle() {
	var st resource.State
	switch {
	case g.failed:
		st = resource.StateFailed
		if !g.quiescent() {
			st = resource.StateOfflinePending
		}
	case g.target == resource.StateOnline:
		st = resource.StateOnline
		for _, x := range g.res {
			if x.state != resource.StateOnline || x.busy {
				st = resource.StateOnlinePending
				break
			}
		}
	default:
		st = resource.StateOffline
		if !g.quiescent() {
			st = resource.StateOfflinePending
		}
	}
	if st != g.state {
		from := g.state
		g.state = st
		reason := g.failReason
		if reason == "" {
			reason = "target " + g.target.String()
		}
		g.m.log.Info("group state", "group", g.name, "from", from.String(), "to", st.String())
		g.m.publish(Event{Kind: EventGroupStateChanged, Group: g.name, From: from, To: st, Reason: reason})
	}
	g.publishSnapshot() // before answering, so a caller sees its effect
	kept := g.waiters[:0]
	for _, w := range g.waiters {
		switch {
		case w.kind == cmdClear:
			w.done <- nil
		case w.kind == cmdOnline && st == resource.StateOnline:
			w.done <- nil
		case w.kind == cmdOnline && (g.failed || g.target != resource.StateOnline):
			reason := g.failReason
			if !g.failed {
				reason = "taken offline by request"
			}
			w.done <- fmt.Errorf("group %q: %w: %s", g.name, ErrGroupFailed, reason)
		case w.kind == cmdOffline && g.quiescent() && g.target == resource.StateOffline:
			w.done <- nil
		case w.kind == cmdOffline && g.target == resource.StateOnline:
			w.done <- fmt.Errorf("group %q: brought online again before it was offline", g.name)
		default: // cmdStop is answered when the actor exits
			kept = append(kept, w)
		}
	}
	g.waiters = kept
}

func (g *group) publishSnapshot() {
	s := GroupStatus{Name: g.name, State: g.state, Target: g.target, Failed: g.failed, Reason: g.failReason}
	for _, x := range g.res {
		s.Resources = append(s.Resources, ResourceStatus{
			Name:            x.spec.Name,
			Type:            x.spec.Type,
			State:           x.state,
			DependsOn:       x.spec.DependsOn,
			Restarts:        x.restartCount,
			LastFailure:     x.lastFailure,
			LastFailureTime: x.lastFailedAt,
			RestartPending:  x.waitRestart,
		})
	}
	g.snapMu.Lock()
	g.snap = s
	g.snapMu.Unlock()
}

func (g *group) snapshot() GroupStatus {
	g.snapMu.Lock()
	defer g.snapMu.Unlock()
	s := g.snap
	s.Resources = slices.Clone(s.Resources)
	return s
}
