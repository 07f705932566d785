package plugins

import (
	"sync"

	pb "github.com/sftkit/sft/plugins/internal/proto/sftresourcev1"
)

// eventQueue holds the events waiting for the host's Events stream. Events
// describe state, so the queue coalesces instead of dropping: per instance
// it keeps the latest event of each slot (LooksAlive state, IsAlive state,
// reported failure, deadlock, the end of a Terminate after a failure), in
// the order they arose, except that an
// IsAlive failure stays queued when a later IsAlive success follows it, so
// the host still sees (and fires) the failure. No failure is lost however
// slow the host reads, and memory is bounded by the number of instances
// (at most six events each).
type eventQueue struct {
	ready chan struct{} // has a token while events are queued

	mu    sync.Mutex
	order []uint64               // instances with queued events, oldest first
	pend  map[uint64][]*pb.Event // per instance, oldest first
}

func newEventQueue() eventQueue {
	return eventQueue{ready: make(chan struct{}, 1), pend: make(map[uint64][]*pb.Event)}
}

// slot groups the kinds of which only the latest event matters.
func slot(k pb.Event_Kind) int {
	switch k {
	case pb.Event_KIND_LOOKS_ALIVE_FAILED, pb.Event_KIND_LOOKS_ALIVE_OK:
		return 1
	case pb.Event_KIND_IS_ALIVE_FAILED, pb.Event_KIND_IS_ALIVE_OK:
		return 2
	case pb.Event_KIND_FAILURE:
		return 3
	case pb.Event_KIND_DEADLOCK:
		return 4
	case pb.Event_KIND_TERMINATED:
		return 5
	}
	return 0
}

func (q *eventQueue) push(ev *pb.Event) {
	q.mu.Lock()
	id := ev.GetInstance()
	list, ok := q.pend[id]
	if !ok {
		q.order = append(q.order, id)
	}
	out := list[:0]
	for _, e := range list {
		superseded := slot(e.GetKind()) == slot(ev.GetKind()) &&
			!(e.GetKind() == pb.Event_KIND_IS_ALIVE_FAILED && ev.GetKind() == pb.Event_KIND_IS_ALIVE_OK)
		if !superseded {
			out = append(out, e)
		}
	}
	q.pend[id] = append(out, ev)
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// take returns every queued event, per instance in order, and empties the
// queue.
func (q *eventQueue) take() []*pb.Event {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []*pb.Event
	for _, id := range q.order {
		out = append(out, q.pend[id]...)
	}
	q.order = nil
	clear(q.pend)
	return out
}
