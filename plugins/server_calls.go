package plugins

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	pb "github.com/sftkit/sft/plugins/internal/proto/sftresourcev1"
)

// Calls serves the call stream (capability "calls"): every request runs on
// a goroutine of its own, exactly as the handler of its per-call RPC would
// (the same pending, check and terminate), under a context that carries
// the host's deadline (moved by DEADLINE requests) and ends at a CANCEL
// request for it or with the stream (streamCallCtx).
// Replies leave through one sender goroutine, in the order they were
// queued, so a call's progress reports precede its end.
//
// Why a stream: a gRPC call costs each side a stream (headers, flow
// control, a handler goroutine on the plugin's side) and a goroutine whose
// stack grows inside gRPC on the host's. With a thousand Onlines at once,
// growing and freshly touched goroutine stacks were about 40 % of the CPU
// of both processes (issue 15, scalebench -phases noop); here the calls
// run on shallow goroutines and only the two long-lived stream goroutines
// on each side go through gRPC.
func (s *grpcServer) Calls(stream pb.ResourcePlugin_CallsServer) error {
	ctx := stream.Context()
	out := newSendQueue[*pb.CallReply]()
	go out.run(ctx, stream.Send)
	var (
		mu    sync.Mutex
		calls = make(map[uint64]*streamCallCtx)
	)
	for {
		req, err := stream.Recv()
		if err != nil {
			return nil // the host closed the stream or went away: ctx ends every call
		}
		id := req.GetId()
		switch req.GetMethod() {
		case pb.CallRequest_METHOD_CANCEL, pb.CallRequest_METHOD_DEADLINE:
			mu.Lock()
			c := calls[id]
			mu.Unlock()
			switch {
			case c == nil: // it has ended
			case req.GetMethod() == pb.CallRequest_METHOD_DEADLINE:
				c.setTimeout(time.Duration(req.GetTimeoutNs()))
			case req.GetDeadlineExceeded():
				c.cancel(context.DeadlineExceeded)
			default:
				c.cancel(context.Canceled)
			}
			continue
		}
		c := newStreamCallCtx(ctx)
		c.setTimeout(time.Duration(req.GetTimeoutNs()))
		mu.Lock()
		calls[id] = c
		mu.Unlock()
		go func() {
			err := s.serveCall(c, req, callProgress{ctx: c, id: id, out: out})
			mu.Lock()
			delete(calls, id)
			mu.Unlock()
			c.end()
			rep := &pb.CallReply{Id: id, Done: true}
			if err != nil {
				rep.Error = errorToDetail(err)
			}
			out.push(rep)
		}()
	}
}

// streamCallCtx is the context of a call on the call stream. Its deadline
// is the host's, and moves with it (DEADLINE: a monitor moves a pending
// call's deadline with each progress report, which a gRPC call's fixed
// deadline could not follow). It ends when the host says so (CANCEL, with
// DeadlineExceeded at the host's deadline), with the stream, or, should
// the host stop answering, deadlineBackstop after its deadline: a move of
// the deadline that is still on its way must not end the call.
type streamCallCtx struct {
	context.Context // cancelled with the cause
	cancel          context.CancelCauseFunc

	mu       sync.Mutex
	deadline time.Time // zero: none
	timer    *time.Timer
}

func newStreamCallCtx(parent context.Context) *streamCallCtx {
	ctx, cancel := context.WithCancelCause(parent)
	return &streamCallCtx{Context: ctx, cancel: cancel}
}

func (c *streamCallCtx) Deadline() (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.deadline, !c.deadline.IsZero()
}

// Err is DeadlineExceeded once the deadline passed, as a gRPC call's
// context's would be.
func (c *streamCallCtx) Err() error {
	err := c.Context.Err()
	if err != nil && errors.Is(context.Cause(c.Context), context.DeadlineExceeded) {
		return context.DeadlineExceeded
	}
	return err
}

// setTimeout sets the deadline d from now; d <= 0: none.
func (c *streamCallCtx) setTimeout(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if d <= 0 {
		c.deadline = time.Time{}
		if c.timer != nil {
			c.timer.Stop()
		}
		return
	}
	c.deadline = time.Now().Add(d)
	if c.timer == nil {
		c.timer = time.AfterFunc(d+deadlineBackstop, func() { c.cancel(context.DeadlineExceeded) })
		return
	}
	c.timer.Reset(d + deadlineBackstop)
}

// deadlineBackstop: how long after its deadline a call on the call stream
// ends by itself when the host has not cancelled it (the host cancels at
// its deadline, and its deadline may have moved on).
const deadlineBackstop = time.Second

// end releases the context once the call returned.
func (c *streamCallCtx) end() {
	c.mu.Lock()
	if c.timer != nil {
		c.timer.Stop()
	}
	c.mu.Unlock()
	c.cancel(nil)
}

// serveCall runs one request of the call stream.
func (s *grpcServer) serveCall(ctx context.Context, req *pb.CallRequest, prog callProgress) error {
	r := req.GetRequest()
	switch req.GetMethod() {
	case pb.CallRequest_METHOD_ONLINE:
		return s.pending(r, prog, true)
	case pb.CallRequest_METHOD_OFFLINE:
		return s.pending(r, prog, false)
	case pb.CallRequest_METHOD_LOOKS_ALIVE:
		return s.check(ctx, r, false)
	case pb.CallRequest_METHOD_IS_ALIVE:
		return s.check(ctx, r, true)
	case pb.CallRequest_METHOD_TERMINATE:
		return s.terminate(ctx, r)
	}
	return fmt.Errorf("call stream: unknown method %v", req.GetMethod())
}

// callProgress is the progressStream of a call on the call stream.
type callProgress struct {
	ctx context.Context
	id  uint64
	out *sendQueue[*pb.CallReply]
}

func (p callProgress) Context() context.Context { return p.ctx }

func (p callProgress) Send(m *pb.Progress) error {
	p.out.push(&pb.CallReply{Id: p.id, Progress: m.GetMessage()})
	return nil
}

// sendQueue hands messages to one sender goroutine (run), in order: the
// goroutines that push them never enter gRPC. A push after run ended is
// dropped (the stream is gone).
type sendQueue[T any] struct {
	mu    sync.Mutex
	q     []T
	ready chan struct{} // a token while messages are queued
}

func newSendQueue[T any]() *sendQueue[T] {
	return &sendQueue[T]{ready: make(chan struct{}, 1)}
}

func (q *sendQueue[T]) push(m T) {
	q.mu.Lock()
	q.q = append(q.q, m)
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// run sends the queued messages until ctx ends or send fails; it returns
// that error (nil when ctx ended).
func (q *sendQueue[T]) run(ctx context.Context, send func(T) error) error {
	var batch []T
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-q.ready:
		}
		q.mu.Lock()
		batch, q.q = q.q, batch[:0]
		q.mu.Unlock()
		for i, m := range batch {
			if err := send(m); err != nil {
				return err
			}
			var zero T
			batch[i] = zero
		}
	}
}
