package monitor

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sftkit/sft/resource"
)

// plainCounting is counting without the instant interfaces: its checks run
// on its poller's worker goroutine.
type plainCounting struct{ c counting }

func (p plainCounting) Online(ctx context.Context) error     { return p.c.Online(ctx) }
func (p plainCounting) Offline(ctx context.Context) error    { return p.c.Offline(ctx) }
func (p plainCounting) LooksAlive(ctx context.Context) error { return p.c.LooksAlive(ctx) }
func (p plainCounting) IsAlive(ctx context.Context) error    { return p.c.IsAlive(ctx) }
func (p plainCounting) Terminate(ctx context.Context) error  { return p.c.Terminate(ctx) }

// pollers returns the running poller of every resource of m's groups.
func pollers(t *testing.T, m *Monitor) []*poller {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*poller
	for _, g := range m.groups {
		for _, x := range g.res {
			p := x.live.Load()
			require.NotNil(t, p, "%s/%s is not polled", g.name, x.spec.Name)
			out = append(out, p)
		}
	}
	return out
}

// Issue 15: an online resource has no standing goroutine. Between checks no
// poller has a worker, whether its checks run inline (instant) or on a
// worker started for them; and every check still runs on schedule.
func TestIdlePollerHasNoGoroutine(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := New(Config{})
		defer func() { _ = m.Close(context.Background()) }()
		inst, plain := newCounting(), plainCounting{newCounting()}
		tm := resource.Timing{LooksAliveInterval: time.Second, IsAliveInterval: 5 * time.Second}
		const groups, per = 3, 4
		for g := range groups {
			spec := GroupSpec{Name: "g" + strconv.Itoa(g)}
			for i := range per {
				var r resource.Resource = inst
				if i%2 == 1 {
					r = plain
				}
				spec.Resources = append(spec.Resources, ResourceSpec{Name: "r" + strconv.Itoa(i), Type: "counting", Resource: r, Timing: tm})
			}
			require.NoError(t, m.AddGroup(spec))
			require.NoError(t, m.Online(t.Context(), spec.Name))
		}
		synctest.Wait()
		l0, p0 := inst.looks.Load(), plain.c.looks.Load()
		i0 := inst.is.Load() + plain.c.is.Load()
		time.Sleep(10*time.Second + time.Millisecond)
		synctest.Wait()
		ps := pollers(t, m)
		require.Len(t, ps, groups*per)
		for _, p := range ps {
			p.mu.Lock()
			running, work := p.running, p.work
			p.mu.Unlock()
			require.False(t, running, "%s: a worker outlives its work", p.x.spec.Name)
			require.Zero(t, work, "%s: work left undone", p.x.spec.Name)
		}
		const half = groups * per / 2
		require.Equal(t, int64(10*half), inst.looks.Load()-l0, "inline LooksAlive every second")
		require.Equal(t, int64(10*half), plain.c.looks.Load()-p0, "LooksAlive on a worker every second")
		require.Equal(t, int64(2*2*half), inst.is.Load()+plain.c.is.Load()-i0, "IsAlive every 5 s for every resource")
	})
}

// pushOnOnline pushes a failure from inside its first Online, after which
// it returns success: the failure arrives while the resource is not yet
// polled (the actor has not seen the Online's result), the window the
// poller closes when it starts.
type pushOnOnline struct {
	counting
	mu      sync.Mutex
	handler func(error)
	onlines atomic.Int64
}

func (p *pushOnOnline) SetFailureHandler(fn func(error)) {
	p.mu.Lock()
	p.handler = fn
	p.mu.Unlock()
}

func (p *pushOnOnline) Online(context.Context) error {
	if p.onlines.Add(1) == 1 {
		p.mu.Lock()
		h := p.handler
		p.mu.Unlock()
		h(errors.New("exited right after starting"))
	}
	return nil
}

func TestFailurePushedBeforePollingStarts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &pushOnOnline{counting: newCounting()}
		// Online may return only after the restart (500 ms later) when
		// the actor takes the pushed failure first: the clock starts
		// before it.
		start := time.Now()
		_, sub := onlineOne(t, r)
		ev, seen := waitTo(sub, resource.StateFailed)
		require.Contains(t, ev.Reason, "exited right after starting")
		require.Equal(t, start, ev.Time, "failed at once, not at a poll")
		require.Contains(t, seen, EventFailurePushed)
		waitTo(sub, resource.StateOnline)
		require.Equal(t, int64(2), r.onlines.Load(), "restarted once")
	})
}

// A failure pushed while the actor's queue is full goes through the
// resource's poller (x.push, then a kick): it still fails the resource at
// once. The full queue is simulated by taking that path directly.
func TestPushedFailureThroughPoller(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, sub := onlineOne(t, newCounting())
		synctest.Wait()
		time.Sleep(300 * time.Millisecond) // between two polls
		p := pollers(t, m)[0]
		p.x.push <- errors.New("queue full")
		p.kick(wPushed, nil)
		at := time.Now()
		ev, _ := waitTo(sub, resource.StateFailed)
		require.Contains(t, ev.Reason, "queue full")
		require.Equal(t, at, ev.Time)
		// A second kick for the same failure (both sides of the race with
		// startPoller saw it) finds nothing and does nothing.
		p.kick(wPushed, nil)
		synctest.Wait()
		require.Empty(t, p.x.push)
	})
}

// waitTo returns the next resource state change to st, and the kinds of
// the events before it.
func waitTo(sub *Subscription, st resource.State) (Event, []EventKind) {
	var kinds []EventKind
	for ev := range sub.C() {
		if ev.Kind == EventStateChanged && ev.Resource != "" && ev.To == st {
			return ev, kinds
		}
		kinds = append(kinds, ev.Kind)
	}
	return Event{}, kinds
}

// onlineOne brings a group of one resource online in a new monitor (closed
// at the end of the test) and returns it with a subscription.
func onlineOne(t *testing.T, r resource.Resource) (*Monitor, *Subscription) {
	m := New(Config{})
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	sub := m.Subscribe(64)
	t.Cleanup(sub.Close)
	require.NoError(t, m.AddGroup(GroupSpec{Name: "g", Resources: []ResourceSpec{{Name: "r", Type: "t", Resource: r}}}))
	require.NoError(t, m.Online(t.Context(), "g"))
	return m, sub
}

// gated is counting whose Online waits for its gate.
type gated struct {
	counting
	gate chan struct{}
}

func (g gated) Online(ctx context.Context) error {
	select {
	case <-g.gate:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// holdLog is a slog handler that holds the goroutine logging a record that
// hold matches, once, until release is closed.
type holdLog struct {
	hold    func(slog.Record) bool
	armed   *atomic.Bool
	release chan struct{}
}

func (h holdLog) Enabled(context.Context, slog.Level) bool { return true }
func (h holdLog) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h holdLog) WithGroup(string) slog.Handler            { return h }
func (h holdLog) Handle(_ context.Context, r slog.Record) error {
	if h.hold(r) && h.armed.CompareAndSwap(true, false) {
		<-h.release
	}
	return nil
}

// Issue 15: a group's event queue holds a completion from every resource.
// With the actor held (logging the first resource online), the other
// Onlines end at once: each op goroutine queues its result and exits,
// rather than sixteen queueing and the rest blocking in send with their
// stacks (fresh stack memory is what a large group's burst cost most).
func TestEventQueueHoldsEveryCompletion(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := holdLog{armed: new(atomic.Bool), release: make(chan struct{})}
		h.hold = func(r slog.Record) bool {
			online := false
			r.Attrs(func(a slog.Attr) bool {
				online = online || (a.Key == "to" && a.Value.String() == resource.StateOnline.String())
				return true
			})
			return r.Message == "resource state" && online
		}
		m := New(Config{Logger: slog.New(h)})
		defer func() { _ = m.Close(context.Background()) }()
		const n = 200
		first, rest := make(chan struct{}), make(chan struct{})
		spec := GroupSpec{Name: "g"}
		for i := range n {
			r := gated{newCounting(), rest}
			if i == 0 {
				r.gate = first
			}
			spec.Resources = append(spec.Resources, ResourceSpec{Name: "r" + strconv.Itoa(i), Type: "t", Resource: r})
		}
		require.NoError(t, m.AddGroup(spec))
		m.mu.Lock()
		g := m.groups["g"]
		m.mu.Unlock()
		done := make(chan error, 1)
		go func() { done <- m.Online(context.Background(), "g") }()
		synctest.Wait() // every Online started and waiting
		h.armed.Store(true)
		released := false
		defer func() { // on a failed require too: let the actor go
			if !released {
				close(h.release)
			}
		}()
		close(first)
		synctest.Wait() // the actor, logging r0 online, is held
		require.False(t, h.armed.Load(), "the actor took r0's completion")
		close(rest)
		synctest.Wait()
		require.Equal(t, n-1, len(g.evs), "every other Online's completion is queued, none blocked in send")
		close(h.release)
		released = true
		require.NoError(t, <-done)
	})
}
