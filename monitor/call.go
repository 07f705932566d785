package monitor

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/sftkit/sft/internal/callhint"
	"github.com/sftkit/sft/policy"
	"github.com/sftkit/sft/resource"
)

// Errors of calls the monitor gave up on. Both are transient for the
// restart policy.
var (
	// ErrCallTimeout: a call outlived its timeout (the pending timeout for
	// Online and Offline, the call timeout for LooksAlive and IsAlive).
	ErrCallTimeout = errors.New("call timed out")
	// ErrDeadlocked: a call outlived the deadlock timeout, ignoring its
	// context and Terminate; the monitor abandoned it and, if the resource
	// is a resource.ProcessKiller, killed its hosting process.
	ErrDeadlocked = errors.New("call deadlocked")
)

// Method names, as used in events and CallInfo.
const (
	MethodOnline      = "Online"
	MethodOffline     = "Offline"
	MethodLooksAlive  = "LooksAlive"
	MethodIsAlive     = "IsAlive"
	MethodTerminate   = "Terminate"
	MethodProbe       = "Probe"
	MethodKillProcess = "KillProcess"
)

// CallInfo describes one finished (or abandoned) call, for metrics.
type CallInfo struct {
	Group, Resource, Type, Method string
	Duration                      time.Duration
	Err                           error
}

// callCtx is the context a resource's call runs under: it carries the
// call's deadline (bug 9), which a progress report moves (Deadline returns
// the current one), and ends at that deadline with DeadlineExceeded, or
// earlier when the call is cancelled.
type callCtx struct {
	context.Context // cancelled by the monitor
	mu              sync.Mutex
	deadline        time.Time
	expired         bool
}

func (c *callCtx) Deadline() (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.deadline, true
}

func (c *callCtx) Err() error {
	err := c.Context.Err()
	if err == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.expired {
		return context.DeadlineExceeded
	}
	return err
}

func (c *callCtx) setDeadline(d time.Time) {
	c.mu.Lock()
	c.deadline = d
	c.mu.Unlock()
}

func (c *callCtx) expire() {
	c.mu.Lock()
	c.expired = true
	c.mu.Unlock()
}

// invoke runs one serialized call (all but Terminate) of x under its
// timeout. For Online and Offline (pending) the deadline is the pending
// timeout, extended by each progress report. The call's ctx carries the
// deadline. When the deadline passes, or parent ends (the operation was
// superseded), the call's ctx is cancelled and a pending call is
// terminated at once, so that a hung Online is cut short. A call that has
// not returned DeadlockGrace after that is abandoned: the hosting process
// is killed if possible, and ErrDeadlocked is returned. The call's
// goroutine keeps the serialization slot until the call really returns, so
// no second call overlaps it. A resource whose calls return at their
// ctx's end (callhint.ReturnsAtContextEnd: a plugin proxy) has its call run
// on this goroutine instead (invokeInline): the same outcomes, without the
// call's own goroutine.
func (g *group) invoke(parent context.Context, x *res, method string, fn func(context.Context) error) error {
	tm := x.tm()
	pending := isPending(method)
	timeout := tm.CallTimeout
	slack := timeoutSlack // a health check is late only past its deadline
	if pending {
		timeout, slack = tm.PendingTimeout, 0
	}
	start := time.Now()
	// The previous call either returns or is abandoned within its
	// deadlock timeout: wait for the slot that long at least, so that a
	// check that is slow but on time does not fail the next one.
	if err := acquireSlot(parent, x, method, max(timeout, tm.DeadlockTimeout)); err != nil {
		return err
	}
	// Two small frames rather than one large: a call through a plugin
	// proxy then runs on a 4 KB stack (fresh stack memory is what a
	// thousand calls in flight cost most).
	if _, ok := x.r.(callhint.ReturnsAtContextEnd); ok {
		return g.invokeInline(parent, x, method, fn, timeout, slack, start)
	}
	return g.invokeAbandonable(parent, x, method, fn, tm, timeout, slack, start)
}

// acquireSlot takes x's call slot, waiting for the previous call at most
// slotWait, and checks that the call may still run.
func acquireSlot(parent context.Context, x *res, method string, slotWait time.Duration) error {
	select {
	case x.sem <- struct{}{}:
	default:
		timer := time.NewTimer(slotWait)
		defer timer.Stop()
		select {
		case x.sem <- struct{}{}:
		case <-parent.Done():
			return fmt.Errorf("%s: waiting for the previous call to return: %w", method, context.Cause(parent))
		case <-timer.C:
			// An abandoned (deadlocked) call still holds the slot.
			return fmt.Errorf("%s: the previous call has not returned within %s: %w", method, slotWait, ErrCallTimeout)
		}
	}
	if err := parent.Err(); err != nil {
		<-x.sem
		return fmt.Errorf("%s: %w", method, context.Cause(parent))
	}
	if x.closed.Load() {
		<-x.sem
		return fmt.Errorf("%s: %w", method, ErrGroupStopping)
	}
	return nil
}

// invokeAbandonable runs fn on a goroutine of its own, x's slot held, and
// abandons it if it outlives its deadline by the deadlock grace.
func (g *group) invokeAbandonable(parent context.Context, x *res, method string, fn func(context.Context) error, tm resource.Timing, timeout, slack time.Duration, start time.Time) error {
	pending := isPending(method)
	base, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	cctx := &callCtx{Context: base, deadline: time.Now().Add(timeout)}
	timer := time.NewTimer(timeout + slack)
	defer timer.Stop()
	var ctx context.Context = cctx
	progress := make(chan string, 1)
	if pending {
		ctx = resource.WithProgress(ctx, func(msg string) {
			select {
			case progress <- msg:
			default:
			}
		})
	}
	done := make(chan error, 1)
	g.m.wg.Go(func() {
		err := fn(ctx)
		<-x.sem
		done <- err
	})
	observe := func(err error) error { return g.observe(x, method, start, err) }
	var cut error
	for cut == nil {
		select {
		case err := <-done:
			return observe(returned(method, err))
		case msg := <-progress:
			g.logProgress(x, method, msg)
			cctx.setDeadline(time.Now().Add(timeout))
			timer.Reset(timeout)
		case <-parent.Done():
			cut = fmt.Errorf("%s: %w", method, context.Cause(parent))
			cancel(cut)
		case <-timer.C:
			cut = noAnswer(method, timeout)
			cctx.expire()
			cancel(cut)
			g.emitTimedOut(x, method, cut)
		}
	}
	if pending {
		g.terminate(x, "terminating: "+cut.Error())
	}
	grace := time.NewTimer(policy.DeadlockGrace(tm))
	defer grace.Stop()
	select {
	case err := <-done:
		return observe(returnedAfter(cut, err))
	case <-grace.C:
		derr := fmt.Errorf("%s: still running %s after its deadline: %w", method, policy.DeadlockGrace(tm), ErrDeadlocked)
		g.deadlocked(x, method, derr)
		return observe(derr)
	}
}

// observe reports a finished call to the Observer and returns its error.
func (g *group) observe(x *res, method string, start time.Time, err error) error {
	if o := g.m.cfg.Observer; o != nil {
		o(CallInfo{Group: g.name, Resource: x.spec.Name, Type: x.spec.Type, Method: method, Duration: time.Since(start), Err: err})
	}
	return err
}

// invokeInline is invoke for a resource whose calls return as soon as their
// ctx ends (callhint.ReturnsAtContextEnd, a plugin proxy): the call runs on
// this goroutine, x's slot held, and a timer and parent's end cancel its
// ctx as invoke's loop would. The outcomes are invoke's, in the same words
// and classes; only the abandoning of a call that does not return is left
// out, as it cannot happen.
func (g *group) invokeInline(parent context.Context, x *res, method string, fn func(context.Context) error, timeout, slack time.Duration, start time.Time) error {
	pending := isPending(method)
	base, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	cctx := &callCtx{Context: base, deadline: time.Now().Add(timeout)}
	var (
		mu       sync.Mutex
		cut      error
		timedOut bool
	)
	end := func(err error, expired bool) {
		mu.Lock()
		if cut != nil {
			mu.Unlock()
			return
		}
		cut, timedOut = err, expired
		mu.Unlock()
		if expired {
			cctx.expire()
		}
		cancel(err)
	}
	timer := time.AfterFunc(timeout+slack, func() { end(noAnswer(method, timeout), true) })
	defer timer.Stop()
	stopParent := context.AfterFunc(parent, func() {
		end(fmt.Errorf("%s: %w", method, context.Cause(parent)), false)
	})
	defer stopParent()
	var ctx context.Context = cctx
	if pending {
		ctx = resource.WithProgress(ctx, func(msg string) {
			g.logProgress(x, method, msg)
			mu.Lock()
			if cut == nil {
				cctx.setDeadline(time.Now().Add(timeout))
				timer.Reset(timeout)
			}
			mu.Unlock()
		})
	}
	err := fn(ctx)
	<-x.sem
	mu.Lock()
	c, expired := cut, timedOut
	mu.Unlock()
	if c == nil {
		return g.observe(x, method, start, returned(method, err))
	}
	if expired {
		g.emitTimedOut(x, method, c)
	}
	if pending {
		g.terminate(x, "terminating: "+c.Error())
	}
	return g.observe(x, method, start, returnedAfter(c, err))
}

// The outcomes both invoke paths share.

func isPending(method string) bool { return method == MethodOnline || method == MethodOffline }

// returned is the error of a call that returned on time.
func returned(method string, err error) error {
	if err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	return nil
}

// noAnswer is the error of a call cut at its timeout.
func noAnswer(method string, timeout time.Duration) error {
	return fmt.Errorf("%s: no answer within %s: %w", method, timeout, ErrCallTimeout)
}

// returnedAfter is the error of a call cut (cut) that returned err since:
// the cut, keeping the class of what the call returned (bug 12) unless
// that was only the cut seen from inside.
func returnedAfter(cut, err error) error {
	if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, ErrCallTimeout) {
		return fmt.Errorf("%w (returned after: %w)", cut, err)
	}
	return cut
}

func (g *group) emitTimedOut(x *res, method string, cut error) {
	g.emitResource(x, Event{Kind: EventCallTimedOut, Method: method, Reason: cut.Error(), Class: resource.ClassTransient.String()})
}

func (g *group) logProgress(x *res, method, msg string) {
	g.m.log.Debug("progress", "group", g.name, "resource", x.spec.Name, "method", method, "message", msg)
}

// deadlocked reports an abandoned call and kills the hosting process if the
// resource offers a way. It reports whether the host was killed.
func (g *group) deadlocked(x *res, method string, err error) bool {
	reason := err.Error()
	killed := false
	if k, ok := x.r.(resource.ProcessKiller); ok {
		if kerr := k.KillProcess(reason); kerr != nil {
			reason += "; killing the host process failed: " + kerr.Error()
		} else {
			killed = true
			reason += "; host process killed"
		}
	} else {
		reason += "; the resource runs in-process and cannot be killed: it stays failed until the call returns"
	}
	g.m.log.Error("call deadlocked", "group", g.name, "resource", x.spec.Name, "method", method, "reason", reason)
	g.emitResource(x, Event{Kind: EventCallDeadlocked, Method: method, Reason: reason})
	return killed
}

// errHostKilled: Terminate did not return but the hosting process was
// killed, which takes the resource down with it.
var errHostKilled = errors.New("host process killed")

// terminate calls Terminate outside the serialization (it may overlap any
// call), bounded by the call timeout and the deadlock timeout. An error
// wrapping errHostKilled means the resource is down all the same.
func (g *group) terminate(x *res, reason string) error {
	tm := x.tm()
	g.m.log.Debug("terminate", "group", g.name, "resource", x.spec.Name, "reason", reason)
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), tm.CallTimeout)
	defer cancel()
	done := make(chan error, 1)
	g.m.wg.Go(func() { done <- x.r.Terminate(ctx) })
	deadlock := time.NewTimer(tm.DeadlockTimeout)
	defer deadlock.Stop()
	var err error
	select {
	case err = <-done:
		if err != nil {
			err = fmt.Errorf("%s: %w", MethodTerminate, err)
		}
	case <-deadlock.C:
		err = fmt.Errorf("%s: still running after %s: %w", MethodTerminate, tm.DeadlockTimeout, ErrDeadlocked)
		if g.deadlocked(x, MethodTerminate, err) {
			err = fmt.Errorf("%w: %w", errHostKilled, err)
		}
	}
	if o := g.m.cfg.Observer; o != nil {
		o(CallInfo{Group: g.name, Resource: x.spec.Name, Type: x.spec.Type, Method: MethodTerminate, Duration: time.Since(start), Err: err})
	}
	if err != nil {
		g.m.log.Warn("terminate failed", "group", g.name, "resource", x.spec.Name, "err", err)
	}
	return err
}

// stopHard makes sure x is down: Terminate; if that fails, kill the
// hosting process (resource.ProcessKiller) and Terminate again, on the
// relaunched host, because what the dead process held (an address bound to
// an interface, a unit) outlives it. A Terminate that failed collaterally
// (resource.Collateral: it never reached a live hosting process, say one
// still being relaunched after a crash) is tried again without killing
// anything: the kill would take down the fresh process shared with every
// other resource, which fail and Terminate in turn (with a thousand
// resources in one plugin that never ended). It returns nil when x is
// surely down, else why not: the resource is then StopFailed (bug 5).
func (g *group) stopHard(x *res, reason string) error {
	err := g.terminate(x, reason)
	if err == nil {
		return nil
	}
	if resource.IsCollateral(err) {
		if err2 := g.terminate(x, "retrying a Terminate that did not reach its hosting process"); err2 != nil {
			return fmt.Errorf("%w; then Terminate failed again: %w", err, err2)
		}
		return nil
	}
	if !errors.Is(err, errHostKilled) { // not yet killed by a deadlocked Terminate
		k, ok := x.r.(resource.ProcessKiller)
		if !ok {
			return fmt.Errorf("%w; the resource runs in-process and has no host to kill", err)
		}
		kreason := "terminate failed: " + err.Error()
		kerr := k.KillProcess(kreason)
		if o := g.m.cfg.Observer; o != nil {
			o(CallInfo{Group: g.name, Resource: x.spec.Name, Type: x.spec.Type, Method: MethodKillProcess, Err: kerr})
		}
		if kerr != nil {
			return fmt.Errorf("%w; killing the host process failed: %w", err, kerr)
		}
		g.m.log.Warn("terminate failed, host process killed", "group", g.name, "resource", x.spec.Name, "err", err)
		g.emitResource(x, Event{Kind: EventCallDeadlocked, Method: MethodTerminate, Reason: kreason + "; host process killed"})
	}
	if err2 := g.terminate(x, "cleaning up after the host process was killed"); err2 != nil {
		return fmt.Errorf("%w; host process killed, then Terminate failed again: %w", err, err2)
	}
	return nil
}
