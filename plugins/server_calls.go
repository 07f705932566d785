package plugins

import (
	"context"
	"fmt"
	"sync"
	"time"

	pb "github.com/sftkit/sft/plugins/internal/proto/sftresourcev1"
)

// Calls serves the call stream (capability "calls"): every request runs on
// a goroutine of its own, exactly as the handler of its per-call RPC would
// (the same pending, check and terminate), under a context that ends with
// the stream, at the request's timeout, or at a CANCEL request for it.
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
		calls = make(map[uint64]context.CancelCauseFunc)
	)
	for {
		req, err := stream.Recv()
		if err != nil {
			return nil // the host closed the stream or went away: ctx ends every call
		}
		id := req.GetId()
		if req.GetMethod() == pb.CallRequest_METHOD_CANCEL {
			mu.Lock()
			cancel := calls[id]
			mu.Unlock()
			if cancel != nil {
				cancel(context.Canceled)
			}
			continue
		}
		cctx, cancel := context.WithCancelCause(ctx)
		var stop context.CancelFunc = func() {}
		if t := time.Duration(req.GetTimeoutNs()); t > 0 {
			cctx, stop = context.WithTimeout(cctx, t)
		}
		mu.Lock()
		calls[id] = cancel
		mu.Unlock()
		go func() {
			err := s.serveCall(cctx, req, callProgress{ctx: cctx, id: id, out: out})
			mu.Lock()
			delete(calls, id)
			mu.Unlock()
			stop()
			cancel(nil)
			rep := &pb.CallReply{Id: id, Done: true}
			if err != nil {
				rep.Error = errorToDetail(err)
			}
			out.push(rep)
		}()
	}
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
