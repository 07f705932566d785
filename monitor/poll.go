package monitor

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/sftkit/sft/policy"
	"github.com/sftkit/sft/resource"
)

// poll runs the health checks of an online resource until ctx ends or a
// failure is found: LooksAlive at once and then every LooksAliveInterval,
// IsAlive every IsAliveInterval, IsAlive at once when LooksAlive fails, and
// a pushed failure ends it immediately. Both checks come due through the
// monitor's sweeper (sweep.go): one ticker per interval and check for the
// whole monitor (so the first IsAlive comes within one IsAliveInterval of
// going online, not exactly one after), and for a resource that answers
// from memory (resource.InstantChecker, resource.InstantIsAliveChecker) an
// inline call that wakes no goroutine.
//
// Health checks are the hot path (1,000 resources polled every second), so
// the poller calls them on its own goroutine, without a goroutine, channel
// or context per call: a per-poller watchdog timer enforces the call
// timeout and the deadlock timeout, the way the resource monitor's deadlock
// thread does. When a check deadlocks, the watchdog reports the failure and
// the poller, stuck in the call, exits when (if ever) the call returns. The
// sweep's inline LooksAlive runs under the same watchdog (bug 8): when it
// overruns, the watchdog hands the sweep to a fresh goroutine, so one stuck
// resource does not stall the polling of the others.
func (g *group) poll(ctx context.Context, x *res, epoch int) {
	w := newWatchdog(g, x, epoch)
	defer w.stop()
	fail := func(err error, pushed bool) {
		if ctx.Err() == nil {
			g.send(groupEvent{kind: evPollFailed, x: x, epoch: epoch, err: err, pushed: pushed})
		}
	}
	// check returns false when polling must stop.
	check := func(deep bool) bool {
		if !deep {
			err, abandoned := w.call(ctx, MethodLooksAlive, x.r.LooksAlive)
			if abandoned || ctx.Err() != nil {
				return false
			}
			if err == nil {
				return true
			}
			g.m.log.Info("LooksAlive failed, confirming with IsAlive", "group", g.name, "resource", x.spec.Name, "err", err)
		}
		err, abandoned := w.call(ctx, MethodIsAlive, x.r.IsAlive)
		if abandoned || ctx.Err() != nil {
			return false
		}
		if err == nil {
			return true
		}
		fail(err, false)
		return false
	}
	if !check(false) {
		return
	}
	tm := x.tm()
	e := newSweepEntry(g, x, w, ctx, false)
	defer g.m.sweep.add(e, tm.LooksAliveInterval)()
	d := newSweepEntry(g, x, w, ctx, true)
	defer g.m.sweep.add(d, tm.IsAliveInterval)()
	for {
		select {
		case <-ctx.Done():
			return
		case err := <-x.push:
			fail(pushedErr(err), true)
			return
		case <-e.due:
			if !check(false) {
				return
			}
		case err := <-e.failed:
			// The sweep's inline LooksAlive failed: confirm with IsAlive.
			g.m.log.Info("LooksAlive failed, confirming with IsAlive", "group", g.name, "resource", x.spec.Name, "err", err)
			if !check(true) {
				return
			}
		case <-d.due:
			if !check(true) {
				return
			}
		case err := <-d.failed:
			// The sweep's inline IsAlive failed.
			fail(err, false)
			return
		}
	}
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

func (w *watchdog) stop() {
	w.timer.Stop()
	w.mu.Lock()
	defer w.mu.Unlock()
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
	if w.cctx == nil || w.cctx.Context.Err() != nil {
		// One context serves every call of this poller until a call times
		// out and cancels it.
		base, cancel := context.WithCancelCause(parent)
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
			err = fmt.Errorf("%s: no answer within %s: %w", method, tm.CallTimeout, ErrCallTimeout)
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
		terr := fmt.Errorf("%s: no answer within %s: %w", method, tm.CallTimeout, ErrCallTimeout)
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
