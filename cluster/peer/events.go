package peer

import (
	"sync"
	"time"
)

// EventKind names what happened.
type EventKind string

// Event kinds. Alerts ask for an administrator.
const (
	EventOnline         EventKind = "online"          // online at its home at start
	EventRecovery       EventKind = "recovery-held"   // home node back, address held elsewhere: not bound
	EventTakeover       EventKind = "takeover"        // the holder was dead: taken over
	EventIsolated       EventKind = "isolated"        // alert: reference silent too, took nothing
	EventAddressHeld    EventKind = "address-held"    // alert: holder looks dead, address still answered
	EventServiceDead    EventKind = "service-dead"    // alert: pings answer, service does not
	EventUnpingable     EventKind = "unpingable"      // alert: no pings, service answers
	EventPeerDead       EventKind = "peer-dead"       // alert: holder dead, takeover disabled
	EventReleaseRefused EventKind = "release-refused" // alert: the release request failed or was refused
	EventReleased       EventKind = "released"        // this node released the group to the peer
	EventMoved          EventKind = "moved"           // an orderly move (release, Move)
	EventLost           EventKind = "lost"            // alert: the group is no longer online here
	EventTakeoverFailed EventKind = "takeover-failed" // alert
	EventFailback       EventKind = "failback"        // automatic failback
)

// IsAlert reports whether events of kind k are alerts (they ask for an
// administrator).
func (k EventKind) IsAlert() bool {
	switch k {
	case EventIsolated, EventAddressHeld, EventServiceDead, EventUnpingable, EventPeerDead,
		EventReleaseRefused, EventLost, EventTakeoverFailed:
		return true
	}
	return false
}

// Event is something peer mode did or saw.
type Event struct {
	Time    time.Time `json:"time"`
	Node    string    `json:"node"`
	Group   string    `json:"group"`
	Kind    EventKind `json:"kind"`
	Alert   bool      `json:"alert,omitempty"`
	Message string    `json:"message"`
}

// Subscription receives events through a bounded buffer: a slow reader
// loses events (counted by Dropped) and never blocks the node. C is closed
// when the node closes.
type Subscription struct {
	c       chan Event
	mu      sync.Mutex
	dropped int
}

// C is the event channel.
func (s *Subscription) C() <-chan Event { return s.c }

// Dropped is how many events did not fit the buffer.
func (s *Subscription) Dropped() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dropped
}

type hub struct {
	mu     sync.Mutex
	subs   []*Subscription
	closed bool
}

func (h *hub) subscribe(buffer int) *Subscription {
	s := &Subscription{c: make(chan Event, max(buffer, 1))}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		close(s.c)
		return s
	}
	h.subs = append(h.subs, s)
	return s
}

func (h *hub) publish(e Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	for _, s := range h.subs {
		select {
		case s.c <- e:
		default:
			s.mu.Lock()
			s.dropped++
			s.mu.Unlock()
		}
	}
}

func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.closed = true
	for _, s := range h.subs {
		close(s.c)
	}
}
