package monitor

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/sftkit/sft/policy"
	"github.com/sftkit/sft/resource"
)

// poller polls one online resource for one epoch (from its Online to the
// next operation): LooksAlive at once and then every LooksAliveInterval,
// IsAlive every IsAliveInterval, IsAlive at once when LooksAlive fails, and
// a pushed failure fails the resource immediately. Both checks come due
// through the monitor's sweeper (sweep.go): one ticker per interval and
// check for the whole monitor (so the first IsAlive comes within one
// IsAliveInterval of going online, not exactly one after), and for a
// resource that answers from memory (resource.InstantChecker,
// resource.InstantIsAliveChecker) an inline call that wakes no goroutine.
//
// A poller has no standing goroutine (issue 15: a thousand idle pollers,
// each blocked in a select, cost about 7 MB of stacks and channels). Work
// is posted to it (kick) as bits: the first check, a check the sweep could
// not run inline, an inline check that failed, a failure pushed while the
// actor's queue was full; the first kick starts a worker goroutine, which
// drains the bits and exits when none is left. So a healthy instant
// resource costs no goroutine at all, any other one a goroutine only while
// a check runs.
//
// Health checks are the hot path (1,000 resources polled every second), so
// they run without a goroutine, channel or context per call: a per-poller
// watchdog timer enforces the call timeout and the deadlock timeout, the
// way the resource monitor's deadlock thread does. When a check deadlocks,
// the watchdog reports the failure and the worker, stuck in the call,
// exits when (if ever) the call returns. The sweep's inline calls run under
// the same watchdog (bug 8): when one overruns, the watchdog hands the
// sweep to a fresh goroutine, so one stuck resource does not stall the
// polling of the others.
type poller struct {
	g      *group
	x      *res
	epoch  int
	ctx    context.Context // ends when polling stops
	cancel context.CancelFunc
	w      *watchdog
	looks  sweepEntry
	deep   sweepEntry

	mu        sync.Mutex
	work      work
	failErr   error // wFailed: the inline IsAlive's error
	lookErr   error // wConfirm: the inline LooksAlive's error
	running   bool  // a worker goroutine is draining work
	stopped   bool
	scheduled bool // registered with the sweeper (after the first check)
}

// work is what a poller has to do, as bits, in the order it is done.
type work uint8

const (
	wPushed  work = 1 << iota // a failure waits in x.push
	wFailed                   // the sweep's inline IsAlive failed: fail
	wConfirm                  // the sweep's inline LooksAlive failed: IsAlive
	wDeep                     // IsAlive is due
	wLooks                    // LooksAlive is due (the first check too)
)

func newPoller(g *group, x *res, epoch int) *poller {
	p := &poller{g: g, x: x, epoch: epoch}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	p.w = newWatchdog(g, x, epoch)
	p.looks = sweepEntry{p: p}
	p.looks.instant, _ = x.r.(resource.InstantChecker)
	p.deep = sweepEntry{p: p, deep: true}
	p.deep.thorough, _ = x.r.(resource.InstantIsAliveChecker)
	return p
}

// kick posts work (err: the failed inline check's error) and starts a
// worker unless one is running.
func (p *poller) kick(b work, err error) {
	p.mu.Lock()
	if p.stopped {
		p.mu.Unlock()
		return
	}
	p.work |= b
	switch b {
	case wFailed:
		p.failErr = err
	case wConfirm:
		p.lookErr = err
	}
	start := !p.running
	p.running = true
	p.mu.Unlock()
	if start {
		p.g.m.wg.Go(p.drain)
	}
}

// drain is the worker: it does the posted work, most urgent first, until
// none is left or polling stops.
func (p *poller) drain() {
	for {
		p.mu.Lock()
		b := p.work & -p.work // the lowest bit: the most urgent
		if p.stopped || b == 0 {
			p.running = false
			p.mu.Unlock()
			return
		}
		p.work &^= b
		var err error
		switch b {
		case wFailed:
			err, p.failErr = p.failErr, nil
		case wConfirm:
			err, p.lookErr = p.lookErr, nil
		}
		p.mu.Unlock()
		if !p.do(b, err) {
			p.stop()
			return
		}
	}
}

// do does one piece of work; it returns false when polling must stop (a
// failure was reported, or the call was abandoned, or polling was stopped).
func (p *poller) do(b work, err error) bool {
	x := p.x
	switch b {
	case wPushed:
		select {
		case err := <-x.push:
			p.fail(pushedErr(err), true)
			return false
		default: // taken already (a kick from both sides of a race)
			return true
		}
	case wFailed:
		p.fail(err, false)
		return false
	case wConfirm:
		p.g.m.log.Info("LooksAlive failed, confirming with IsAlive", "group", p.g.name, "resource", x.spec.Name, "err", err)
		return p.check(true)
	case wDeep:
		return p.check(true)
	}
	if !p.check(false) {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.scheduled && !p.stopped {
		// After the first check, as before: the sweeps take over.
		p.scheduled = true
		tm := x.tm()
		p.looks.remove = p.g.m.sweep.add(&p.looks, tm.LooksAliveInterval)
		p.deep.remove = p.g.m.sweep.add(&p.deep, tm.IsAliveInterval)
	}
	return true
}

// check runs LooksAlive (then IsAlive if it fails) or, deep, IsAlive on
// the worker. It returns false when polling must stop.
func (p *poller) check(deep bool) bool {
	x := p.x
	if !deep {
		err, abandoned := p.w.call(p.ctx, MethodLooksAlive, x.r.LooksAlive)
		if abandoned || p.ctx.Err() != nil {
			return false
		}
		if err == nil {
			return true
		}
		p.g.m.log.Info("LooksAlive failed, confirming with IsAlive", "group", p.g.name, "resource", x.spec.Name, "err", err)
	}
	err, abandoned := p.w.call(p.ctx, MethodIsAlive, x.r.IsAlive)
	if abandoned || p.ctx.Err() != nil {
		return false
	}
	if err == nil {
		return true
	}
	p.fail(err, false)
	return false
}

// fail reports a failure to the actor unless polling was stopped.
func (p *poller) fail(err error, pushed bool) {
	if p.ctx.Err() == nil {
		p.g.send(groupEvent{kind: evPollFailed, x: p.x, epoch: p.epoch, err: err, pushed: pushed})
	}
}

// stop ends polling: no more work is taken, the sweeps forget the
// resource, and a call in flight is cancelled (its watchdog still bounds
// it: a deadlocked call is reported and its host killed all the same).
// Idempotent; called by the actor and by a worker that found a failure.
func (p *poller) stop() {
	p.mu.Lock()
	if p.stopped {
		p.mu.Unlock()
		return
	}
	p.stopped = true
	p.work = 0
	p.failErr, p.lookErr = nil, nil
	rl, rd := p.looks.remove, p.deep.remove
	p.mu.Unlock()
	p.cancel()
	if rl != nil {
		rl()
		rd()
	}
	p.w.stop()
}

// timeoutSlack: a health check is timed out only once it runs past its
// deadline, not at it: one that answers exactly at its call timeout (its own
// timeout equal to call_timeout, bug 2) is on time.
const timeoutSlack = time.Millisecond

// watchdog bounds the health checks of one poller (and the sweep's inline
// LooksAlive of its resource). Calls of one resource are serialized, so it
// guards one call at a time. The timer fires at the call's deadline and
// again at the end of the deadlock grace; a firing that finds no call in
// flight, or comes before the deadline it is armed for, is stale and does
// nothing (bug 2: a call returning exactly at its timeout).
type watchdog struct {
	g     *group
	x     *res
	epoch int
	timer *time.Timer

	mu       sync.Mutex
	stopped  bool
	running  bool      // a call is in flight
	stage    int       // 0 running, 1 timed out, 2 deadlocked (abandoned)
	due      time.Time // when the current stage ends
	method   string
	start    time.Time
	tm       resource.Timing
	cctx     *callCtx
	cancel   context.CancelCauseFunc
	onExpire func() // called (once) when the current call times out
}

func newWatchdog(g *group, x *res, epoch int) *watchdog {
	w := &watchdog{g: g, x: x, epoch: epoch}
	w.timer = time.AfterFunc(time.Hour, w.fire)
	w.timer.Stop()
	return w
}

// stop disarms the watchdog; a call in flight stays bounded (its timer
// stays armed: a deadlock is still reported, and the host killed), and
// run stops the timer when the call returns.
func (w *watchdog) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.running {
		w.timer.Stop()
	}
	w.stopped = true
	if w.cancel != nil {
		w.cancel(nil)
	}
}

// call runs one health check under the call timeout. It reports the
// check's error, and abandoned=true when the watchdog gave up on the call
// (deadlock): the failure has been reported and the poller must stop.
func (w *watchdog) call(parent context.Context, method string, fn func(context.Context) error) (err error, abandoned bool) {
	x := w.x
	select {
	case x.sem <- struct{}{}:
	default:
		// An earlier call (abandoned, or an op) still holds the slot:
		// take the general path, which waits for it within the timeout.
		return w.g.invoke(parent, x, method, fn), false
	}
	return w.run(parent, method, fn, nil)
}

// run runs fn with the slot held (it releases it). onExpire, if set, is
// called from the watchdog when the call times out.
func (w *watchdog) run(parent context.Context, method string, fn func(context.Context) error, onExpire func()) (err error, abandoned bool) {
	x := w.x
	if err := parent.Err(); err != nil || x.closed.Load() { // the poller is being stopped
		<-x.sem
		if err == nil {
			err = context.Canceled
		}
		return err, false
	}
	tm := x.tm()
	now := time.Now()
	w.mu.Lock()
	if w.stopped { // stopped since: stop cancels only the context it saw
		w.mu.Unlock()
		<-x.sem
		return context.Canceled, false
	}
	if w.cctx == nil || w.cctx.Context.Err() != nil {
		// One context serves every call of this poller until a call times
		// out and cancels it, or stop does. Not derived from parent: that
		// would register it with parent (a map per resource, issue 15).
		base, cancel := context.WithCancelCause(context.Background())
		w.cctx, w.cancel = &callCtx{Context: base}, cancel
	}
	ctx := w.cctx
	ctx.setDeadline(now.Add(tm.CallTimeout))
	w.running = true
	w.stage = 0
	w.due = now.Add(tm.CallTimeout + timeoutSlack)
	w.method = method
	w.start = now
	w.tm = tm
	w.onExpire = onExpire
	w.timer.Reset(tm.CallTimeout + timeoutSlack)
	w.mu.Unlock()

	err = fn(ctx)

	w.mu.Lock()
	stage := w.stage
	w.running = false
	w.onExpire = nil
	w.timer.Stop()
	start := w.start
	w.mu.Unlock()
	// Released only now: the sweep's inline call and the poller's share
	// this watchdog, and the next holder of the slot arms it; releasing
	// before the bookkeeping above let it be disarmed under a running call.
	<-x.sem
	switch stage {
	case 1:
		if err != nil || time.Since(start) > tm.CallTimeout {
			err = noAnswer(method, tm.CallTimeout)
		}
	case 2:
		return nil, true
	}
	if err != nil {
		err = fmt.Errorf("%s: %w", method, err)
	}
	if o := w.g.m.cfg.Observer; o != nil {
		o(CallInfo{Group: w.g.name, Resource: x.spec.Name, Type: x.spec.Type, Method: method, Duration: time.Since(start), Err: err})
	}
	return err, false
}

// fire runs on the timer's goroutine: first at the call timeout (cancel the
// call's context and wait the deadlock grace), then at the deadlock timeout
// (abandon the call, kill the host, report the failure).
func (w *watchdog) fire() {
	w.mu.Lock()
	if !w.running || time.Now().Before(w.due) {
		w.mu.Unlock() // stale: the call returned, or a newer one is armed
		return
	}
	method, tm := w.method, w.tm
	switch w.stage {
	case 0:
		w.stage = 1
		terr := noAnswer(method, tm.CallTimeout)
		w.cctx.expire()
		w.cancel(terr)
		// Deadlocked DeadlockTimeout after the call started.
		w.due = w.start.Add(tm.DeadlockTimeout)
		w.timer.Reset(time.Until(w.due))
		onExpire := w.onExpire
		w.onExpire = nil
		w.mu.Unlock()
		if onExpire != nil {
			onExpire()
		}
		w.g.emitResource(w.x, Event{Kind: EventCallTimedOut, Method: method, Reason: terr.Error()})
		return
	case 1:
		w.stage = 2
	default:
		w.mu.Unlock()
		return
	}
	start, report := w.start, !w.stopped
	w.mu.Unlock()
	derr := fmt.Errorf("%s: still running %s after its deadline: %w", method, policy.DeadlockGrace(tm), ErrDeadlocked)
	w.g.deadlocked(w.x, method, derr)
	if o := w.g.m.cfg.Observer; o != nil {
		o(CallInfo{Group: w.g.name, Resource: w.x.spec.Name, Type: w.x.spec.Type, Method: method, Duration: time.Since(start), Err: derr})
	}
	if report { // the abandoned call's poller will not report it
		w.g.send(groupEvent{kind: evPollFailed, x: w.x, epoch: w.epoch, err: derr})
	}
}
