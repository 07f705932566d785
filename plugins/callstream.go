package plugins

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	pb "github.com/sftkit/sft/plugins/internal/proto/sftresourcev1"
	"github.com/sftkit/sft/resource"
)

// callStream is the host's end of a plugin process's call stream
// (capability "calls", see grpcServer.Calls): Online, Offline, LooksAlive,
// IsAlive and Terminate of every instance in the process travel on it as
// messages with an id. One goroutine sends (sendQueue), one receives and
// hands each reply to the call waiting for it. Once the stream has ended,
// calls go back to the per-call RPCs (gen.callStream returns nil).
type callStream struct {
	out *sendQueue[*pb.CallRequest]

	mu      sync.Mutex
	next    uint64
	pending map[uint64]*streamCall
	ended   chan struct{} // closed when the stream ended
	err     error         // why it ended; set before ended is closed
}

// streamCall is a call waiting for its replies.
type streamCall struct {
	progress chan string        // progress reports; dropped when full, as the monitor's own
	done     chan *pb.CallReply // the final reply
}

// openCallStream opens the call stream of g's process; ctx ends it (the
// process's death, or its graceful stop).
func openCallStream(ctx context.Context, rpc pb.ResourcePluginClient) (*callStream, error) {
	stream, err := rpc.Calls(ctx)
	if err != nil {
		return nil, err
	}
	c := &callStream{
		out:     newSendQueue[*pb.CallRequest](),
		pending: make(map[uint64]*streamCall),
		ended:   make(chan struct{}),
	}
	go func() {
		if err := c.out.run(ctx, stream.Send); err != nil {
			c.end(err)
		}
	}()
	go c.receive(stream)
	return c, nil
}

func (c *callStream) receive(stream pb.ResourcePlugin_CallsClient) {
	for {
		rep, err := stream.Recv()
		if err != nil {
			c.end(err)
			return
		}
		c.mu.Lock()
		sc := c.pending[rep.GetId()]
		if sc != nil && rep.GetDone() {
			delete(c.pending, rep.GetId())
		}
		c.mu.Unlock()
		switch {
		case sc == nil: // a call that gave up (its CANCEL is on the way)
		case rep.GetDone():
			sc.done <- rep
		default:
			select {
			case sc.progress <- rep.GetProgress():
			default:
			}
		}
	}
}

// end marks the stream ended with err; the calls waiting fail with it.
func (c *callStream) end(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-c.ended:
	default:
		c.err = err
		close(c.ended)
	}
}

// usable reports whether the stream still carries calls.
func (c *callStream) usable() bool {
	select {
	case <-c.ended:
		return false
	default:
		return true
	}
}

// streamEnded is the error of a call whose stream ended under it: the
// connection to the process broke, as a per-call RPC's Unavailable says.
func (c *callStream) streamEnded() error {
	return fmt.Errorf("%w: the call stream ended: %v", ErrPluginExited, c.err)
}

// deadlineMargin is how long before the deadline the plugin has the host
// checks whether the caller moved its own: the move must reach the plugin
// before the old deadline passes there.
const deadlineMargin = 100 * time.Millisecond

// call runs one call on the stream and waits for its end, forwarding its
// progress reports to ctx's progress function. remote is the plugin's
// answer (the resource's error, from its ErrorDetail); err is the call's
// own failure (ctx ended: the plugin is told to cancel the call; or the
// stream ended), to be mapped like a failed RPC's.
func (c *callStream) call(ctx context.Context, m pb.CallRequest_Method, req *pb.InstanceRequest) (remote, err error) {
	c.mu.Lock()
	if !c.usable() {
		c.mu.Unlock()
		return nil, c.streamEnded()
	}
	c.next++
	id := c.next
	sc := &streamCall{progress: make(chan string, 8), done: make(chan *pb.CallReply, 1)}
	c.pending[id] = sc
	c.mu.Unlock()
	r := &pb.CallRequest{Id: id, Method: m, Request: req}
	// The deadline the plugin has; the caller may move its own (a monitor
	// does with each progress report): the move is sent after a report,
	// and before the old deadline would pass (near).
	sent, hasDeadline := ctx.Deadline()
	var near *time.Timer
	var nearC <-chan time.Time // nil without a deadline
	if hasDeadline {
		r.TimeoutNs = max(int64(time.Until(sent)), 1)
		near = time.NewTimer(max(time.Until(sent)-deadlineMargin, 0))
		defer near.Stop()
		nearC = near.C
	}
	moved := func() {
		if dl, ok := ctx.Deadline(); ok && hasDeadline && dl.After(sent) {
			sent = dl
			c.out.push(&pb.CallRequest{Id: id, Method: pb.CallRequest_METHOD_DEADLINE, TimeoutNs: max(int64(time.Until(dl)), 1)})
			near.Reset(max(time.Until(dl)-deadlineMargin, 0))
		}
	}
	c.out.push(r)
	for {
		select {
		case msg := <-sc.progress:
			resource.ReportProgress(ctx, msg)
			moved()
		case <-nearC:
			moved()
		case rep := <-sc.done:
			// The reports the receiver sent before the end, in order
			// (it sends no more for this call).
			for len(sc.progress) > 0 {
				resource.ReportProgress(ctx, <-sc.progress)
			}
			return errorFromDetail(rep.GetError()), nil
		case <-ctx.Done():
			c.mu.Lock()
			delete(c.pending, id)
			c.mu.Unlock()
			dl, ok := ctx.Deadline()
			c.out.push(&pb.CallRequest{Id: id, Method: pb.CallRequest_METHOD_CANCEL,
				DeadlineExceeded: errors.Is(ctx.Err(), context.DeadlineExceeded) || (ok && !time.Now().Before(dl))})
			return nil, ctx.Err()
		case <-c.ended:
			select {
			case rep := <-sc.done: // it ended after the reply came
				return errorFromDetail(rep.GetError()), nil
			default:
			}
			return nil, c.streamEnded()
		}
	}
}
