package resource

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// ErrTerminated is the cause of a call's context that Terminate canceled
// (see Lifecycle). A call that ends because of it returns an error wrapping
// both ErrTerminated and context.Canceled.
var ErrTerminated = errors.New("terminated")

// Lifecycle is the plumbing every resource repeats so that Terminate can
// cancel an in-flight Online (or Offline) and no late write happens after
// Terminate returned. Keep one in each instance, as a named field (not
// embedded: its Terminate is not the Resource method); the zero value is
// ready to use and it must not be copied after first use.
//
// The pattern, for a resource whose state is s.held:
//
//	func (s *res) Online(ctx context.Context) error {
//		ctx, call := s.life.Begin(ctx) // Terminate cancels ctx
//		defer call.End()
//		h, err := acquire(ctx)         // slow work, honouring ctx
//		if err != nil {
//			return err
//		}
//		if err := call.Commit(func() { s.held = h }); err != nil {
//			release(h) // Terminate ran meanwhile (or ctx ended): undo
//			return err
//		}
//		return nil
//	}
//
//	func (s *res) Terminate(context.Context) error {
//		return s.life.Terminate(func() error { // idempotent cleanup
//			if s.held == nil {
//				return nil
//			}
//			h := s.held
//			s.held = nil
//			return release(h)
//		})
//	}
//
//	func (s *res) LooksAlive(context.Context) error {
//		return s.life.Locked(func() error { ... read s.held ... })
//	}
//
// The Lifecycle's mutex guards the state the commit, cleanup and Locked
// functions touch: they run one at a time. Do not call the Lifecycle's
// methods from inside them. Lifecycle starts no goroutine.
type Lifecycle struct {
	mu    sync.Mutex
	calls map[*Call]struct{}
}

// Call is one Online or Offline in flight, from Lifecycle.Begin to End.
type Call struct {
	l          *Lifecycle
	ctx        context.Context
	cancel     context.CancelCauseFunc
	terminated bool // guarded by l.mu
}

// Begin registers a call and returns its context: ctx, also canceled (with
// cause ErrTerminated) when Terminate runs. Call End when the call returns.
func (l *Lifecycle) Begin(ctx context.Context) (context.Context, *Call) {
	cctx, cancel := context.WithCancelCause(ctx)
	c := &Call{l: l, ctx: cctx, cancel: cancel}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.calls == nil {
		l.calls = map[*Call]struct{}{}
	}
	l.calls[c] = struct{}{}
	return cctx, c
}

// End unregisters the call and releases its context. It is idempotent.
func (c *Call) End() {
	c.l.mu.Lock()
	delete(c.l.calls, c)
	c.l.mu.Unlock()
	c.cancel(context.Canceled)
}

// Commit runs fn, which records what the call achieved, under the
// Lifecycle's mutex, unless Terminate ran since Begin or the call's context
// ended: then fn does not run and Commit returns an error wrapping
// ErrTerminated and context.Canceled, or the context's error (which wraps
// context.DeadlineExceeded or context.Canceled). After a refused Commit the
// caller undoes what it built and returns the error. Because Terminate takes
// the same mutex, nothing a call commits outlives a Terminate that returned.
func (c *Call) Commit(fn func()) error {
	c.l.mu.Lock()
	defer c.l.mu.Unlock()
	if err := c.errLocked(); err != nil {
		return err
	}
	fn()
	return nil
}

// Err reports, like Commit would, whether the call may still commit: nil,
// or the error a refused Commit returns.
func (c *Call) Err() error {
	c.l.mu.Lock()
	defer c.l.mu.Unlock()
	return c.errLocked()
}

func (c *Call) errLocked() error {
	if c.terminated {
		return fmt.Errorf("%w: %w", ErrTerminated, context.Canceled)
	}
	if err := c.ctx.Err(); err != nil {
		if cause := context.Cause(c.ctx); cause != nil && !errors.Is(cause, err) {
			return fmt.Errorf("%w: %w", err, cause)
		}
		return err
	}
	return nil
}

// Terminate cancels every call in flight (their contexts end with cause
// ErrTerminated and their Commits are refused from now on), then runs
// cleanup under the Lifecycle's mutex and returns its error. cleanup runs
// on every Terminate, so it must be idempotent: release what is held, do
// nothing when nothing is. A nil cleanup only cancels. Terminate does not
// wait for the canceled calls to return.
func (l *Lifecycle) Terminate(cleanup func() error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for c := range l.calls {
		c.terminated = true
		c.cancel(ErrTerminated)
		delete(l.calls, c)
	}
	if cleanup == nil {
		return nil
	}
	return cleanup()
}

// Locked runs fn under the Lifecycle's mutex (a health check reading the
// state that Commit and Terminate write) and returns its error.
func (l *Lifecycle) Locked(fn func() error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return fn()
}

// InFlight reports how many calls are between Begin and End (or Terminate).
func (l *Lifecycle) InFlight() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.calls)
}
