package plugins

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"

	pb "github.com/sftkit/sft/plugins/internal/proto/sftresourcev1"
	"github.com/sftkit/sft/resource"
)

// sweepType serves instances whose LooksAlive takes the duration named by
// the instance ("slow": 15 ms; "hung": until released, ignoring ctx).
type sweepType struct{ release chan struct{} }

func (sweepType) Name() string                                        { return "sweep" }
func (sweepType) Validate(context.Context, resource.Properties) error { return nil }
func (t sweepType) Open(_ context.Context, req resource.OpenRequest) (resource.Resource, error) {
	return &sweepRes{name: req.Name, release: t.release}, nil
}

type sweepRes struct {
	name    string
	release chan struct{}
}

func (*sweepRes) Online(context.Context) error    { return nil }
func (*sweepRes) Offline(context.Context) error   { return nil }
func (*sweepRes) Terminate(context.Context) error { return nil }
func (*sweepRes) IsAlive(context.Context) error   { return nil }
func (r *sweepRes) LooksAlive(context.Context) error {
	if r.name == "hung" {
		<-r.release
		return nil
	}
	time.Sleep(15 * time.Millisecond)
	return nil
}

// eventSink is an Events stream collecting what the plugin sends.
type eventSink struct {
	grpc.ServerStream
	ctx  context.Context
	mu   sync.Mutex
	evs  []*pb.Event
	sent chan struct{}
}

func newEventSink(ctx context.Context) *eventSink {
	return &eventSink{ctx: ctx, sent: make(chan struct{}, 1)}
}

func (s *eventSink) Context() context.Context { return s.ctx }
func (s *eventSink) Send(ev *pb.Event) error {
	s.mu.Lock()
	s.evs = append(s.evs, ev)
	s.mu.Unlock()
	select {
	case s.sent <- struct{}{}:
	default:
	}
	return nil
}

func (s *eventSink) get() []*pb.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*pb.Event(nil), s.evs...)
}

// openSwept opens name in s with a plugin-side LooksAlive every interval
// and starts its sweep (what a successful Online does).
func openSwept(t *testing.T, s *grpcServer, name string, interval time.Duration) *instance {
	t.Helper()
	resp, err := s.Open(t.Context(), &pb.OpenRequest{Type: "sweep", Name: name,
		LooksAliveIntervalNs: int64(interval), CheckTimeoutNs: int64(50 * time.Millisecond), DeadlockGraceNs: int64(time.Hour)})
	require.NoError(t, err)
	inst, err := s.inst(resp.GetInstance())
	require.NoError(t, err)
	inst.startLoop()
	return inst
}

// TestSweepBlamesTheOverrunningCall: issue 8 bug 14. The sweep used to blame
// whichever instance was current when a pass overran the interval and drop
// it: 10 healthy instances with 15 ms LooksAlives at a 100 ms interval were
// blamed over and over. Now a slow pass is let finish, and only an instance
// whose own call overran its call timeout is blamed.
func TestSweepBlamesTheOverrunningCall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		typ := sweepType{release: make(chan struct{})}
		s, err := newGRPCServer([]resource.Type{typ}, slog.New(slog.DiscardHandler))
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(t.Context())
		sink := newEventSink(ctx)
		done := make(chan error, 1)
		go func() { done <- s.Events(&pb.EventsRequest{}, sink) }()

		var insts []*instance
		for i := range 10 {
			insts = append(insts, openSwept(t, s, "slow"+string(rune('0'+i)), 100*time.Millisecond))
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		for _, ev := range sink.get() {
			require.NotEqual(t, pb.Event_KIND_LOOKS_ALIVE_FAILED, ev.GetKind(), "a healthy instance was blamed: %v", ev)
		}

		// One instance whose LooksAlive ignores its 50 ms timeout: it alone
		// is blamed, its neighbours are still swept.
		hung := openSwept(t, s, "hung", 100*time.Millisecond)
		time.Sleep(2 * time.Second)
		synctest.Wait()
		var blamed []uint64
		for _, ev := range sink.get() {
			if ev.GetKind() == pb.Event_KIND_LOOKS_ALIVE_FAILED {
				blamed = append(blamed, ev.GetInstance())
				require.Contains(t, ev.GetError().GetMessage(), "did not return within its call timeout")
			}
		}
		require.Equal(t, []uint64{hung.id}, blamed)
		close(typ.release)
		for _, i := range append(insts, hung) {
			i.stopLoop()
		}
		time.Sleep(time.Second) // the passes in flight end
		cancel()
		require.NoError(t, <-done)
	})
}

// TestEventQueueLosesNoFailure: issue 8 bug 15. A full event queue (4,096)
// used to drop events, and a dropped failure was never seen (the polls are
// answered from the pushed state). Now the queue coalesces the latest state
// per instance and keeps failures.
func TestEventQueueLosesNoFailure(t *testing.T) {
	s, err := newGRPCServer([]resource.Type{sweepType{}}, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	// The host is slow: nothing is read while 10,000 changes happen.
	for i := range 5000 {
		id := uint64(i%100 + 1)
		s.push(&pb.Event{Instance: id, Kind: pb.Event_KIND_LOOKS_ALIVE_FAILED})
		s.push(&pb.Event{Instance: id, Kind: pb.Event_KIND_LOOKS_ALIVE_OK})
	}
	s.push(&pb.Event{Instance: 7, Kind: pb.Event_KIND_IS_ALIVE_FAILED, Error: errorToDetail(errors.New("down"))})
	s.push(&pb.Event{Instance: 7, Kind: pb.Event_KIND_IS_ALIVE_OK})
	s.push(&pb.Event{Instance: 8, Kind: pb.Event_KIND_FAILURE, Error: errorToDetail(errors.New("pushed"))})

	ctx, cancel := context.WithCancel(t.Context())
	sink := newEventSink(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Events(&pb.EventsRequest{}, sink) }()
	var evs []*pb.Event
	for len(evs) < 103 {
		<-sink.sent
		evs = sink.get()
	}
	cancel()
	require.NoError(t, <-done)
	require.Len(t, evs, 103, "the latest LooksAlive state of 100 instances, and the failures")
	kinds := map[uint64][]pb.Event_Kind{}
	for _, ev := range evs {
		kinds[ev.GetInstance()] = append(kinds[ev.GetInstance()], ev.GetKind())
	}
	require.Equal(t, []pb.Event_Kind{pb.Event_KIND_LOOKS_ALIVE_OK, pb.Event_KIND_IS_ALIVE_FAILED, pb.Event_KIND_IS_ALIVE_OK}, kinds[7],
		"the IsAlive failure is delivered though a success followed it")
	require.Equal(t, []pb.Event_Kind{pb.Event_KIND_LOOKS_ALIVE_OK, pb.Event_KIND_FAILURE}, kinds[8])
	require.Equal(t, []pb.Event_Kind{pb.Event_KIND_LOOKS_ALIVE_OK}, kinds[1], "LooksAlive state: the latest only")
}

// TestLateEventOfEarlierCycleDropped: issue 8 bug 21. Plugin events carried
// no online cycle, so a failure of the previous cycle arriving during the
// next Online stuck. The plugin now tags events with the cycle of the
// instance's latest Online, and the proxy drops those of earlier cycles.
func TestLateEventOfEarlierCycleDropped(t *testing.T) {
	// Plugin side: events carry the cycle of the latest Online.
	s, err := newGRPCServer([]resource.Type{sweepType{}}, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	resp, err := s.Open(t.Context(), &pb.OpenRequest{Type: "sweep", Name: "x"})
	require.NoError(t, err)
	inst, err := s.inst(resp.GetInstance())
	require.NoError(t, err)
	inst.setCycle(3, nil, true)
	inst.setLooks(errors.New("down"), inst.currentCycle())
	evs := s.events.take()
	require.Len(t, evs, 1)
	require.Equal(t, uint64(3), evs[0].GetCycle())

	// Host side: a failure of cycle 1 arriving while cycle 2's Online runs
	// is dropped; one of cycle 2 counts.
	g := &gen{members: map[uint64]*proxy{}}
	var f failures
	p := &proxy{name: "r", g: g, id: 5, cycle: 2, starting: true, handler: f.handler}
	fail := &pb.Event{Instance: 5, Kind: pb.Event_KIND_FAILURE, Cycle: 1, Error: errorToDetail(errors.New("old cycle"))}
	p.onEvent(g, fail)
	require.NoError(t, p.isErr, "a late failure of cycle 1 does not stick in cycle 2")
	fail.Cycle = 2
	p.onEvent(g, fail)
	require.ErrorContains(t, p.isErr, "old cycle", "a failure of the current cycle sticks")
	p.online, p.starting = true, false
	fail.Cycle = 1
	p.isErr = nil
	p.onEvent(g, fail)
	require.Empty(t, f.get(), "nor is the handler fired for it")
}

// Two setLooks racing (a sweep's result and the sweeper blaming an overrun)
// must queue their events in the order of the state changes: the last
// LooksAlive event queued always agrees with the instance's state, or the
// host would keep a stale "failed" for ever (seen once in a loaded run of
// TestPluginSideLooksAlive).
func TestSetLooksQueuesInStateOrder(t *testing.T) {
	t.Parallel()
	s, err := newGRPCServer([]resource.Type{sweepType{}}, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	resp, err := s.Open(t.Context(), &pb.OpenRequest{Type: "sweep", Name: "x"})
	require.NoError(t, err)
	inst, err := s.inst(resp.GetInstance())
	require.NoError(t, err)
	down := errors.New("down")
	last := pb.Event_KIND_LOOKS_ALIVE_OK
	for round := range 2000 {
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); inst.setLooks(down, 0) }()
		go func() { defer wg.Done(); inst.setLooks(nil, 0) }()
		wg.Wait()
		for _, ev := range s.events.take() {
			if k := ev.GetKind(); k == pb.Event_KIND_LOOKS_ALIVE_OK || k == pb.Event_KIND_LOOKS_ALIVE_FAILED {
				last = k
			}
		}
		inst.mu.Lock()
		failing := inst.failing
		inst.mu.Unlock()
		if failing != (last == pb.Event_KIND_LOOKS_ALIVE_FAILED) {
			t.Fatalf("round %d: state failing=%v but the last queued event is %v", round, failing, last)
		}
	}
}

// reportType's instances report failures when told and count Terminates.
type reportType struct{ r *reporter }

type reporter struct {
	mu         sync.Mutex
	fn         func(error)
	terminates int
}

func (reportType) Name() string                                        { return "report" }
func (reportType) Validate(context.Context, resource.Properties) error { return nil }
func (t reportType) Open(context.Context, resource.OpenRequest) (resource.Resource, error) {
	return t.r, nil
}
func (r *reporter) Online(context.Context) error     { return nil }
func (r *reporter) Offline(context.Context) error    { return nil }
func (r *reporter) LooksAlive(context.Context) error { return nil }
func (r *reporter) IsAlive(context.Context) error    { return nil }
func (r *reporter) Terminate(context.Context) error {
	r.mu.Lock()
	r.terminates++
	r.mu.Unlock()
	return nil
}
func (r *reporter) SetFailureHandler(fn func(error)) { r.mu.Lock(); r.fn = fn; r.mu.Unlock() }
func (r *reporter) report()                          { r.mu.Lock(); fn := r.fn; r.mu.Unlock(); fn(errors.New("boom")) }
func (r *reporter) count() int                       { r.mu.Lock(); defer r.mu.Unlock(); return r.terminates }

// The plugin terminates an instance that reported a failure while online,
// and says so (terminating, then KIND_TERMINATED of the same cycle); not
// one that is not online; and not one the host called again meanwhile
// (an Online of the next cycle waits for the call slot behind it, or is
// first and then the plugin leaves Terminate to the host).
func TestTerminateAfterFailure(t *testing.T) {
	rep := &reporter{}
	s, err := newGRPCServer([]resource.Type{reportType{rep}}, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	resp, err := s.Open(t.Context(), &pb.OpenRequest{Type: "report", Name: "x"})
	require.NoError(t, err)
	inst, err := s.inst(resp.GetInstance())
	require.NoError(t, err)
	next := func() []*pb.Event {
		t.Helper()
		var evs []*pb.Event
		deadline := time.Now().Add(10 * time.Second)
		for len(evs) == 0 || evs[len(evs)-1].GetKind() != pb.Event_KIND_TERMINATED {
			evs = append(evs, s.events.take()...)
			if len(evs) == 1 && !evs[0].GetTerminating() {
				return evs
			}
			if time.Now().After(deadline) {
				t.Fatalf("no KIND_TERMINATED after %v", evs)
			}
			time.Sleep(time.Millisecond)
		}
		return evs
	}

	// Not online: reported, not terminated.
	rep.report()
	evs := next()
	require.Len(t, evs, 1)
	require.Equal(t, pb.Event_KIND_FAILURE, evs[0].GetKind())
	require.False(t, evs[0].GetTerminating())
	require.Equal(t, 0, rep.count())

	// Online in cycle 1: terminated in the plugin.
	inst.setOnline(inst.setCycle(1, nil, true), 1)
	rep.report()
	evs = next()
	require.Len(t, evs, 2, "%v", evs)
	require.True(t, evs[0].GetTerminating())
	require.Equal(t, uint64(1), evs[1].GetCycle())
	require.Nil(t, evs[1].GetError())
	require.Equal(t, 1, rep.count())
	cycle, online := inst.onlineCycle()
	require.Equal(t, uint64(1), cycle)
	require.False(t, online, "terminated: not online any more")

	// Online in cycle 2, a failure, and the host's Online of cycle 3
	// starting before the plugin's Terminate has the call slot: nothing
	// terminated, the host is told.
	inst.setOnline(inst.setCycle(2, nil, true), 2)
	require.NoError(t, inst.acquire(t.Context())) // a call in flight
	rep.report()
	inst.setCycle(3, nil, true)
	inst.release()
	evs = next()
	require.Len(t, evs, 2, "%v", evs)
	require.True(t, evs[0].GetTerminating())
	require.Equal(t, uint64(2), evs[1].GetCycle())
	require.NotNil(t, evs[1].GetError(), "not terminated")
	require.Equal(t, 1, rep.count(), "the Online of cycle 3 is not terminated")
}
