package policy

import (
	"fmt"
	"time"

	"github.com/sftkit/sft/resource"
)

// Action is what a decision asks for.
type Action int

const (
	// ActionNone: nothing to do (the failure does not count, or no move is
	// wanted).
	ActionNone Action = iota
	// ActionRestart: restart the resource on this node after Delay.
	ActionRestart
	// ActionFailover: the group has failed here; move it to another node.
	ActionFailover
	// ActionStayFailed: leave it failed. With Delay > 0, try again (with a
	// fresh count) after Delay: WSFC's RetryPeriodOnFailure.
	ActionStayFailed
	// ActionMove: move the group to Node (failback, placement).
	ActionMove
)

func (a Action) String() string {
	switch a {
	case ActionNone:
		return "none"
	case ActionRestart:
		return "restart"
	case ActionFailover:
		return "failover"
	case ActionStayFailed:
		return "stay-failed"
	case ActionMove:
		return "move"
	}
	return fmt.Sprintf("Action(%d)", int(a))
}

// MarshalText implements encoding.TextMarshaler.
func (a Action) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// Decision is the outcome of a policy: what to do, after how long, on which
// node (for moves), and why.
type Decision struct {
	Action Action
	Delay  time.Duration
	// Node is the target of ActionMove or ActionFailover, when the policy
	// knows it.
	Node string
	// Reason says why, for logs and events.
	Reason string
}

func (d Decision) String() string {
	s := d.Action.String()
	if d.Node != "" {
		s += " to " + d.Node
	}
	if d.Delay > 0 {
		s += " after " + d.Delay.String()
	}
	return s + ": " + d.Reason
}

// History is a list of event times (failures, restarts, failovers) used to
// count events within a period. It is a plain value: Add returns a new
// History and never modifies the receiver's backing array in place.
type History []time.Time

// Add returns h with t appended and events older than keep before t
// dropped (keep <= 0 keeps everything).
func (h History) Add(t time.Time, keep time.Duration) History {
	out := make(History, 0, len(h)+1)
	for _, x := range h {
		if keep <= 0 || t.Sub(x) < keep {
			out = append(out, x)
		}
	}
	return append(out, t)
}

// Within counts the events in (now-period, now].
func (h History) Within(now time.Time, period time.Duration) int {
	n := 0
	for _, x := range h {
		if !x.After(now) && now.Sub(x) < period {
			n++
		}
	}
	return n
}

// errField is a configuration error naming the field and its bad value.
func errField(field string, value any, format string, args ...any) error {
	return resource.ConfigError(field, value, format, args...)
}
