package monitor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
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
	cmdFence
	cmdProbe
	cmdUpdate
)

type command struct {
	kind    cmdKind
	update  []ResourceSpec // cmdUpdate
	managed bool           // cmdUpdate
	done    chan result    // buffered 1
	gen     uint64         // set by the actor
}

// result is what a command is answered with.
type result struct {
	gen   uint64
	err   error
	fence FenceResult
	probe ProbeResult
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
	evFenceDone
	evProbeDone
)

type groupEvent struct {
	kind    evKind
	x       *res
	op      opKind
	epoch   int
	gen     int // timer generation (evRestartDue, evRetryDue)
	err     error
	stopErr error // the resource could not be stopped (opDone)
	pushed  bool
	errs    []error // per resource (evFenceDone, evProbeDone)
	running []bool  // evProbeDone
}

// res is the monitor's view of one resource. The fields below "actor" are
// owned by the group's actor goroutine.
type res struct {
	idx    int
	spec   ResourceSpec
	r      resource.Resource
	timing atomic.Pointer[resource.Timing] // resolved; replaced by UpdateGroup
	sem    chan struct{}                   // serializes calls other than Terminate
	push   chan error                      // pushed failures, buffered 1
	live   atomic.Pointer[poller]          // the running poller, nil when none
	closed atomic.Bool                     // set, holding sem, before Close: no call after it

	// actor
	state        resource.State
	busy         bool
	ops          int // op goroutines not yet reported back, stale ones included
	op           opKind
	opCancel     context.CancelCauseFunc
	epoch        int
	poller       *poller
	waitRestart  bool
	restartTimer *time.Timer
	restartGen   int
	restarts     policy.History
	restartCount int
	restartsAll  uint64 // the never reset counters of ResourceStatus
	failures     uint64
	pushedAll    uint64
	lastFailure  string
	lastFailedAt time.Time
	retryStop    bool // a stop-failed resource gets another Terminate
	scheduled    bool // SetPollSchedule has been called
}

func (x *res) tm() resource.Timing { return *x.timing.Load() }

type group struct {
	m     *Monitor
	name  string
	res   []*res
	g     *graph
	cmds  chan command
	evs   chan groupEvent
	stopC chan struct{} // closed to stop the group: independent of any ctx
	stop  sync.Once
	quit  chan struct{}

	closeErr error // written by the actor before quit is closed

	// actor
	target     resource.State // StateOnline or StateOffline
	state      resource.State
	managed    bool
	failed     bool
	failReason string
	failErr    error  // classified cause of the failure
	failEv     *Event // EventGroupFailed, published once fully stopped
	stopping   bool
	fencing    bool
	probing    bool
	gen        uint64 // generation of the latest command
	waiters    []command
	fenced     *FenceResult // a fence just finished: answer its waiters
	probed     *ProbeResult // a probe just finished: answer its waiters
	retryTimer *time.Timer
	retryGen   int
	retryAt    time.Time

	snapMu sync.Mutex
	snap   GroupStatus // its Resources are updated in place: copy under snapMu
}

func newGroup(m *Monitor, spec GroupSpec, gr *graph) *group {
	g := &group{
		m:    m,
		name: spec.Name,
		g:    gr,
		cmds: make(chan command),
		// Room for a completion from every resource at once: a group
		// coming online ends its Onlines in a burst while the actor is
		// still starting them. With a short queue the op goroutines
		// blocked in send and kept their (grown) stacks until the actor
		// drained it, so that a large group touched fresh stack memory
		// for every resource (18 us per 4 KB page on a Firecracker VM):
		// 1,000 no-op Onlines in one group cost 64-77 ms of CPU, now
		// 34-40 (scalebench -phases noop). A capacity, not a bound:
		// UpdateGroup may add resources, and senders still block on a
		// full queue.
		evs:     make(chan groupEvent, 16+len(spec.Resources)),
		stopC:   make(chan struct{}),
		quit:    make(chan struct{}),
		target:  resource.StateOffline,
		state:   resource.StateOffline,
		managed: spec.Managed || m.cfg.Managed,
	}
	for i, rs := range spec.Resources {
		rs.DependsOn = slices.Clone(rs.DependsOn)
		x := &res{
			idx:  i,
			spec: rs,
			r:    rs.Resource,
			sem:  make(chan struct{}, 1),
			push: make(chan error, 1),
		}
		t := policy.ResolveTiming(rs.Timing, rs.TypeTiming)
		x.timing.Store(&t)
		g.res = append(g.res, x)
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
				// Straight to the actor while the resource is polled (one
				// hand-off less on the crash-to-restart path); through
				// the poller when the actor's queue is full, and before
				// the resource is online (the next Online drops it, or
				// the poller started after it takes it).
				if p := x.live.Load(); p != nil {
					select {
					case g.evs <- groupEvent{kind: evPollFailed, x: x, epoch: p.epoch, err: pushedErr(err), pushed: true}:
						return
					default:
					}
				}
				select {
				case x.push <- err:
				default: // one pending failure is enough
				}
				// Read after the send, as startPoller stores before it
				// looks: one of the two sees the other.
				if p := x.live.Load(); p != nil {
					p.kick(wPushed, nil)
				}
			})
		}
	}
}

// request sends a command to the actor and waits for its outcome. A ctx
// that is already done does not send it.
func (g *group) request(ctx context.Context, c command) result {
	c.done = make(chan result, 1)
	if err := ctx.Err(); err != nil {
		return result{err: fmt.Errorf("group %q: %w", g.name, err)}
	}
	select {
	case g.cmds <- c:
	case <-g.quit:
		return result{err: fmt.Errorf("%w: %q", ErrGroupStopping, g.name)}
	case <-ctx.Done():
		return result{err: fmt.Errorf("group %q: %w", g.name, ctx.Err())}
	}
	select {
	case r := <-c.done:
		return r
	case <-ctx.Done():
		return result{err: fmt.Errorf("group %q: %w", g.name, ctx.Err())}
	}
}

// shutdown stops the group: the stop is delivered whatever ctx says (bug 3);
// ctx bounds only the wait. When ctx ends first, every resource is
// terminated (a fence, bounded by the resources' deadlock timeouts) and
// shutdown returns; the actor then finishes on its own and closes the
// resources when their calls have returned.
func (g *group) shutdown(ctx context.Context) error {
	g.stop.Do(func() { close(g.stopC) })
	select {
	case <-g.quit:
		return g.closeErr
	case <-ctx.Done():
	}
	c := command{kind: cmdFence, done: make(chan result, 1)}
	select {
	case g.cmds <- c:
		select {
		case r := <-c.done:
			if !r.fence.Down {
				return fmt.Errorf("group %q: %w (%w); %w: %v", g.name, ctx.Err(), errForced, ErrStopFailed, r.fence.StopFailed)
			}
		case <-g.quit:
			return g.closeErr
		}
	case <-g.quit:
		return g.closeErr
	}
	return fmt.Errorf("group %q: %w (%w)", g.name, ctx.Err(), errForced)
}

var errForced = errors.New("every resource terminated, calls may still be running")

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
	stopC := g.stopC
	for {
		select {
		case c := <-g.cmds:
			g.command(c)
		case <-stopC:
			stopC = nil
			g.command(command{kind: cmdStop})
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
		if g.stopping && g.quiescent() && !g.fencing && !g.probing && g.opsDone() {
			g.closeErr = g.closeResources()
			if bad := g.stopFailed(); len(bad) > 0 {
				g.closeErr = errors.Join(fmt.Errorf("group %q: %w: %v", g.name, ErrStopFailed, bad), g.closeErr)
			}
			for _, w := range g.waiters {
				w.done <- result{gen: w.gen, err: fmt.Errorf("%w: %q", ErrGroupStopping, g.name)}
			}
			g.m.watchRemoved(g.name)
			return
		}
	}
}

func (g *group) command(c command) {
	g.gen++
	c.gen = g.gen
	reject := func(err error) {
		if c.done != nil {
			c.done <- result{gen: c.gen, err: err}
		}
	}
	switch c.kind {
	case cmdOnline:
		switch {
		case g.stopping:
			reject(fmt.Errorf("%w: %q", ErrGroupStopping, g.name))
			return
		case len(g.stopFailed()) > 0:
			reject(fmt.Errorf("group %q: %w: %v: take it offline or fence it first", g.name, ErrStopFailed, g.stopFailed()))
			return
		}
		if g.failed {
			g.clearFailure("brought online by request")
		}
		g.target = resource.StateOnline
		g.supersede(cmdOffline, "brought online by a later request")
	case cmdOffline:
		g.goOffline("taken offline by request")
	case cmdClear:
		// Clear resets the failed flag and the restart counts, nothing
		// else: a healthy online group stays online (bug 10).
		g.clearFailure("cleared by request")
		for _, x := range g.res {
			x.restartCount = 0
			x.lastFailure = ""
			x.lastFailedAt = time.Time{}
		}
	case cmdStop:
		g.stopping = true
		g.goOffline("group removed")
	case cmdFence:
		if g.fencing {
			break // answered with the running fence
		}
		g.target = resource.StateOffline
		g.cancelRestarts()
		g.cancelRetry()
		g.supersede(cmdOnline, "fenced")
		g.startFence()
	case cmdProbe:
		if g.target != resource.StateOffline || !g.quiescent() || g.probing || g.fencing || len(g.stopFailed()) > 0 {
			reject(fmt.Errorf("group %q: %w: probe only an offline, idle group", g.name, ErrBusy))
			return
		}
		g.startProbe()
	case cmdUpdate:
		g.update(c)
	}
	if c.done != nil {
		g.waiters = append(g.waiters, c)
	}
}

// goOffline sets the target offline: the retry and restarts are cancelled
// for good (their timers' events are stale from now on), in-flight Online
// calls are cancelled (bug 7), and stop-failed resources get another
// Terminate.
func (g *group) goOffline(why string) {
	g.target = resource.StateOffline
	g.cancelRestarts()
	g.cancelRetry()
	for _, x := range g.res {
		if x.busy && x.op == opOnline && x.opCancel != nil {
			x.opCancel(fmt.Errorf("%w: %s", ErrSuperseded, why))
		}
		if x.state == resource.StateStopFailed {
			x.retryStop = true
		}
	}
	g.supersede(cmdOnline, why)
}

// supersede answers the waiters of kind with ErrSuperseded.
func (g *group) supersede(kind cmdKind, why string) {
	kept := g.waiters[:0]
	for _, w := range g.waiters {
		if w.kind == kind {
			w.done <- result{gen: w.gen, err: fmt.Errorf("group %q: %w: %s", g.name, ErrSuperseded, why)}
			continue
		}
		kept = append(kept, w)
	}
	g.waiters = kept
}

func (g *group) clearFailure(reason string) {
	g.cancelRetry()
	if g.failed {
		g.m.log.Info("group failure cleared", "group", g.name, "reason", reason)
	}
	g.failed = false
	g.failReason = ""
	g.failErr = nil
	g.failEv = nil
	for _, x := range g.res {
		x.restarts = nil
	}
}

func (g *group) cancelRetry() {
	g.retryGen++
	g.retryAt = time.Time{}
	if g.retryTimer != nil {
		g.retryTimer.Stop()
		g.retryTimer = nil
	}
}

func (g *group) cancelRestarts() {
	for _, x := range g.res {
		x.restartGen++
		if x.restartTimer != nil {
			x.restartTimer.Stop()
			x.restartTimer = nil
		}
		x.waitRestart = false
	}
}

func (g *group) stopTimers() {
	g.cancelRestarts()
	g.cancelRetry()
}

func (g *group) event(ev groupEvent) {
	x := ev.x
	switch ev.kind {
	case evOpDone:
		x.ops--
		if ev.epoch != x.epoch {
			return
		}
		x.busy = false
		x.opCancel = nil
		if ev.stopErr != nil {
			g.stopFailure(x, ev.err, ev.stopErr)
			return
		}
		switch ev.op {
		case opOnline:
			if ev.err == nil {
				g.setState(x, resource.StateOnline, "online")
				g.startPoller(x)
				return
			}
			if errors.Is(ev.err, ErrSuperseded) {
				g.setState(x, resource.StateOffline, "online cancelled: "+ev.err.Error())
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
			if x.state != resource.StateFailed { // a retried stop, a probe that could not tell
				g.setState(x, resource.StateOffline, "terminated: "+ev.err.Error())
				return
			}
			g.decide(x, ev.err)
		}
	case evPollFailed:
		if ev.epoch != x.epoch || x.state != resource.StateOnline || x.busy {
			return
		}
		g.stopPoller(x)
		if ev.pushed {
			x.pushedAll++
			g.emitResource(x, Event{Kind: EventFailurePushed, Reason: ev.err.Error(), Class: resource.ClassOf(ev.err).String()})
		}
		g.failResource(x, ev.err, "health check failed")
		g.startOp(x, opTerminate, ev.err)
	case evRestartDue:
		if ev.gen != x.restartGen || !x.waitRestart {
			return
		}
		x.waitRestart = false
		x.restartTimer = nil
	case evRetryDue:
		// A retry whose timer was cancelled (Offline, Clear, Online,
		// Fence) is stale even if its event was already queued (bug 1).
		if ev.gen != g.retryGen {
			return
		}
		g.retryTimer = nil
		if g.failed && !g.stopping && !g.managed {
			g.clearFailure("retry period on failure elapsed")
			g.target = resource.StateOnline
		}
	case evFenceDone:
		g.fencing = false
		var fr FenceResult
		for i, x := range g.res {
			x.busy = false
			x.opCancel = nil
			if err := ev.errs[i]; err != nil {
				fr.StopFailed = append(fr.StopFailed, x.spec.Name)
				g.stopFailure(x, nil, err)
				continue
			}
			g.setState(x, resource.StateOffline, "fenced: terminated")
		}
		fr.Down = len(fr.StopFailed) == 0
		g.fenced = &fr // answered by settle, after the snapshot
	case evProbeDone:
		g.probing = false
		var pr ProbeResult
		for i, x := range g.res {
			x.busy = false
			switch {
			case ev.errs[i] != nil:
				pr.Unknown = append(pr.Unknown, x.spec.Name)
				// Cannot tell: terminate it before anything else.
				g.startOp(x, opTerminate, fmt.Errorf("probe failed: %w", ev.errs[i]))
			case ev.running[i]:
				pr.Running = append(pr.Running, x.spec.Name)
				g.schedulePolls(x)
				g.setState(x, resource.StateOnline, "found running by probe: adopted")
				g.startPoller(x)
			default:
				pr.NotRunning = append(pr.NotRunning, x.spec.Name)
			}
		}
		if len(pr.Running) > 0 {
			// Found running here: adopt it rather than start it twice.
			g.target = resource.StateOnline
			pr.Adopted = true
		}
		g.probed = &pr // answered by settle, after the snapshot
	}
}

// stopFailure: the resource could not be stopped (Terminate failed, and
// killing its host failed or was impossible). It may still hold its
// address: it is StopFailed, and the group cannot stay online.
func (g *group) stopFailure(x *res, cause, stopErr error) {
	reason := "stop failed: " + stopErr.Error()
	if cause != nil {
		reason = cause.Error() + "; " + reason
	}
	x.lastFailure = reason
	x.lastFailedAt = time.Now()
	g.stopPoller(x)
	g.setState(x, resource.StateStopFailed, reason)
	g.m.log.Error("resource stop failed", "group", g.name, "resource", x.spec.Name, "reason", reason)
	g.emitResource(x, Event{Kind: EventStopFailed, Reason: reason, Class: resource.ClassOf(stopErr).String()})
	if g.target == resource.StateOnline && !g.failed {
		g.fail(x, policy.Decision{Action: policy.ActionFailover, Reason: reason}, classify(stopErr))
	}
}

func (g *group) failResource(x *res, err error, what string) {
	if x.state != resource.StateFailed {
		x.failures++
	}
	x.lastFailure = err.Error()
	x.lastFailedAt = time.Now()
	g.setState(x, resource.StateFailed, what+": "+err.Error())
	g.m.log.Warn("resource failed", "group", g.name, "resource", x.spec.Name, "reason", err.Error(), "class", resource.ClassOf(err).String())
}

// classify marks an unclassified error transient, so that errors.Is with
// the class sentinels agrees with resource.ClassOf on every error the
// monitor reports.
func classify(err error) error {
	var e *resource.Error
	if err == nil || errors.As(err, &e) {
		return err
	}
	return resource.Transient(err)
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
	pol := x.spec.Restart.WithDefaults()
	d := x.spec.Restart.Decide(now, x.restarts, cause)
	collateral := resource.IsCollateral(cause) && resource.ClassOf(cause) == resource.ClassTransient && pol.Action != policy.NoRestart
	if collateral {
		// Another resource's deadlock killed the shared host: restart,
		// but do not count it against this resource's threshold.
		delay := max(pol.Delay, 0)
		d = policy.Decision{Action: policy.ActionRestart, Delay: delay, Reason: "collateral failure (the hosting process was killed for another resource): restart, not counted"}
	}
	switch d.Action {
	case policy.ActionRestart:
		if !collateral {
			x.restarts = x.restarts.Add(now, pol.Period)
		}
		x.restartCount++
		x.restartsAll++
		x.restartGen++
		if d.Delay > 0 {
			x.waitRestart = true
			gen := x.restartGen
			x.restartTimer = time.AfterFunc(d.Delay, func() {
				g.send(groupEvent{kind: evRestartDue, x: x, gen: gen})
			})
		} // else the reconcile after this event starts it: no timer round trip
		g.m.log.Info("restarting resource", "group", g.name, "resource", x.spec.Name, "delay", d.Delay, "reason", d.Reason)
		g.emitResource(x, Event{Kind: EventRestart, Delay: d.Delay, Reason: d.Reason})
	default:
		g.fail(x, d, classify(cause))
	}
}

// fail marks the group failed here: everything goes offline, and the
// policy's verdict (EventGroupFailed) is published once every resource is
// stopped (bug 6).
func (g *group) fail(x *res, d policy.Decision, cause error) {
	g.failed = true
	g.failReason = fmt.Sprintf("resource %s: %s", x.spec.Name, d.Reason)
	g.failErr = cause
	g.target = resource.StateOffline
	g.cancelRestarts()
	for _, y := range g.res {
		if y.busy && y.op == opOnline && y.opCancel != nil {
			y.opCancel(fmt.Errorf("%w: the group failed", ErrSuperseded))
		}
	}
	ev := Event{Kind: EventGroupFailed, Resource: x.spec.Name, Type: x.spec.Type, Reason: g.failReason,
		Failover: d.Action == policy.ActionFailover, Class: resource.ClassOf(cause).String()}
	retry := d.Delay
	if d.Action == policy.ActionFailover {
		// Until someone moves it (the cluster layer takes it offline here,
		// which cancels this), this node tries again after the retry
		// period, as a failover cluster does with RetryPeriodOnFailure.
		retry = x.spec.Restart.WithDefaults().RetryPeriod
	}
	if g.managed {
		retry = 0 // managed: where a failed group goes is the caller's decision
	}
	if retry > 0 {
		ev.RetryAfter = retry
	}
	g.failEv = &ev
	g.m.log.Error("group failed", "group", g.name, "reason", g.failReason, "failover", ev.Failover)
}

// takeFailure returns the pending EventGroupFailed once the group is fully
// stopped, and starts the retry timer then.
func (g *group) takeFailure() *Event {
	if g.failEv == nil || !g.quiescent() || g.fencing || g.probing || len(g.stopFailed()) > 0 {
		return nil
	}
	ev := *g.failEv
	g.failEv = nil
	if ev.RetryAfter > 0 && !g.stopping {
		g.retryGen++
		gen := g.retryGen
		g.retryAt = time.Now().Add(ev.RetryAfter)
		g.retryTimer = time.AfterFunc(ev.RetryAfter, func() { g.send(groupEvent{kind: evRetryDue, gen: gen}) })
	}
	ev = withGroup(ev, g.name)
	return &ev
}

// reconcile starts whatever operations move the resources toward the target.
func (g *group) reconcile() {
	if g.fencing || g.probing {
		return
	}
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
		if x.busy {
			continue
		}
		switch {
		case x.state == resource.StateOnline && g.dependentsDown(x):
			g.startOp(x, opOffline, errors.New("group going offline"))
		case x.state == resource.StateStopFailed && x.retryStop:
			x.retryStop = false
			g.startOp(x, opTerminate, errors.New("retrying the failed stop"))
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

// quiescent: nothing in flight and nothing online.
func (g *group) quiescent() bool {
	for _, x := range g.res {
		if x.busy || x.state == resource.StateOnline {
			return false
		}
	}
	return true
}

// opsDone: no operation goroutine is left, not even a superseded one that
// may still call the resource (so it can be closed).
func (g *group) opsDone() bool {
	for _, x := range g.res {
		if x.ops > 0 {
			return false
		}
	}
	return true
}

func (g *group) stopFailed() []string {
	var out []string
	for _, x := range g.res {
		if x.state == resource.StateStopFailed {
			out = append(out, x.spec.Name)
		}
	}
	return out
}

// opCtx is the context of one operation: cancelled (with a cause) when the
// operation is superseded.
func (g *group) opCtx(x *res) context.Context {
	ctx, cancel := context.WithCancelCause(context.Background())
	x.opCancel = cancel
	return ctx
}

// startOp runs an operation on its own goroutine and marks the resource
// busy until the result comes back.
func (g *group) startOp(x *res, op opKind, why error) {
	g.stopPoller(x)
	if x.opCancel != nil {
		x.opCancel(nil)
	}
	x.busy = true
	x.ops++
	x.op = op
	x.epoch++
	epoch := x.epoch
	ctx := g.opCtx(x)
	switch op {
	case opOnline:
		g.setState(x, resource.StateOnlinePending, "bringing online")
		g.schedulePolls(x)
	case opOffline:
		g.setState(x, resource.StateOfflinePending, why.Error())
	}
	g.m.wg.Go(func() {
		var err, stopErr error
		switch op {
		case opOnline:
			for len(x.push) > 0 { // failures pushed before this Online are stale
				<-x.push
			}
			err = g.invoke(ctx, x, MethodOnline, x.r.Online)
			if err != nil {
				stopErr = g.stopHard(x, "online failed: "+err.Error())
			}
		case opOffline:
			err = g.invoke(ctx, x, MethodOffline, x.r.Offline)
			if err != nil {
				stopErr = g.stopHard(x, "offline failed: "+err.Error())
			}
		case opTerminate:
			stopErr = g.stopHard(x, why.Error())
			err = why
		}
		g.send(groupEvent{kind: evOpDone, x: x, op: op, epoch: epoch, err: err, stopErr: stopErr})
	})
}

// startPoller starts polling x, online in the current epoch: the first
// LooksAlive at once, then the sweeps (poll.go).
func (g *group) startPoller(x *res) {
	p := newPoller(g, x, x.epoch)
	x.poller = p
	x.live.Store(p)
	p.kick(wLooks, nil)
	if len(x.push) > 0 { // pushed after Online returned, before this
		p.kick(wPushed, nil)
	}
}

func (g *group) stopPoller(x *res) {
	x.live.Store(nil)
	if x.poller != nil {
		x.poller.stop()
		x.poller = nil
	}
}

// pushedErr is the failure of a resource that reported it itself.
func pushedErr(err error) error { return fmt.Errorf("failure reported by the resource: %w", err) }

// closeResources runs once, on the actor, when it exits (bug 4). It takes
// each resource's call slot first, so that no health check is in flight or
// starts after Close (a call abandoned as deadlocked is waited for at most
// the deadlock timeout).
func (g *group) closeResources() error {
	var errs []error
	for _, x := range g.res {
		t := time.NewTimer(x.tm().DeadlockTimeout)
		select {
		case x.sem <- struct{}{}:
			x.closed.Store(true)
			<-x.sem
		case <-t.C:
			x.closed.Store(true)
		}
		t.Stop()
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
	failed := g.takeFailure()
	quiet := g.quiescent() && !g.fencing && !g.probing
	var st resource.State
	switch {
	case quiet && len(g.stopFailed()) > 0:
		st = resource.StateStopFailed
	case g.failed:
		st = resource.StateFailed
		if !quiet {
			st = resource.StateOfflinePending
		}
	case g.target == resource.StateOnline:
		st = resource.StateOnline
		if g.fencing || g.probing {
			st = resource.StateOnlinePending
		}
		for _, x := range g.res {
			if x.state != resource.StateOnline || x.busy {
				st = resource.StateOnlinePending
				break
			}
		}
	default:
		st = resource.StateOffline
		if !quiet {
			st = resource.StateOfflinePending
		}
	}
	var changed *Event
	if st != g.state {
		from := g.state
		g.state = st
		reason := g.failReason
		if reason == "" {
			reason = "target " + g.target.String()
		}
		if st == resource.StateStopFailed {
			reason = fmt.Sprintf("stop failed: %v", g.stopFailed())
		}
		g.m.log.Info("group state", "group", g.name, "from", from.String(), "to", st.String())
		changed = &Event{Kind: EventGroupStateChanged, Group: g.name, From: from, To: st, Reason: reason}
	}
	// The snapshot before the group's events and the answers, so that
	// whoever reacts to them sees their effect.
	g.publishSnapshot()
	if failed != nil {
		g.m.publish(*failed)
	}
	if changed != nil {
		g.m.publish(*changed)
	}
	kept := g.waiters[:0]
	for _, w := range g.waiters {
		switch {
		case w.kind == cmdClear || w.kind == cmdUpdate: // done: the snapshot shows it
			w.done <- result{gen: w.gen}
		case w.kind == cmdFence && g.fenced != nil:
			var err error
			if !g.fenced.Down {
				err = fmt.Errorf("group %q: %w: %v", g.name, ErrStopFailed, g.fenced.StopFailed)
			}
			w.done <- result{gen: w.gen, fence: *g.fenced, err: err}
		case w.kind == cmdProbe && g.probed != nil:
			w.done <- result{gen: w.gen, probe: *g.probed}
		case w.kind == cmdOnline && st == resource.StateOnline:
			w.done <- result{gen: w.gen}
		case w.kind == cmdOnline && g.failed && quiet: // failed here and stopped
			w.done <- result{gen: w.gen, err: fmt.Errorf("group %q: %w: %s: %w", g.name, ErrGroupFailed, g.failReason, g.failErr)}
		case w.kind == cmdOffline && quiet && g.target == resource.StateOffline:
			var err error
			if bad := g.stopFailed(); len(bad) > 0 {
				err = fmt.Errorf("group %q: %w: %v may still be running", g.name, ErrStopFailed, bad)
			}
			w.done <- result{gen: w.gen, err: err}
		default: // cmdStop is answered when the actor exits, fence and probe by their events
			kept = append(kept, w)
		}
	}
	g.waiters = kept
	g.fenced, g.probed = nil, nil
}

// publishSnapshot publishes the group's status if it changed. It runs after
// every batch of events, so it must not cost a copy of the group: the
// snapshot's Resources are updated in place under snapMu (only what
// changed is written, nothing is allocated), and readers copy them when
// they read (snapshot, and a Watch's Next, which reads the latest status of
// a changed group then). A group of 1,000 resources coming online one by
// one used to allocate and copy the whole slice per batch: O(n^2).
func (g *group) publishSnapshot() {
	s := GroupStatus{Name: g.name, State: g.state, Target: g.target, Failed: g.failed, Reason: g.failReason,
		Managed: g.managed, Generation: g.gen, RetryAt: g.retryAt}
	if g.failed && g.failErr != nil {
		s.Class = resource.ClassOf(g.failErr).String()
	}
	g.snapMu.Lock()
	cur := g.snap.Resources
	changed := g.snap.Name == "" || len(cur) != len(g.res)
	if len(cur) != len(g.res) {
		cur = make([]ResourceStatus, len(g.res))
	}
	for i, x := range g.res {
		if st := x.status(); !cur[i].equal(st) {
			cur[i] = st
			changed = true
		}
	}
	s.Resources = cur
	if !changed && s.equal(g.snap) {
		g.snapMu.Unlock()
		return
	}
	s.Seq = g.m.seq.Add(1)
	g.snap = s
	g.snapMu.Unlock()
	g.m.watchChanged(g, s.Seq)
}

func (x *res) status() ResourceStatus {
	return ResourceStatus{
		Name:            x.spec.Name,
		Type:            x.spec.Type,
		State:           x.state,
		DependsOn:       x.spec.DependsOn,
		Restarts:        x.restartCount,
		LastFailure:     x.lastFailure,
		LastFailureTime: x.lastFailedAt,
		RestartPending:  x.waitRestart,
		RestartsTotal:   x.restartsAll,
		Failures:        x.failures,
		FailuresPushed:  x.pushedAll,
	}
}

// snapshot returns a copy of the group's latest published status.
func (g *group) snapshot() GroupStatus {
	g.snapMu.Lock()
	defer g.snapMu.Unlock()
	s := g.snap
	s.Resources = slices.Clone(s.Resources)
	return s
}
