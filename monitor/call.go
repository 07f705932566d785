package monitor

import (
	"context"
	"errors"
	"fmt"
	"time"

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
	MethodOnline     = "Online"
	MethodOffline    = "Offline"
	MethodLooksAlive = "LooksAlive"
	MethodIsAlive    = "IsAlive"
	MethodTerminate  = "Terminate"
)

// CallInfo describes one finished (or abandoned) call, for metrics.
type CallInfo struct {
	Group, Resource, Type, Method string
	Duration                      time.Duration
	Err                           error
}

// invoke runs one serialized call (all but Terminate) of x under its
// timeout. For Online and Offline (pending) the deadline is the pending
// timeout, extended by each progress report; on timeout the resource is
// terminated at once, so that a hung Online is cut short. A call that has
// not returned DeadlockGrace after its deadline is abandoned: the hosting
// process is killed if possible, and ErrDeadlocked is returned. The call's
// goroutine keeps the serialization slot until the call really returns, so
// no second call overlaps it.
func (g *group) invoke(parent context.Context, x *res, method string, fn func(context.Context) error) error {
	pending := method == MethodOnline || method == MethodOffline
	timeout := x.timing.CallTimeout
	if pending {
		timeout = x.timing.PendingTimeout
	}
	start := time.Now()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case x.sem <- struct{}{}:
	case <-parent.Done():
		return fmt.Errorf("%s: waiting for the previous call to return: %w", method, context.Cause(parent))
	case <-timer.C:
		// An abandoned (deadlocked) call still holds the slot.
		return fmt.Errorf("%s: the previous call has not returned within %s: %w", method, timeout, ErrCallTimeout)
	}
	if err := parent.Err(); err != nil {
		<-x.sem
		return fmt.Errorf("%s: %w", method, context.Cause(parent))
	}
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
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
	observe := func(err error) error {
		if o := g.m.cfg.Observer; o != nil {
			o(CallInfo{Group: g.name, Resource: x.spec.Name, Type: x.spec.Type, Method: method, Duration: time.Since(start), Err: err})
		}
		return err
	}
	for {
		select {
		case err := <-done:
			if err != nil {
				err = fmt.Errorf("%s: %w", method, err)
			}
			return observe(err)
		case msg := <-progress:
			g.m.log.Debug("progress", "group", g.name, "resource", x.spec.Name, "method", method, "message", msg)
			timer.Reset(timeout)
		case <-parent.Done():
			cancel(context.Cause(parent))
			return fmt.Errorf("%s: %w", method, context.Cause(parent))
		case <-timer.C:
			terr := fmt.Errorf("%s: no answer within %s: %w", method, timeout, ErrCallTimeout)
			cancel(terr)
			g.emitResource(x, Event{Kind: EventCallTimedOut, Method: method, Reason: terr.Error()})
			if pending {
				g.terminate(x, "terminating: "+terr.Error())
			}
			grace := time.NewTimer(x.timing.DeadlockGrace())
			defer grace.Stop()
			select {
			case err := <-done:
				if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, ErrCallTimeout) {
					return observe(fmt.Errorf("%w (returned after the timeout: %v)", terr, err))
				}
				return observe(terr)
			case <-parent.Done():
				return observe(terr)
			case <-grace.C:
				derr := fmt.Errorf("%s: still running %s after its deadline: %w", method, x.timing.DeadlockGrace(), ErrDeadlocked)
				g.deadlocked(x, method, derr)
				return observe(derr)
			}
		}
	}
}

// deadlocked reports an abandoned call and kills the hosting process if the
// resource offers a way.
func (g *group) deadlocked(x *res, method string, err error) {
	reason := err.Error()
	if k, ok := x.r.(resource.ProcessKiller); ok {
		if kerr := k.KillProcess(reason); kerr != nil {
			reason += "; killing the host process failed: " + kerr.Error()
		} else {
			reason += "; host process killed"
		}
	} else {
		reason += "; the resource runs in-process and cannot be killed: it stays failed until the call returns"
	}
	g.m.log.Error("call deadlocked", "group", g.name, "resource", x.spec.Name, "method", method, "reason", reason)
	g.emitResource(x, Event{Kind: EventCallDeadlocked, Method: method, Reason: reason})
}

// terminate calls Terminate outside the serialization (it may overlap any
// call), bounded by the call timeout and the deadlock timeout.
func (g *group) terminate(x *res, reason string) error {
	g.m.log.Debug("terminate", "group", g.name, "resource", x.spec.Name, "reason", reason)
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), x.timing.CallTimeout)
	defer cancel()
	done := make(chan error, 1)
	g.m.wg.Go(func() { done <- x.r.Terminate(ctx) })
	deadlock := time.NewTimer(x.timing.DeadlockTimeout)
	defer deadlock.Stop()
	var err error
	select {
	case err = <-done:
	case <-deadlock.C:
		err = fmt.Errorf("%s: still running after %s: %w", MethodTerminate, x.timing.DeadlockTimeout, ErrDeadlocked)
		g.deadlocked(x, MethodTerminate, err)
	}
	if o := g.m.cfg.Observer; o != nil {
		o(CallInfo{Group: g.name, Resource: x.spec.Name, Type: x.spec.Type, Method: MethodTerminate, Duration: time.Since(start), Err: err})
	}
	if err != nil {
		g.m.log.Warn("terminate failed", "group", g.name, "resource", x.spec.Name, "err", err)
	}
	return err
}
