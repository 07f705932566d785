package state

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/sftkit/sft/policy"
	"github.com/sftkit/sft/resource"
)

// Version is the command and snapshot format this package writes. Apply
// refuses entries of a newer version, so a node running older code stops
// with a clear error instead of misreading the log.
const Version = 1

// Command is one change to the state. Every command is a plain struct with
// JSON field names that are part of the log format: add fields, never
// rename or reuse them.
type Command interface {
	// Type is the command's name in the log ("set_owner", ...).
	Type() string
}

// AddNode adds a node to the cluster (or changes its addresses). A new node
// starts down until the detector says it is up; a witness votes and
// heartbeats but never hosts a group.
type AddNode struct {
	Node string `json:"node"`
	// Addrs are its heartbeat addresses, one per interconnect path.
	Addrs   []string `json:"addrs,omitempty"`
	Witness bool     `json:"witness,omitempty"`
	// Raft is its raft (TCP) address on the interconnect.
	Raft string `json:"raft,omitempty"`
}

// RemoveNode removes a node. It must own no group; pending moves to it
// are cancelled.
type RemoveNode struct {
	Node string `json:"node"`
}

// SetNodeState records a node's state (up, down, maintenance) as the
// detector or a person decided it. Not for witnesses' hosting: a witness
// hosts nothing in any state.
type SetNodeState struct {
	Node   string           `json:"node"`
	State  policy.NodeState `json:"state"`
	Reason string           `json:"reason,omitempty"`
}

// Kind says why a group's owner changed.
type Kind string

// The kinds of ownership change. Only KindFailover counts towards the
// group's failover threshold.
const (
	KindPlace    Kind = "place"    // first placement, drain, owner no longer allowed
	KindFailover Kind = "failover" // the group failed or its owner was lost
	KindFailback Kind = "failback" // back to a better node (failback, rebalance)
	KindMove     Kind = "move"     // a person moved it
	KindOffline  Kind = "offline"  // taken offline: owner ""
)

// SetOwner gives a group a new owner ("" for none). It is a
// compare-and-set on the group's epoch: applied only if the group's epoch
// is still PrevEpoch, so a decision made on stale state (by a leader that
// has since been deposed, say) changes nothing. The epoch then increments:
// every ownership change has its own epoch, and a node acts on ownership
// only with the epoch it was given.
type SetOwner struct {
	Group     string `json:"group"`
	Owner     string `json:"owner"`
	PrevEpoch uint64 `json:"prev_epoch"`
	Kind      Kind   `json:"kind"`
	Reason    string `json:"reason,omitempty"`
	// Failed (with KindOffline) leaves the group failed: it stays offline
	// until ClearFailure (the failover threshold was reached, or no node
	// can host it).
	Failed bool `json:"failed,omitempty"`
}

// RecordFailure records that a group failed on a node and gave up there.
// The class decides the ban: node-local bans that node for the group,
// configuration bans every node, transient bans nothing. The group is
// marked failed until it gets a new owner or ClearFailure.
type RecordFailure struct {
	Group  string         `json:"group"`
	Node   string         `json:"node"`
	Class  resource.Class `json:"class"`
	Reason string         `json:"reason,omitempty"`
}

// ClearFailure clears a group's failed state and all its bans (a person
// fixed the cause).
type ClearFailure struct {
	Group string `json:"group"`
}

// Ban keeps a group off a node ("" for every node) by hand.
type Ban struct {
	Group  string `json:"group"`
	Node   string `json:"node"`
	Reason string `json:"reason,omitempty"`
}

// MoveGroup asks for a group to be moved to a node: the owner drains it
// (takes it offline and says so with Release), then the leader applies
// SetOwner with Kind (KindMove when empty), so it never runs on both. ""
// cancels a pending move.
type MoveGroup struct {
	Group string `json:"group"`
	To    string `json:"to"`
	// Kind and Reason are those of the SetOwner that ends the move
	// (a failback or rebalance drains the same way).
	Kind   Kind   `json:"kind,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// Release is the owner's word that it took a group offline for a pending
// move at the given epoch: the leader may now give the group to MoveTo.
type Release struct {
	Group string `json:"group"`
	Node  string `json:"node"`
	Epoch uint64 `json:"epoch"`
}

// SetStopped records that a person wants a group offline cluster-wide
// (Stopped) or placed again. A stopped group is left out of placement;
// the leader takes it offline on its owner.
type SetStopped struct {
	Group   string `json:"group"`
	Stopped bool   `json:"stopped"`
	Reason  string `json:"reason,omitempty"`
}

// RemoveGroup forgets a group that left the configuration. It must be
// offline (no owner).
type RemoveGroup struct {
	Group string `json:"group"`
}

// SetConfigVersion records the configuration version every node must run;
// it only grows.
type SetConfigVersion struct {
	Version uint64 `json:"version"`
}

func (AddNode) Type() string          { return "add_node" }
func (RemoveNode) Type() string       { return "remove_node" }
func (SetNodeState) Type() string     { return "set_node_state" }
func (SetOwner) Type() string         { return "set_owner" }
func (RecordFailure) Type() string    { return "record_failure" }
func (ClearFailure) Type() string     { return "clear_failure" }
func (Ban) Type() string              { return "ban" }
func (MoveGroup) Type() string        { return "move_group" }
func (Release) Type() string          { return "release" }
func (SetStopped) Type() string       { return "set_stopped" }
func (RemoveGroup) Type() string      { return "remove_group" }
func (SetConfigVersion) Type() string { return "set_config_version" }

// decoders turn a body into its command, by type name.
var decoders = map[string]func(json.RawMessage) (Command, error){
	"add_node":           decode[AddNode],
	"remove_node":        decode[RemoveNode],
	"set_node_state":     decode[SetNodeState],
	"set_owner":          decode[SetOwner],
	"record_failure":     decode[RecordFailure],
	"clear_failure":      decode[ClearFailure],
	"ban":                decode[Ban],
	"move_group":         decode[MoveGroup],
	"remove_group":       decode[RemoveGroup],
	"release":            decode[Release],
	"set_stopped":        decode[SetStopped],
	"set_config_version": decode[SetConfigVersion],
}

func decode[C Command](body json.RawMessage) (Command, error) {
	var c C
	err := json.Unmarshal(body, &c)
	return c, err
}

// Entry is one log entry: a command with the time its proposer gave it.
// Apply uses At as "now" (it never reads the clock), so every node applies
// an entry the same way.
type Entry struct {
	At  time.Time
	Cmd Command
}

type wireEntry struct {
	V    int             `json:"v"`
	Type string          `json:"type"`
	At   time.Time       `json:"at"`
	Body json.RawMessage `json:"body"`
}

// Encode turns an entry into its log bytes.
func Encode(e Entry) ([]byte, error) {
	if e.Cmd == nil {
		return nil, resource.ConfigError("cmd", nil, "no command")
	}
	body, err := json.Marshal(e.Cmd)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", e.Cmd.Type(), err)
	}
	return json.Marshal(wireEntry{V: Version, Type: e.Cmd.Type(), At: e.At, Body: body})
}

// Decode is the inverse of Encode. It refuses a newer version and an
// unknown command type, naming them.
func Decode(b []byte) (Entry, error) {
	var w wireEntry
	if err := json.Unmarshal(b, &w); err != nil {
		return Entry{}, fmt.Errorf("decode log entry: %w", err)
	}
	if w.V < 1 || w.V > Version {
		return Entry{}, resource.ConfigError("v", w.V, "log entry version not supported (this node reads 1 to %d)", Version)
	}
	dec, ok := decoders[w.Type]
	if !ok {
		return Entry{}, resource.ConfigError("type", w.Type, "unknown command")
	}
	cmd, err := dec(w.Body)
	if err != nil {
		return Entry{}, fmt.Errorf("decode %s: %w", w.Type, err)
	}
	return Entry{At: w.At, Cmd: cmd}, nil
}
