package cluster

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sftkit/sft/cluster/state"
)

// EventKind names a cluster event.
type EventKind string

// The cluster's events. Those derived from the replicated state
// (NodeUp/NodeDown, Placement, MoveStarted/MoveDone, FailureRecorded) are
// seen on every node; the others are about the node that publishes them.
const (
	EventNodeUp          EventKind = "node-up"          // the cluster state marks a node up (Detail: evidence)
	EventNodeDown        EventKind = "node-down"        // ... down: a majority of the others agree it is silent
	EventNodeMaintenance EventKind = "node-maintenance" // ... in maintenance
	EventPathDown        EventKind = "path-down"        // this node lost one interconnect path to a peer (nothing moves)
	EventPathUp          EventKind = "path-up"          // ... and has it again
	EventLeader          EventKind = "leader"           // the raft leader changed (Node: the new leader, "" none): moves nothing
	EventPlacement       EventKind = "placement"        // a group got a new owner (Node; "" offline), Epoch, Detail: kind and reason
	EventMoveStarted     EventKind = "move-started"     // a drain began: the owner takes the group offline for Node
	EventMoveDone        EventKind = "move-done"        // the drained group is owned by Node
	EventFailure         EventKind = "failure"          // a group failure was recorded (Node: where; Detail: class and reason)
	EventLeaseGained     EventKind = "lease-gained"     // this node holds its lease
	EventLeaseLost       EventKind = "lease-lost"       // this node lost its lease: it fences every group now
	EventFenced          EventKind = "fenced"           // a group was fenced here (Detail: surely down or not)
	EventFenceNeeded     EventKind = "fence-needed"     // a group cannot come online here: its address is held elsewhere
	EventAdopted         EventKind = "adopted"          // after a restart, what still ran here of a group this node owns was kept (Detail: the probe)
	EventOnline          EventKind = "online"           // a group came online here (Epoch)
	EventOffline         EventKind = "offline"          // a group went offline here
	EventError           EventKind = "error"            // something this node tried failed (Detail)
)

// Event is one cluster event.
type Event struct {
	// Seq grows by one per event of this node.
	Seq   uint64    `json:"seq"`
	At    time.Time `json:"at"`
	Kind  EventKind `json:"kind"`
	Node  string    `json:"node,omitempty"`
	Group string    `json:"group,omitempty"`
	Epoch uint64    `json:"epoch,omitempty"`
	// Detail is the evidence or the reason, for people.
	Detail string `json:"detail,omitempty"`
}

// The causes of a failover ([Event.FailoverCause]).
const (
	CauseNodeLost    = "node-lost"    // the owner was declared down (or left the cluster)
	CauseGroupFailed = "group-failed" // the group failed and stopped on its owner
	CauseOther       = "other"
)

// FailoverCause is why a placement event of kind failover happened:
// CauseNodeLost, CauseGroupFailed or CauseOther; "" for any other event.
func (e Event) FailoverCause() string {
	if e.Kind != EventPlacement || !strings.HasPrefix(e.Detail, string(state.KindFailover)+" ") {
		return ""
	}
	switch {
	case strings.Contains(e.Detail, ": failed on "):
		return CauseGroupFailed
	case strings.Contains(e.Detail, " is down") || strings.Contains(e.Detail, " is not a member of the cluster"):
		return CauseNodeLost
	}
	return CauseOther
}

func (e Event) String() string {
	s := string(e.Kind)
	if e.Group != "" {
		s += " " + e.Group
	}
	if e.Node != "" {
		s += " node=" + e.Node
	}
	if e.Epoch != 0 {
		s += fmt.Sprintf(" epoch=%d", e.Epoch)
	}
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// Subscription receives events through a bounded buffer: a slow reader
// loses events (counted by Dropped) and never blocks the node.
type Subscription struct {
	c       chan Event
	dropped atomic.Uint64
	hub     *hub
}

// C is the event channel; it is closed when the node closes or the
// subscription is closed.
func (s *Subscription) C() <-chan Event { return s.c }

// Dropped counts the events lost because the buffer was full.
func (s *Subscription) Dropped() uint64 { return s.dropped.Load() }

// Close ends the subscription.
func (s *Subscription) Close() { s.hub.remove(s) }

type hub struct {
	mu     sync.Mutex
	subs   map[*Subscription]struct{}
	closed bool
	seq    uint64
}

func (h *hub) subscribe(buffer int) *Subscription {
	if buffer <= 0 {
		buffer = 256
	}
	s := &Subscription{c: make(chan Event, buffer), hub: h}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		close(s.c)
		return s
	}
	if h.subs == nil {
		h.subs = map[*Subscription]struct{}{}
	}
	h.subs[s] = struct{}{}
	return s
}

func (h *hub) remove(s *Subscription) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.subs[s]; ok {
		delete(h.subs, s)
		close(s.c)
	}
}

func (h *hub) publish(e Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.seq++
	e.Seq = h.seq
	for s := range h.subs {
		select {
		case s.c <- e:
		default:
			s.dropped.Add(1)
		}
	}
}

func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for s := range h.subs {
		close(s.c)
	}
	h.subs = nil
}
