package api

import (
	"context"
	"errors"
	"time"

	"github.com/sftkit/sft/cluster"
	"github.com/sftkit/sft/cluster/peer"
	"github.com/sftkit/sft/monitor"
)

// Status is the answer of GET /v1/status.
type Status struct {
	// Node is the name of the node that answered.
	Node string `json:"node"`
	// Time is when the snapshot was taken.
	Time time.Time `json:"time"`
	// Groups is every group on the node, sorted by name.
	Groups []GroupStatus `json:"groups"`
	// Cluster is the cluster's view from this node (nodes, lease,
	// placement); nil without a cluster section.
	Cluster *cluster.Status `json:"cluster,omitempty"`
	// Peer is peer mode's view from this node (both nodes, every
	// group's role, owner and reason); nil unless cluster.mode is peer.
	Peer *peer.Status `json:"peer,omitempty"`
}

// GroupStatus is one group: the monitor's snapshot plus placement.
type GroupStatus struct {
	monitor.GroupStatus
	// Owner is the node the group belongs to: this node on a single
	// node; in a cluster the replicated owner ("" none).
	Owner string `json:"owner"`
	// Epoch grows on every ownership change (cluster only).
	Epoch uint64 `json:"epoch,omitempty"`
	// Placement is the reason of the group's current placement (cluster
	// only).
	Placement string `json:"placement,omitempty"`
	// Autostart says whether the group comes online when the node starts.
	Autostart bool `json:"autostart"`
	// Resources replaces the monitor's list with one that adds the
	// node's restart tallies.
	Resources []ResourceStatus `json:"resources"`
}

// ResourceStatus is one resource: the monitor's snapshot plus restart
// tallies named so they cannot be confused. (The monitor's "restarts"
// counts since the node started or the group was last cleared.)
type ResourceStatus struct {
	monitor.ResourceStatus
	// RestartsInPeriod is how many restarts the restart policy counts
	// now: those within the last RestartPeriod since the group last
	// failed or was cleared. The events say "restart N of THRESHOLD".
	RestartsInPeriod int `json:"restarts_in_period"`
	// RestartPeriod is the policy's period, e.g. "15m0s".
	RestartPeriod string `json:"restart_period,omitempty"`
	// RestartsTotal counts every restart since the node started; it is
	// never reset (sft_resource_restarts_total in /metrics).
	RestartsTotal int `json:"restarts_total"`
}

// Event is one monitor event as the API streams it (one JSON object per
// line). Seq increases by one per event the node saw; a gap means the
// history was trimmed.
type Event struct {
	Seq      uint64    `json:"seq"`
	Time     time.Time `json:"time"`
	Node     string    `json:"node"`
	Kind     string    `json:"kind"`
	Group    string    `json:"group,omitempty"`
	Resource string    `json:"resource,omitempty"`
	Type     string    `json:"type,omitempty"`
	From     string    `json:"from,omitempty"`
	To       string    `json:"to,omitempty"`
	Reason   string    `json:"reason,omitempty"`
	Class    string    `json:"class,omitempty"`
	Method   string    `json:"method,omitempty"`
	// Delay is the restart delay of a restart event ("500ms").
	Delay string `json:"delay,omitempty"`
	// Failover is set on group_failed when the policy asks for a move.
	Failover bool `json:"failover,omitempty"`
	// RetryAfter is set on group_failed when this node retries later.
	RetryAfter string `json:"retry_after,omitempty"`
	// Dropped counts events lost by a slow subscriber (events_dropped).
	Dropped uint64 `json:"dropped,omitempty"`
}

// FromMonitor converts a monitor event.
func FromMonitor(seq uint64, node string, e monitor.Event) Event {
	out := Event{
		Seq: seq, Time: e.Time, Node: node, Kind: e.Kind.String(), Group: e.Group, Resource: e.Resource,
		Type: e.Type, Reason: e.Reason, Class: e.Class, Method: e.Method, Failover: e.Failover, Dropped: e.Dropped,
	}
	if e.Kind == monitor.EventStateChanged || e.Kind == monitor.EventGroupStateChanged {
		out.From, out.To = e.From.String(), e.To.String()
	}
	if e.Delay != 0 || e.Kind == monitor.EventRestart {
		out.Delay = e.Delay.String()
	}
	if e.RetryAfter != 0 {
		out.RetryAfter = e.RetryAfter.String()
	}
	return out
}

// String is a one-line rendering for people.
func (e Event) String() string {
	who := e.Group
	if e.Resource != "" {
		who += "/" + e.Resource
	}
	ts := e.Time.Local().Format("15:04:05.000")
	s := ts + " " + e.Kind
	if who != "" {
		s += " " + who
	}
	switch {
	case e.From != "" || e.To != "":
		s += ": " + e.From + " -> " + e.To
		if e.Reason != "" {
			s += " (" + e.Reason + ")"
		}
	case e.Reason != "":
		s += ": " + e.Reason
	}
	if e.Delay != "" && e.Kind == monitor.EventRestart.String() {
		s += " [delay " + e.Delay + "]"
	}
	return s
}

// Backend is what the API serves: the node.
type Backend interface {
	// NodeName is this node's name.
	NodeName() string
	// Status snapshots every group.
	Status() Status
	// Online, Offline and Clear act on a group and wait for the result
	// (ctx bounds the wait).
	Online(ctx context.Context, group string) error
	Offline(ctx context.Context, group string) error
	Clear(ctx context.Context, group string) error
	// Move moves the group to node.
	Move(ctx context.Context, group, node string) error
	// Events returns the recent events and, if follow, a channel of the
	// following ones (closed when the node stops or the subscriber falls
	// too far behind) and a function that ends the subscription.
	Events(follow bool) (history []Event, live <-chan Event, stop func())
}

// Errors a Backend returns that map to HTTP status codes.
var (
	// ErrUnreachable: the client could not connect to the node (none
	// runs at that socket or address, or it refused the connection).
	ErrUnreachable = errors.New("cannot reach the sft host")
	// ErrNotFound: no such group (404).
	ErrNotFound = errors.New("no such group")
	// ErrConflict: the request cannot be done in the current state or
	// without a cluster section (409).
	ErrConflict = errors.New("conflict")
)

// ErrorBody is the JSON body of every error response.
type ErrorBody struct {
	Error string `json:"error"`
}

// ActionResult is the body of a successful group action.
type ActionResult struct {
	Group  string      `json:"group"`
	Action string      `json:"action"`
	Status GroupStatus `json:"status"`
}

// MoveRequest is the body of POST /v1/groups/{name}/move.
type MoveRequest struct {
	Node string `json:"node"`
}
