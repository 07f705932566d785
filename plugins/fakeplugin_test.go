package plugins

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"

	pb "github.com/sftkit/sft/plugins/internal/proto/sftresourcev1"
)

// fakeRPC is a plugin process without a process: the host-side logic
// (relaunch, backoff, heartbeat, Close) under testing/synctest, where a real
// process and gRPC cannot run. Only the calls that logic makes are
// implemented; the others panic (nil embedded interface).
type fakeRPC struct {
	pb.ResourcePluginClient
	pid    int
	dead   chan struct{}
	once   sync.Once
	nextID atomic.Uint64
	// pingStall makes Ping hang until its ctx ends (a frozen process).
	pingStall atomic.Bool
	pings     atomic.Int64
	fp        *fakePlugin
	opens     atomic.Int64
	terms     atomic.Int64
}

func newFakeRPC(pid int) *fakeRPC {
	return &fakeRPC{pid: pid, dead: make(chan struct{}), fp: &fakePlugin{}}
}

// die ends the process: its event stream breaks.
func (f *fakeRPC) die() { f.once.Do(func() { close(f.dead) }) }

func (f *fakeRPC) Info(context.Context, *pb.InfoRequest, ...grpc.CallOption) (*pb.InfoResponse, error) {
	return &pb.InfoResponse{Protocol: protocolVersion, Types: []*pb.TypeInfo{{Name: "fake"}},
		Capabilities: []string{capEvents, capLooksAliveLoop, capSchedule, capCycle}}, nil
}

func (f *fakeRPC) alive(ctx context.Context) error {
	select {
	case <-f.dead:
		return errors.New("connection closed")
	case <-ctx.Done():
		return ctx.Err()
	default:
		return nil
	}
}

func (f *fakeRPC) Validate(ctx context.Context, _ *pb.ValidateRequest, _ ...grpc.CallOption) (*pb.Empty, error) {
	return &pb.Empty{}, f.alive(ctx)
}

func (f *fakeRPC) Open(ctx context.Context, _ *pb.OpenRequest, _ ...grpc.CallOption) (*pb.OpenResponse, error) {
	if err := f.alive(ctx); err != nil {
		return nil, err
	}
	if gate := f.fp.openGate.Load(); gate != nil {
		select {
		case <-*gate:
		case <-f.dead:
			return nil, errors.New("connection closed")
		}
	}
	if f.fp.onOpen != nil {
		f.fp.onOpen()
	}
	f.opens.Add(1)
	return &pb.OpenResponse{Instance: f.nextID.Add(1), Cgroup: f.fp.cgroup}, nil
}

func (f *fakeRPC) Close(ctx context.Context, _ *pb.InstanceRequest, _ ...grpc.CallOption) (*pb.Empty, error) {
	return &pb.Empty{}, f.alive(ctx)
}

func (f *fakeRPC) Terminate(ctx context.Context, _ *pb.InstanceRequest, _ ...grpc.CallOption) (*pb.Empty, error) {
	f.terms.Add(1)
	return &pb.Empty{}, f.alive(ctx)
}

func (f *fakeRPC) Online(ctx context.Context, _ *pb.InstanceRequest, _ ...grpc.CallOption) (grpc.ServerStreamingClient[pb.Progress], error) {
	if err := f.alive(ctx); err != nil {
		return nil, err
	}
	return eofStream{}, nil
}

func (f *fakeRPC) Offline(ctx context.Context, r *pb.InstanceRequest, o ...grpc.CallOption) (grpc.ServerStreamingClient[pb.Progress], error) {
	return f.Online(ctx, r, o...)
}

func (f *fakeRPC) Ping(ctx context.Context, _ *pb.Empty, _ ...grpc.CallOption) (*pb.Empty, error) {
	f.pings.Add(1)
	for f.pingStall.Load() { // answers once it thaws
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-f.dead:
			return nil, errors.New("connection closed")
		case <-time.After(10 * time.Millisecond):
		}
	}
	return &pb.Empty{}, f.alive(ctx)
}

func (f *fakeRPC) Events(ctx context.Context, _ *pb.EventsRequest, _ ...grpc.CallOption) (grpc.ServerStreamingClient[pb.Event], error) {
	return &deathStream{ctx: ctx, dead: f.dead}, nil
}

type eofStream struct{ grpc.ClientStream }

func (eofStream) Recv() (*pb.Progress, error) { return nil, io.EOF }

// deathStream is an Events stream that ends when the process dies.
type deathStream struct {
	grpc.ClientStream
	ctx  context.Context
	dead chan struct{}
}

func (s *deathStream) Recv() (*pb.Event, error) {
	select {
	case <-s.ctx.Done():
		return nil, s.ctx.Err()
	case <-s.dead:
		return nil, errors.New("connection closed")
	}
}

// fakePlugin launches fakeRPC "processes" for a Pool.
type fakePlugin struct {
	mu       sync.Mutex
	procs    []*fakeRPC
	events   []ProcessEvent
	openGate atomic.Pointer[chan struct{}] // when set, Open answers once it is closed
	// Set before the processes start (not changed after):
	cgroup string // what Open reports (resource.Contained)
	onOpen func() // called by Open before it answers
}

func (fp *fakePlugin) last() *fakeRPC {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	return fp.procs[len(fp.procs)-1]
}

func (fp *fakePlugin) starts() int {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	return len(fp.procs)
}

func (fp *fakePlugin) kinds() []string {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	var out []string
	for _, e := range fp.events {
		out = append(out, e.Kind)
	}
	return out
}

// launchFake returns a Pool whose processes are fakeRPCs. Call it inside a
// synctest bubble.
func launchFake(t *testing.T, cfg Config) (*Pool, *fakePlugin) {
	t.Helper()
	return launchFakeWith(t, cfg, &fakePlugin{})
}

// launchFakeWith is launchFake with fp's settings.
func launchFakeWith(t *testing.T, cfg Config, fp *fakePlugin) (*Pool, *fakePlugin) {
	t.Helper()
	cfg.Path = "fake"
	cfg.OnProcess = func(e ProcessEvent) {
		fp.mu.Lock()
		fp.events = append(fp.events, e)
		fp.mu.Unlock()
	}
	cfg, pin, err := cfg.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	h := newPool(cfg, pin)
	h.start = func(ctx context.Context, l *lineage) (*gen, error) {
		fp.mu.Lock()
		f := newFakeRPC(1000 + len(fp.procs))
		f.fp = fp
		fp.procs = append(fp.procs, f)
		fp.mu.Unlock()
		h.notify(ProcessEvent{Kind: l.forked(), Pid: f.pid})
		return h.newGen(ctx, l, f, f.pid, f.die, f.die)
	}
	h.shared = h.newLineage()
	if _, err := h.init(t.Context()); err != nil {
		t.Fatal(err)
	}
	return h, fp
}

func (f *fakeRPC) rpcDead() bool {
	select {
	case <-f.dead:
		return true
	default:
		return false
	}
}
