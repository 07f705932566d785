package monitor

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sftkit/sft/resource"
)

// EventKind says what an Event reports.
type EventKind int

const (
	// EventStateChanged: a resource changed state (From, To, Reason).
	EventStateChanged EventKind = iota + 1
	// EventGroupStateChanged: a group changed state (Resource is empty).
	EventGroupStateChanged
	// EventRestart: the restart policy decided to restart a resource
	// after Delay (Reason says which restart of how many).
	EventRestart
	// EventGroupFailed: the group failed here and every resource is
	// stopped (it is published when that is true, not when the failure
	// is decided). Class is the failure's error class; Failover says
	// whether the policy wants it moved to another node; RetryAfter > 0
	// means this node tries it again after that long
	// (RetryPeriodOnFailure) unless the group is taken offline, cleared or
	// brought online before, or is managed.
	EventGroupFailed
	// EventCallTimedOut: a call (Method) outlived its timeout.
	EventCallTimedOut
	// EventCallDeadlocked: a call outlived the deadlock timeout and was
	// abandoned; the hosting process was killed if the resource allows.
	EventCallDeadlocked
	// EventFailurePushed: the resource reported a failure itself.
	EventFailurePushed
	// EventsDropped: this subscriber missed Dropped events because it
	// did not keep up (only ever sent to that subscriber).
	EventsDropped
	// EventStopFailed: a resource could not be stopped (Offline failed,
	// Terminate failed, and its host could not be killed): it is
	// StopFailed and may still run here.
	EventStopFailed
)

var eventKindNames = map[EventKind]string{
	EventStateChanged:      "state_changed",
	EventGroupStateChanged: "group_state_changed",
	EventRestart:           "restart",
	EventGroupFailed:       "group_failed",
	EventCallTimedOut:      "call_timed_out",
	EventCallDeadlocked:    "call_deadlocked",
	EventFailurePushed:     "failure_pushed",
	EventsDropped:          "events_dropped",
	EventStopFailed:        "stop_failed",
}

func (k EventKind) String() string {
	if s, ok := eventKindNames[k]; ok {
		return s
	}
	return fmt.Sprintf("EventKind(%d)", int(k))
}

// MarshalText implements encoding.TextMarshaler.
func (k EventKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// Event is something the monitor did or saw.
type Event struct {
	// Seq numbers events in the order the monitor published them (from
	// the same counter as GroupStatus.Seq). Gaps are events this
	// subscriber missed or that went to nobody.
	Seq      uint64         `json:"seq"`
	Time     time.Time      `json:"time"`
	Kind     EventKind      `json:"kind"`
	Group    string         `json:"group"`
	Resource string         `json:"resource,omitempty"`
	Type     string         `json:"type,omitempty"`
	From     resource.State `json:"from"`
	To       resource.State `json:"to"`
	Reason   string         `json:"reason,omitempty"`
	// Class is the error class of a failure, when there is one.
	Class string `json:"class,omitempty"`
	// Method is the call of EventCallTimedOut and EventCallDeadlocked.
	Method string `json:"method,omitempty"`
	// Delay is the restart delay of EventRestart.
	Delay time.Duration `json:"delay,omitempty"`
	// Failover is set on EventGroupFailed when the policy asks for a move.
	Failover bool `json:"failover,omitempty"`
	// RetryAfter is set on EventGroupFailed when this node retries later.
	RetryAfter time.Duration `json:"retry_after,omitempty"`
	// Dropped is the count of EventsDropped.
	Dropped uint64 `json:"dropped,omitempty"`
}

func (e Event) String() string {
	who := e.Group
	if e.Resource != "" {
		who += "/" + e.Resource
	}
	switch e.Kind {
	case EventStateChanged, EventGroupStateChanged:
		return fmt.Sprintf("%s %s: %s -> %s (%s)", e.Kind, who, e.From, e.To, e.Reason)
	case EventsDropped:
		return fmt.Sprintf("%s: %d", e.Kind, e.Dropped)
	}
	return fmt.Sprintf("%s %s: %s", e.Kind, who, e.Reason)
}

// DefaultSubscriptionBuffer is the buffer of a subscription when none is
// given.
const DefaultSubscriptionBuffer = 256

// Subscription receives events. A subscriber that falls behind loses
// events, never blocks the monitor: they are counted (Dropped) and reported
// to it with an EventsDropped event as soon as it has room again.
type Subscription struct {
	c       chan Event
	hub     *hub
	dropped atomic.Uint64
	owed    uint64 // dropped but not yet reported; guarded by hub.mu
	closed  bool   // guarded by hub.mu
}

// C is the channel of events. It is closed by Close and when the monitor
// closes.
func (s *Subscription) C() <-chan Event { return s.c }

// Dropped is the number of events this subscriber has missed.
func (s *Subscription) Dropped() uint64 { return s.dropped.Load() }

// Close ends the subscription and closes C.
func (s *Subscription) Close() { s.hub.remove(s) }

type hub struct {
	mu   sync.Mutex
	subs map[*Subscription]struct{}
	done bool
}

func (h *hub) subscribe(buffer int) *Subscription {
	if buffer <= 0 {
		buffer = DefaultSubscriptionBuffer
	}
	s := &Subscription{c: make(chan Event, buffer), hub: h}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.done {
		s.closed = true
		close(s.c)
		return s
	}
	if h.subs == nil {
		h.subs = make(map[*Subscription]struct{})
	}
	h.subs[s] = struct{}{}
	return s
}

func (h *hub) remove(s *Subscription) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	delete(h.subs, s)
	close(s.c)
}

// publish numbers e and delivers it to every subscriber without blocking.
func (h *hub) publish(e Event, seq *atomic.Uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	e.Seq = seq.Add(1)
	for s := range h.subs {
		if s.owed > 0 {
			select {
			case s.c <- Event{Time: e.Time, Kind: EventsDropped, Dropped: s.owed, Reason: "subscriber too slow"}:
				s.owed = 0
			default:
			}
		}
		if s.owed == 0 {
			select {
			case s.c <- e:
				continue
			default:
			}
		}
		s.owed++
		s.dropped.Add(1)
	}
}

func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.done = true
	for s := range h.subs {
		s.closed = true
		close(s.c)
	}
	h.subs = nil
}
