package resource_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sftkit/sft/resource"
)

// slowRes is a resource built on Lifecycle: Online waits ready (or its ctx)
// and then holds a token; Terminate releases it. released counts undone
// tokens so the tests can tell "undone" from "leaked".
type slowRes struct {
	life  resource.Lifecycle
	ready chan struct{}
	begun chan struct{} // if set, closed once Online has begun its call

	held     int // guarded by life
	next     int
	released []int
}

func (s *slowRes) Online(ctx context.Context) error {
	ctx, call := s.life.Begin(ctx)
	defer call.End()
	if s.begun != nil {
		close(s.begun)
	}
	select {
	case <-s.ready:
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	tok := 0
	err := call.Commit(func() { s.next++; tok = s.next; s.held = tok })
	return err
}

func (s *slowRes) Terminate(context.Context) error {
	return s.life.Terminate(func() error {
		if s.held != 0 {
			s.released = append(s.released, s.held)
			s.held = 0
		}
		return nil
	})
}

func (s *slowRes) holds() int {
	var h int
	_ = s.life.Locked(func() error { h = s.held; return nil })
	return h
}

func TestLifecycleTerminateCancelsOnline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &slowRes{ready: make(chan struct{})}
		res := make(chan error, 1)
		go func() { res <- s.Online(context.Background()) }()
		synctest.Wait() // Online is durably blocked
		if n := s.life.InFlight(); n != 1 {
			t.Fatalf("InFlight = %d, want 1", n)
		}
		if err := s.Terminate(context.Background()); err != nil {
			t.Fatal(err)
		}
		err := <-res
		if !errors.Is(err, resource.ErrTerminated) {
			t.Fatalf("Online after Terminate: %v, want ErrTerminated", err)
		}
		if s.holds() != 0 || s.life.InFlight() != 0 {
			t.Fatalf("held %d, in flight %d after Terminate", s.holds(), s.life.InFlight())
		}
	})
}

func TestLifecycleDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &slowRes{ready: make(chan struct{})}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		start := time.Now()
		err := s.Online(ctx)
		if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, resource.ErrTerminated) {
			t.Fatalf("Online past its deadline: %v, want DeadlineExceeded only", err)
		}
		if d := time.Since(start); d != time.Minute {
			t.Fatalf("Online returned after %v, want at the deadline (1m)", d)
		}
	})
}

// TestLifecycleCommitAfterTerminateRefused: the work finished, but
// Terminate ran first: the commit must not happen, and the error says why.
func TestLifecycleCommitAfterTerminateRefused(t *testing.T) {
	var l resource.Lifecycle
	ctx, call := l.Begin(context.Background())
	defer call.End()
	if err := l.Terminate(nil); err != nil {
		t.Fatal(err)
	}
	if ctx.Err() == nil || !errors.Is(context.Cause(ctx), resource.ErrTerminated) {
		t.Fatalf("call ctx after Terminate: err %v cause %v", ctx.Err(), context.Cause(ctx))
	}
	ran := false
	err := call.Commit(func() { ran = true })
	if ran || !errors.Is(err, resource.ErrTerminated) || !errors.Is(err, context.Canceled) {
		t.Fatalf("Commit after Terminate: ran %v, err %v", ran, err)
	}
	if call.Err() == nil {
		t.Fatal("Err after Terminate: nil")
	}
	// A new call after Terminate is unaffected (the monitor restarts this way).
	_, again := l.Begin(context.Background())
	defer again.End()
	if err := again.Commit(func() { ran = true }); err != nil || !ran {
		t.Fatalf("Commit of a call begun after Terminate: %v (ran %v)", err, ran)
	}
}

func TestLifecycleCommitAfterCtxEndRefused(t *testing.T) {
	var l resource.Lifecycle
	parent, cancel := context.WithCancel(context.Background())
	_, call := l.Begin(parent)
	defer call.End()
	cancel()
	err := call.Commit(func() { t.Error("committed after ctx end") })
	if !errors.Is(err, context.Canceled) || errors.Is(err, resource.ErrTerminated) {
		t.Fatalf("Commit after cancel: %v", err)
	}
}

func TestLifecycleCleanupErrorAndIdempotence(t *testing.T) {
	var l resource.Lifecycle
	boom := errors.New("boom")
	if err := l.Terminate(func() error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("Terminate: %v, want cleanup's error", err)
	}
	n := 0
	for range 3 {
		_ = l.Terminate(func() error { n++; return nil })
	}
	if n != 3 {
		t.Fatalf("cleanup ran %d times, want every Terminate", n)
	}
}

// TestLifecycleNoLateWriteRace races Online's commit against Terminate many
// times (run with -race): after Terminate returned, the resource holds
// nothing, and every token committed was released exactly once.
func TestLifecycleNoLateWriteRace(t *testing.T) {
	for i := range 500 {
		s := &slowRes{ready: make(chan struct{}), begun: make(chan struct{})}
		close(s.ready)
		var wg sync.WaitGroup
		var onlineErr error
		wg.Add(1)
		go func() {
			defer wg.Done()
			onlineErr = s.Online(context.Background())
		}()
		<-s.begun // Terminate races the commit, not the start of the call
		if i%2 == 0 {
			time.Sleep(time.Duration(i%7) * time.Microsecond)
		}
		if err := s.Terminate(context.Background()); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		// Terminate either came after the commit (released it) or before
		// (the commit was refused); a commit after Terminate would leave
		// the token held.
		if onlineErr == nil {
			// Committed before Terminate: released by it.
			if len(s.released) != 1 || s.holds() != 0 {
				t.Fatalf("run %d: Online succeeded; released %v held %d", i, s.released, s.holds())
			}
		} else {
			if !errors.Is(onlineErr, resource.ErrTerminated) || s.holds() != 0 || len(s.released) != 0 {
				t.Fatalf("run %d: Online %v; released %v held %d", i, onlineErr, s.released, s.holds())
			}
		}
	}
}

// Example shows the Online/Terminate pattern: Terminate makes a hung Online
// return, and a commit that comes too late is refused.
func ExampleLifecycle() {
	var life resource.Lifecycle
	var held bool

	online := func(ctx context.Context) error {
		ctx, call := life.Begin(ctx)
		defer call.End()
		<-ctx.Done() // a slow step that honours ctx
		return call.Commit(func() { held = true })
	}
	terminate := func() error {
		return life.Terminate(func() error { held = false; return nil })
	}

	res := make(chan error)
	go func() { res <- online(context.Background()) }()
	for life.InFlight() == 0 {
		time.Sleep(time.Millisecond)
	}
	fmt.Println("terminate:", terminate())
	err := <-res
	fmt.Println("online:", err)
	fmt.Println("terminated:", errors.Is(err, resource.ErrTerminated), "canceled:", errors.Is(err, context.Canceled))
	_ = life.Locked(func() error { fmt.Println("held:", held); return nil })
	// Output:
	// terminate: <nil>
	// online: terminated: context canceled
	// terminated: true canceled: true
	// held: false
}
