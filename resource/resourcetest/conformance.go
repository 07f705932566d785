package resourcetest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/sftkit/sft/resource"
)

// Options configure ConformanceWith. Only New is required.
type Options struct {
	// New returns a fresh resource, not yet online, for one subtest. It
	// may register cleanups on t. Required.
	New func(t *testing.T) resource.Resource

	// Up, if set, reports whether what the resource manages exists right
	// now (the address is on the interface, the process runs), probed
	// from outside the resource. The suite then checks that it is true
	// after Online and false after Offline and Terminate: "leaves nothing
	// behind". Nil skips those checks.
	Up func(t *testing.T, r resource.Resource) bool

	// Hang, if set, arranges for the next Online of r to hang: not return
	// until Terminate runs or its ctx ends. It returns a channel that is
	// closed once that Online call is hanging, or nil, and then the suite
	// waits HangSettle before acting. Nil skips the subtests that need a
	// hanging Online ("TerminateWhileOnlineHangs", "OnlineDeadline").
	Hang func(t *testing.T, r resource.Resource) <-chan struct{}

	// Timeout bounds every call the suite makes. A call that has not
	// returned by then fails the subtest: it guards against hangs and is
	// not a speed requirement, so keep it generous. Default 30s.
	Timeout time.Duration

	// HangSettle is how long the suite waits after starting a hanging
	// Online when Hang returned a nil channel. Default 200ms.
	HangSettle time.Duration

	// Deadline is the ctx deadline the OnlineDeadline subtest gives a
	// hanging Online. Default 100ms.
	Deadline time.Duration
}

func (o *Options) defaults() {
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.HangSettle <= 0 {
		o.HangSettle = 200 * time.Millisecond
	}
	if o.Deadline <= 0 {
		o.Deadline = 100 * time.Millisecond
	}
}

// Conformance runs the resource contract suite against the resources
// newResource returns; see ConformanceWith for what it checks. It skips the
// subtests that need a hanging Online; use ConformanceWith to run them.
//
// A type's test file:
//
//	func TestConformance(t *testing.T) {
//		resourcetest.ConformanceWith(t, resourcetest.Options{
//			New: func(t *testing.T) resource.Resource {
//				r, err := myType.Open(t.Context(), resource.OpenRequest{Name: t.Name(), Properties: props})
//				if err != nil {
//					t.Fatal(err)
//				}
//				return r
//			},
//			Up: func(t *testing.T, r resource.Resource) bool { return addressPresent(t) },
//		})
//	}
func Conformance(t *testing.T, newResource func(t *testing.T) resource.Resource) {
	t.Helper()
	ConformanceWith(t, Options{New: newResource})
}

// ConformanceWith runs the resource contract suite. It uses real time (the
// resources under test may be processes or kernel objects), bounds every
// call by o.Timeout, and makes no assertion about speed. Each subtest opens a
// fresh resource with o.New and, when it ends, calls Terminate and then
// Close (if the resource is a resource.Closer) and checks o.Up is false.
//
// The subtests, each requiring that every call returns within o.Timeout:
//
//   - OnlineThenAlive: Online, LooksAlive, IsAlive all return nil; Up true.
//   - OfflineAfterOnline: Online, Offline return nil; then LooksAlive and
//     IsAlive return errors; Up false.
//   - OfflineIdempotent: Offline before Online returns nil; after Online,
//     Offline twice returns nil both times.
//   - TerminateBeforeOnline, TerminateAfterOnline, TerminateAfterOffline,
//     TerminateTwice: Terminate returns nil in every state, and after it
//     LooksAlive and IsAlive return errors and Up is false.
//   - OnlineAfterTerminate, OnlineAfterOffline: the resource can be brought
//     online again (the monitor restarts resources this way): Online and
//     the health checks return nil.
//   - CanceledContext: each call, made with a context already canceled in a
//     state where it would succeed with a live context, returns either nil
//     (the work needed no waiting and was done) or an error wrapping
//     context.Canceled. Terminate afterwards leaves nothing behind.
//   - CloseAfterOffline, CloseAfterTerminate (resource.Closer only): Close
//     returns nil.
//   - NoFailurePushedOnOffline (resource.FailureReporter only): a graceful
//     Online then Offline pushes no failure to the handler.
//   - TerminateWhileOnlineHangs (o.Hang only): Terminate, called while
//     Online hangs, returns nil, and Online then returns a non-nil error;
//     Up is false.
//   - OnlineDeadline (o.Hang only): a hanging Online given a ctx with a
//     deadline of o.Deadline returns an error wrapping
//     context.DeadlineExceeded.
func ConformanceWith(t *testing.T, o Options) {
	t.Helper()
	if o.New == nil {
		t.Fatal("resourcetest.ConformanceWith: Options.New is nil")
	}
	o.defaults()
	s := &suite{o: o}

	s.run(t, "OnlineThenAlive", func(c *check) {
		c.online()
		c.alive()
		c.up(true, "after Online")
	})
	s.run(t, "OfflineAfterOnline", func(c *check) {
		c.online()
		c.offline()
		c.notAlive("after Offline")
		c.up(false, "after Offline")
	})
	s.run(t, "OfflineIdempotent", func(c *check) {
		c.offline()
		c.online()
		c.offline()
		c.offline()
		c.up(false, "after Offline twice")
	})
	s.run(t, "TerminateBeforeOnline", func(c *check) {
		c.terminate()
		c.up(false, "after Terminate")
	})
	s.run(t, "TerminateAfterOnline", func(c *check) {
		c.online()
		c.terminate()
		c.notAlive("after Terminate")
		c.up(false, "after Terminate")
	})
	s.run(t, "TerminateAfterOffline", func(c *check) {
		c.online()
		c.offline()
		c.terminate()
		c.notAlive("after Offline and Terminate")
		c.up(false, "after Offline and Terminate")
	})
	s.run(t, "TerminateTwice", func(c *check) {
		c.online()
		c.terminate()
		c.terminate()
		c.notAlive("after Terminate twice")
		c.up(false, "after Terminate twice")
	})
	s.run(t, "OnlineAfterTerminate", func(c *check) {
		c.online()
		c.terminate()
		c.online()
		c.alive()
		c.up(true, "after Terminate and Online")
		c.offline()
		c.up(false, "after Offline")
	})
	s.run(t, "OnlineAfterOffline", func(c *check) {
		c.online()
		c.offline()
		c.online()
		c.alive()
		c.up(true, "after Offline and Online")
	})
	s.run(t, "CanceledContext", func(c *check) {
		canceled, cancel := context.WithCancel(context.Background())
		cancel()
		okOrCanceled := func(what string, err error) {
			if err != nil && !errors.Is(err, context.Canceled) {
				c.t.Errorf("%s with a canceled ctx: got %v, want nil or an error wrapping context.Canceled", what, err)
			}
		}
		err := c.callCtx(canceled, "Online", c.r.Online)
		okOrCanceled("Online", err)
		if err != nil {
			// Not online: bring it up for the remaining checks.
			c.online()
		}
		okOrCanceled("LooksAlive", c.callCtx(canceled, "LooksAlive", c.r.LooksAlive))
		okOrCanceled("IsAlive", c.callCtx(canceled, "IsAlive", c.r.IsAlive))
		okOrCanceled("Offline", c.callCtx(canceled, "Offline", c.r.Offline))
		c.callCtx(canceled, "Terminate", c.r.Terminate) // any result, but it must return
		c.terminate()
		c.up(false, "after Terminate")
	})
	s.run(t, "CloseAfterOffline", func(c *check) {
		cl, ok := c.r.(resource.Closer)
		if !ok {
			c.t.Skip("not a resource.Closer")
		}
		c.online()
		c.offline()
		c.close(cl)
	})
	s.run(t, "CloseAfterTerminate", func(c *check) {
		cl, ok := c.r.(resource.Closer)
		if !ok {
			c.t.Skip("not a resource.Closer")
		}
		c.online()
		c.terminate()
		c.close(cl)
	})
	s.run(t, "NoFailurePushedOnOffline", func(c *check) {
		fr, ok := c.r.(resource.FailureReporter)
		if !ok {
			c.t.Skip("not a resource.FailureReporter")
		}
		var mu sync.Mutex
		var pushed []error
		fr.SetFailureHandler(func(err error) {
			mu.Lock()
			defer mu.Unlock()
			pushed = append(pushed, err)
		})
		c.online()
		c.offline()
		mu.Lock()
		defer mu.Unlock()
		if len(pushed) > 0 {
			c.t.Errorf("graceful Online and Offline pushed failures: %v", pushed)
		}
	})
	s.run(t, "TerminateWhileOnlineHangs", func(c *check) {
		if c.s.o.Hang == nil {
			c.t.Skip("Options.Hang not set: the type cannot make Online hang")
		}
		// No deadline: only Terminate may end this Online.
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		res := c.hangOnline(ctx)
		c.terminate()
		select {
		case err := <-res:
			if err == nil {
				c.t.Error("hanging Online returned nil after Terminate; want an error")
			}
		case <-time.After(c.s.o.Timeout):
			c.t.Fatalf("hanging Online did not return within %v of Terminate", c.s.o.Timeout)
		}
		c.up(false, "after Terminate of a hanging Online")
	})
	s.run(t, "OnlineDeadline", func(c *check) {
		if c.s.o.Hang == nil {
			c.t.Skip("Options.Hang not set: the type cannot make Online hang")
		}
		ctx, cancel := context.WithTimeout(context.Background(), c.s.o.Deadline)
		defer cancel()
		res := c.hangOnline(ctx)
		select {
		case err := <-res:
			if !errors.Is(err, context.DeadlineExceeded) {
				c.t.Errorf("hanging Online past its ctx deadline returned %v; want an error wrapping context.DeadlineExceeded", err)
			}
		case <-time.After(c.s.o.Timeout):
			c.t.Fatalf("hanging Online with a %v ctx deadline did not return within %v", c.s.o.Deadline, c.s.o.Timeout)
		}
		c.terminate()
		c.up(false, "after Terminate")
	})
}

type suite struct{ o Options }

// check is one subtest's resource and helpers.
type check struct {
	t *testing.T
	s *suite
	r resource.Resource
	// closedAlready: the subtest called Close; nothing may be called after.
	closedAlready bool
}

func (s *suite) run(t *testing.T, name string, body func(c *check)) {
	t.Helper()
	t.Run(name, func(t *testing.T) {
		r := s.o.New(t)
		if r == nil {
			t.Fatal("Options.New returned nil")
		}
		c := &check{t: t, s: s, r: r}
		t.Cleanup(func() {
			// Leave nothing behind, whatever the subtest did.
			if !c.closedAlready {
				c.terminate()
				if cl, ok := r.(resource.Closer); ok {
					c.close(cl)
				}
			}
			c.up(false, "at the end")
		})
		body(c)
	})
}

// callCtx runs fn(ctx) and fails the test if it does not return within
// the suite's Timeout. It returns fn's error.
func (c *check) callCtx(ctx context.Context, what string, fn func(context.Context) error) error {
	c.t.Helper()
	done := make(chan error, 1)
	go func() { done <- fn(ctx) }()
	timer := time.NewTimer(c.s.o.Timeout)
	defer timer.Stop()
	select {
	case err := <-done:
		return err
	case <-timer.C:
		c.t.Fatalf("%s did not return within %v", what, c.s.o.Timeout)
		return nil
	}
}

func (c *check) call(what string, fn func(context.Context) error) error {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), c.s.o.Timeout)
	defer cancel()
	return c.callCtx(ctx, what, fn)
}

func (c *check) must(what string, fn func(context.Context) error) {
	c.t.Helper()
	if err := c.call(what, fn); err != nil {
		c.t.Fatalf("%s: %v", what, err)
	}
}

func (c *check) online()    { c.t.Helper(); c.must("Online", c.r.Online) }
func (c *check) offline()   { c.t.Helper(); c.must("Offline", c.r.Offline) }
func (c *check) terminate() { c.t.Helper(); c.must("Terminate", c.r.Terminate) }

func (c *check) alive() {
	c.t.Helper()
	c.must("LooksAlive", c.r.LooksAlive)
	c.must("IsAlive", c.r.IsAlive)
}

func (c *check) notAlive(when string) {
	c.t.Helper()
	if err := c.call("LooksAlive", c.r.LooksAlive); err == nil {
		c.t.Errorf("LooksAlive %s returned nil; want an error", when)
	}
	if err := c.call("IsAlive", c.r.IsAlive); err == nil {
		c.t.Errorf("IsAlive %s returned nil; want an error", when)
	}
}

func (c *check) up(want bool, when string) {
	c.t.Helper()
	if c.s.o.Up == nil {
		return
	}
	if got := c.s.o.Up(c.t, c.r); got != want {
		c.t.Errorf("Up %s = %v, want %v", when, got, want)
	}
}

func (c *check) close(cl resource.Closer) {
	c.t.Helper()
	c.closedAlready = true
	if err := c.call("Close", func(context.Context) error { return cl.Close() }); err != nil {
		c.t.Errorf("Close: %v", err)
	}
}

// hangOnline makes Online hang, starts it with ctx and returns its result
// channel once it is hanging.
func (c *check) hangOnline(ctx context.Context) <-chan error {
	c.t.Helper()
	hanging := c.s.o.Hang(c.t, c.r)
	res := make(chan error, 1)
	go func() { res <- c.r.Online(ctx) }()
	if hanging == nil {
		time.Sleep(c.s.o.HangSettle)
		return res
	}
	select {
	case <-hanging:
	case err := <-res:
		// Online returned before it was known to hang: put the result
		// back for the caller to judge.
		res <- err
	case <-time.After(c.s.o.Timeout):
		c.t.Fatalf("Online was not hanging within %v (Options.Hang's channel not closed)", c.s.o.Timeout)
	}
	return res
}
