// Package state is the cluster's authoritative state as a pure state
// machine: nodes and their states, every group's owner with its epoch,
// failures, bans, failover history, pending moves and the configuration
// version. It changes only by applying log entries ([Entry]: a versioned,
// typed [Command] with the proposer's time) through one switch in
// [State.Apply], which never reads the clock and either applies a command
// whole or refuses it with an error and changes nothing. [State.Snapshot]
// and [Restore] save and load the whole state.
//
// [FSM] adapts it to hashicorp/raft (Apply, Snapshot, Restore); nothing
// else here knows about raft, so the state machine is tested on its own.
//
// Ownership changes only by [SetOwner], a compare-and-set on the group's
// epoch. Nothing in the state depends on which node is the raft leader, so
// a leadership change moves no group.
package state

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/sftkit/sft/policy"
	"github.com/sftkit/sft/resource"
)

// Node is a node as the cluster state records it.
type Node struct {
	Name    string   `json:"name"`
	Addrs   []string `json:"addrs,omitempty"`
	Witness bool     `json:"witness,omitempty"`
	Raft    string   `json:"raft,omitempty"`
	// State is up, down or maintenance (a witness's state says whether it
	// is heard, not whether it hosts: it never does).
	State policy.NodeState `json:"state"`
	// Since is when State last changed.
	Since  time.Time `json:"since"`
	Reason string    `json:"reason,omitempty"`
}

// Group is a group's placement state.
type Group struct {
	Name  string `json:"name"`
	Owner string `json:"owner,omitempty"`
	// Epoch counts ownership changes: 0 before the first.
	Epoch uint64 `json:"epoch"`
	// Kind and Reason describe the last SetOwner, Changed when the group
	// came to Owner (a new epoch on the same owner keeps it).
	Kind    Kind      `json:"kind,omitempty"`
	Reason  string    `json:"reason,omitempty"`
	Changed time.Time `json:"changed"`
	// Failed: the group failed on Owner and gave up there.
	Failed      bool                 `json:"failed,omitempty"`
	Bans        []policy.Ban         `json:"bans,omitempty"`
	Failovers   policy.History       `json:"failovers,omitempty"`
	LastFailure map[string]time.Time `json:"last_failure,omitempty"`
	// MoveTo is a pending move (by hand, or a failback draining), with the
	// kind and reason of the ownership change that will end it.
	MoveTo     string `json:"move_to,omitempty"`
	MoveKind   Kind   `json:"move_kind,omitempty"`
	MoveReason string `json:"move_reason,omitempty"`
	// Released: the owner took the group offline for the pending move.
	Released bool `json:"released,omitempty"`
	// Stopped: a person took the group offline cluster-wide; it is left
	// out of placement until started again.
	Stopped       bool   `json:"stopped,omitempty"`
	StoppedReason string `json:"stopped_reason,omitempty"`
}

// State is the whole cluster state. The zero value is an empty cluster.
// It is not safe for concurrent use (FSM serializes).
type State struct {
	// Index is the raft index of the last entry applied (0 without raft).
	Index         uint64            `json:"index"`
	ConfigVersion uint64            `json:"config_version"`
	Nodes         map[string]*Node  `json:"nodes"`
	Groups        map[string]*Group `json:"groups"`
}

// New returns an empty state.
func New() *State {
	return &State{Nodes: map[string]*Node{}, Groups: map[string]*Group{}}
}

// KeepFailovers bounds the failover history kept per group: events older
// than this are dropped when a new one is recorded. Longer than any
// sensible Failover.Period (default 6 h).
const KeepFailovers = 7 * 24 * time.Hour

// Apply applies one entry: all of it, or (with an error saying why)
// nothing.
func (s *State) Apply(e Entry) error {
	if s.Nodes == nil || s.Groups == nil {
		*s = State{Index: s.Index, ConfigVersion: s.ConfigVersion, Nodes: orEmpty(s.Nodes), Groups: orEmpty(s.Groups)}
	}
	switch c := e.Cmd.(type) {
	case AddNode:
		return s.addNode(e.At, c)
	case RemoveNode:
		return s.removeNode(c)
	case SetNodeState:
		return s.setNodeState(e.At, c)
	case SetOwner:
		return s.setOwner(e.At, c)
	case RecordFailure:
		return s.recordFailure(e.At, c)
	case ClearFailure:
		g, err := s.group(c.Group)
		if err == nil {
			g.Failed, g.Bans = false, nil
		}
		return err
	case Ban:
		return s.ban(c)
	case MoveGroup:
		return s.moveGroup(c)
	case RemoveGroup:
		return s.removeGroup(c)
	case Release:
		return s.release(c)
	case SetStopped:
		return s.setStopped(e.At, c)
	case SetConfigVersion:
		if c.Version <= s.ConfigVersion {
			return bad("version", c.Version, "configuration version must grow (now %d)", s.ConfigVersion)
		}
		s.ConfigVersion = c.Version
		return nil
	}
	return bad("cmd", fmt.Sprintf("%T", e.Cmd), "unknown command")
}

func orEmpty[V any](m map[string]V) map[string]V {
	if m == nil {
		return map[string]V{}
	}
	return m
}

func bad(field string, value any, format string, args ...any) error {
	return resource.ConfigError(field, value, format, args...)
}

func (s *State) addNode(at time.Time, c AddNode) error {
	if c.Node == "" {
		return bad("node", c.Node, "empty node name")
	}
	if n, ok := s.Nodes[c.Node]; ok {
		if n.Witness != c.Witness {
			return bad("witness", c.Witness, "node %s exists with witness=%v: remove it first", c.Node, n.Witness)
		}
		n.Addrs, n.Raft = slices.Clone(c.Addrs), c.Raft
		return nil
	}
	s.Nodes[c.Node] = &Node{Name: c.Node, Addrs: slices.Clone(c.Addrs), Witness: c.Witness, Raft: c.Raft,
		State: policy.NodeDown, Since: at, Reason: "added"}
	return nil
}

func (s *State) removeNode(c RemoveNode) error {
	if _, err := s.node(c.Node); err != nil {
		return err
	}
	for _, name := range slices.Sorted(maps.Keys(s.Groups)) {
		if s.Groups[name].Owner == c.Node {
			return bad("node", c.Node, "owns group %s: move it first", name)
		}
	}
	delete(s.Nodes, c.Node)
	for _, g := range s.Groups {
		if g.MoveTo == c.Node {
			g.cancelMove() // a pending move there can no longer happen
		}
	}
	return nil
}

func (s *State) setNodeState(at time.Time, c SetNodeState) error {
	n, err := s.node(c.Node)
	if err != nil {
		return err
	}
	switch c.State {
	case policy.NodeUp, policy.NodeDown, policy.NodeMaintenance:
	default:
		return bad("state", c.State.String(), "a node is up, down or in maintenance")
	}
	if n.State != c.State {
		n.State, n.Since = c.State, at
	}
	n.Reason = c.Reason
	return nil
}

func (s *State) setOwner(at time.Time, c SetOwner) error {
	if c.Group == "" {
		return bad("group", c.Group, "empty group name")
	}
	switch c.Kind {
	case KindPlace, KindFailover, KindFailback, KindMove, KindOffline:
	default:
		return bad("kind", string(c.Kind), "unknown ownership change")
	}
	if c.Owner != "" {
		n, err := s.node(c.Owner)
		if err != nil {
			return err
		}
		if n.Witness {
			return bad("owner", c.Owner, "is a witness: it hosts nothing")
		}
	} else if c.Kind != KindOffline {
		return bad("owner", c.Owner, "empty owner: use kind offline")
	}
	g := s.Groups[c.Group]
	if g == nil {
		g = &Group{Name: c.Group}
	}
	if g.Epoch != c.PrevEpoch {
		return bad("prev_epoch", c.PrevEpoch, "stale: group %s is at epoch %d (owner %q)", c.Group, g.Epoch, g.Owner)
	}
	s.Groups[c.Group] = g
	g.Epoch++
	if c.Owner != g.Owner || c.Owner == "" || g.Changed.IsZero() {
		// A new epoch on the same owner (its reclaim after a lost
		// lease) is not an arrival: failback compares the preferred
		// node's return with the time the group came to its owner.
		g.Changed = at
	}
	g.Owner, g.Kind, g.Reason = c.Owner, c.Kind, c.Reason
	if c.Owner != "" {
		g.Failed = false
	} else if c.Failed {
		g.Failed = true
	}
	if c.Kind == KindFailover {
		g.Failovers = g.Failovers.Add(at, KeepFailovers)
	}
	if g.MoveTo == c.Owner || c.Kind == KindMove || c.Owner == "" {
		g.cancelMove()
	}
	g.Released = false
	return nil
}

func (g *Group) cancelMove() { g.MoveTo, g.MoveKind, g.MoveReason, g.Released = "", "", "", false }

func (s *State) release(c Release) error {
	g, err := s.group(c.Group)
	if err != nil {
		return err
	}
	if g.Owner != c.Node || g.Epoch != c.Epoch || g.MoveTo == "" {
		return bad("epoch", c.Epoch, "stale release of group %s by %s: owner %q at epoch %d, move to %q",
			c.Group, c.Node, g.Owner, g.Epoch, g.MoveTo)
	}
	g.Released = true
	return nil
}

func (s *State) setStopped(at time.Time, c SetStopped) error {
	if c.Group == "" {
		return bad("group", c.Group, "empty group name")
	}
	g := s.Groups[c.Group]
	if g == nil {
		g = &Group{Name: c.Group, Changed: at}
		s.Groups[c.Group] = g
	}
	g.Stopped, g.StoppedReason = c.Stopped, c.Reason
	if !c.Stopped {
		g.StoppedReason = ""
	}
	return nil
}

func (s *State) recordFailure(at time.Time, c RecordFailure) error {
	g, err := s.group(c.Group)
	if err != nil {
		return err
	}
	if c.Node != g.Owner {
		return bad("node", c.Node, "group %s is owned by %q: a failure elsewhere is stale", c.Group, g.Owner)
	}
	var ban *policy.Ban
	switch c.Class {
	case resource.ClassTransient:
	case resource.ClassNodeLocal:
		ban = &policy.Ban{Node: c.Node, Reason: "node-local failure: " + c.Reason}
	case resource.ClassConfiguration:
		ban = &policy.Ban{Reason: "configuration failure on " + c.Node + ": " + c.Reason}
	default:
		return bad("class", c.Class.String(), "unknown failure class")
	}
	g.Failed = true
	if g.LastFailure == nil {
		g.LastFailure = map[string]time.Time{}
	}
	g.LastFailure[c.Node] = at
	if ban != nil {
		g.Bans = append(g.Bans, *ban)
	}
	return nil
}

func (s *State) ban(c Ban) error {
	g, err := s.group(c.Group)
	if err != nil {
		return err
	}
	if c.Node != "" {
		if _, err := s.node(c.Node); err != nil {
			return err
		}
	}
	g.Bans = append(g.Bans, policy.Ban{Node: c.Node, Reason: c.Reason})
	return nil
}

func (s *State) moveGroup(c MoveGroup) error {
	g, err := s.group(c.Group)
	if err != nil {
		return err
	}
	if c.To != "" {
		n, err := s.node(c.To)
		if err != nil {
			return err
		}
		if n.Witness {
			return bad("to", c.To, "is a witness: it hosts nothing")
		}
	}
	if c.To == "" || c.To == g.Owner {
		g.cancelMove()
		return nil
	}
	kind := c.Kind
	if kind == "" {
		kind = KindMove
	}
	g.MoveTo, g.MoveKind, g.MoveReason, g.Released = c.To, kind, c.Reason, false
	return nil
}

func (s *State) removeGroup(c RemoveGroup) error {
	g, err := s.group(c.Group)
	if err != nil {
		return err
	}
	if g.Owner != "" {
		return bad("group", c.Group, "is owned by %s: take it offline first", g.Owner)
	}
	delete(s.Groups, c.Group)
	return nil
}

func (s *State) node(name string) (*Node, error) {
	if n, ok := s.Nodes[name]; ok {
		return n, nil
	}
	return nil, bad("node", name, "no such node")
}

func (s *State) group(name string) (*Group, error) {
	if g, ok := s.Groups[name]; ok {
		return g, nil
	}
	return nil, bad("group", name, "no such group")
}

// snapshot is the saved form: the state with the format version.
type snapshot struct {
	V     int    `json:"v"`
	State *State `json:"state"`
}

// Snapshot saves the whole state.
func (s *State) Snapshot() ([]byte, error) {
	return json.Marshal(snapshot{V: Version, State: s})
}

// Restore loads a state saved by Snapshot.
func Restore(b []byte) (*State, error) {
	var snap snapshot
	if err := json.Unmarshal(b, &snap); err != nil {
		return nil, fmt.Errorf("restore cluster state: %w", err)
	}
	if snap.V < 1 || snap.V > Version {
		return nil, bad("v", snap.V, "snapshot version not supported (this node reads 1 to %d)", Version)
	}
	s := snap.State
	if s == nil {
		s = New()
	}
	s.Nodes, s.Groups = orEmpty(s.Nodes), orEmpty(s.Groups)
	return s, nil
}

// Clone returns a deep copy.
func (s *State) Clone() *State {
	b, err := s.Snapshot()
	if err != nil {
		panic(err) // plain data: cannot fail
	}
	c, err := Restore(b)
	if err != nil {
		panic(err)
	}
	return c
}

// Cluster is the placement's input for this state at now: the nodes in
// name order (a witness as policy.NodeWitness, HealthySince the time it
// came up) and the configured groups in their order with their state
// filled in. A group with no state yet is unplaced; state for groups not
// in groups is left out, and so is a stopped group (SetStopped).
func (s *State) Cluster(now time.Time, groups []policy.Group) policy.Cluster {
	c := policy.Cluster{Now: now}
	for _, name := range slices.Sorted(maps.Keys(s.Nodes)) {
		n := s.Nodes[name]
		pn := policy.Node{Name: n.Name, State: n.State}
		if n.Witness {
			pn.State = policy.NodeWitness
		}
		if n.State == policy.NodeUp {
			pn.HealthySince = n.Since
		}
		c.Nodes = append(c.Nodes, pn)
	}
	for _, g := range groups {
		if st := s.Groups[g.Name]; st != nil && st.Stopped {
			continue // taken offline by a person: not placed
		} else if st != nil {
			g.Owner, g.Failed, g.Since = st.Owner, st.Failed, st.Changed
			g.Bans = slices.Clone(st.Bans)
			g.Failovers = slices.Clone(st.Failovers)
			g.LastFailure = maps.Clone(st.LastFailure)
		}
		c.Groups = append(c.Groups, g)
	}
	return c
}
