package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/raft"

	"github.com/sftkit/sft/cluster/state"
	"github.com/sftkit/sft/policy"
	"github.com/sftkit/sft/resource"
)

// Status is a node's view of the cluster.
type Status struct {
	// Node is this node; Leader the raft leader it knows ("" none).
	Node   string `json:"node"`
	Leader string `json:"leader"`
	// Lease: whether this node holds its lease, until when, and the time
	// left (negative: ran out that long ago).
	Lease       bool          `json:"lease"`
	LeaseUntil  time.Time     `json:"lease_until,omitzero"`
	LeaseMargin time.Duration `json:"lease_margin"`
	// Index is the raft index of the state shown.
	Index  uint64        `json:"index"`
	Nodes  []NodeStatus  `json:"nodes"`
	Groups []GroupStatus `json:"groups"`
}

// NodeStatus is one node in Status.
type NodeStatus struct {
	Name    string           `json:"name"`
	Witness bool             `json:"witness,omitempty"`
	State   policy.NodeState `json:"state"`
	Since   time.Time        `json:"since"`
	// Reason is the evidence of the last state change.
	Reason string `json:"reason,omitempty"`
	// Heard: this node hears it now (for itself: true).
	Heard bool `json:"heard"`
}

// GroupStatus is one group in Status: the replicated placement and this
// node's local state of it.
type GroupStatus struct {
	Name    string       `json:"name"`
	Owner   string       `json:"owner"`
	Epoch   uint64       `json:"epoch"`
	Kind    state.Kind   `json:"kind,omitempty"`
	Reason  string       `json:"reason,omitempty"`
	Failed  bool         `json:"failed,omitempty"`
	Stopped bool         `json:"stopped,omitempty"`
	MoveTo  string       `json:"move_to,omitempty"`
	Bans    []policy.Ban `json:"bans,omitempty"`
	// Local is the group's state on this node (Offline on a witness).
	Local resource.State `json:"local"`
}

// Status returns this node's view: every node with its state and
// evidence, every configured group with owner, epoch and reason, and this
// node's lease.
func (n *Node) Status() Status {
	st := n.snapshot()
	until, held := n.det.Lease()
	n.mu.Lock()
	s := Status{Node: n.cfg.Name, Leader: n.leaderName, Index: st.Index, Lease: held, LeaseUntil: until}
	n.mu.Unlock()
	if !until.IsZero() {
		s.LeaseMargin = time.Until(until)
	}
	for _, name := range slices.Sorted(mapsKeys(st.Nodes)) {
		nd := st.Nodes[name]
		s.Nodes = append(s.Nodes, NodeStatus{Name: name, Witness: nd.Witness, State: nd.State, Since: nd.Since, Reason: nd.Reason,
			Heard: name == n.cfg.Name || !n.det.HeardSince(name).IsZero()})
	}
	n.own.mu.Lock()
	defer n.own.mu.Unlock()
	for _, name := range n.groups {
		gs := GroupStatus{Name: name, Local: resource.StateOffline}
		if g := st.Groups[name]; g != nil {
			gs.Owner, gs.Epoch, gs.Kind, gs.Reason, gs.Failed, gs.Stopped, gs.MoveTo = g.Owner, g.Epoch, g.Kind, g.Reason, g.Failed, g.Stopped, g.MoveTo
			gs.Bans = slices.Clone(g.Bans)
		}
		if loc, ok := n.own.local[name]; ok {
			gs.Local = loc.State
		}
		s.Groups = append(s.Groups, gs)
	}
	return s
}

func (n *Node) configured(group string) error {
	if !slices.Contains(n.groups, group) {
		return resource.ConfigError("group", group, "no such group")
	}
	return nil
}

// Move moves a group to a node by hand and returns once the node owns it
// (or ctx ends). The owner drains it first (takes it offline, then says
// so), and only then does the target get it: never online on both. A
// node the placement would not allow (down, banned, not a possible owner,
// a witness) is refused with the reason.
func (n *Node) Move(ctx context.Context, group, to string) error {
	if err := n.configured(group); err != nil {
		return err
	}
	st := n.snapshot()
	if g := st.Groups[group]; g != nil && g.Owner == to {
		return nil
	}
	p, err := st.Cluster(n.cfg.Now(), n.cfg.Groups).Place(group)
	if err != nil {
		return err
	}
	j := slices.IndexFunc(p.Nodes, func(r policy.NodeReason) bool { return r.Node == to })
	if j < 0 {
		return resource.ConfigError("node", to, "no such node")
	}
	if !p.Nodes[j].Eligible {
		return resource.ConfigError("node", to, "group %s may not run there: %s", group, p.Nodes[j].Reason)
	}
	if _, err := n.propose(ctx, state.MoveGroup{Group: group, To: to, Kind: state.KindMove, Reason: "moved by hand"}); err != nil {
		return err
	}
	seen := false // this node's copy of the state may lag the leader's
	return n.waitState(ctx, func(s *state.State) (bool, error) {
		g := s.Groups[group]
		if g == nil {
			return false, nil
		}
		if g.Owner == to {
			return true, nil
		}
		seen = seen || g.MoveTo == to
		if seen && g.MoveTo != to {
			return false, fmt.Errorf("move of %s to %s was cancelled (owner %q, moving to %q)", group, to, g.Owner, g.MoveTo)
		}
		return false, nil
	})
}

// Offline takes a group offline cluster-wide: it is left out of placement
// until Online. It returns once no node owns it.
func (n *Node) Offline(ctx context.Context, group string) error {
	if err := n.configured(group); err != nil {
		return err
	}
	if _, err := n.propose(ctx, state.SetStopped{Group: group, Stopped: true, Reason: "taken offline by hand"}); err != nil {
		return err
	}
	return n.waitState(ctx, func(s *state.State) (bool, error) {
		g := s.Groups[group]
		return g == nil || g.Owner == "", nil
	})
}

// Online places a group again after Offline. It returns once the request
// is committed; the group comes online where the placement puts it (see
// Status and the events). A failed group also needs Clear.
func (n *Node) Online(ctx context.Context, group string) error {
	if err := n.configured(group); err != nil {
		return err
	}
	_, err := n.propose(ctx, state.SetStopped{Group: group, Stopped: false})
	return err
}

// Clear clears a group's failed state and its bans (a person fixed the
// cause): the placement may put it anywhere again.
func (n *Node) Clear(ctx context.Context, group string) error {
	if err := n.configured(group); err != nil {
		return err
	}
	_, err := n.propose(ctx, state.ClearFailure{Group: group})
	return err
}

// SetMaintenance puts a node in maintenance (its groups are drained away
// and nothing is placed there) or takes it out (it is up again if the
// detector hears it, else down).
func (n *Node) SetMaintenance(ctx context.Context, node string, on bool) error {
	c := state.SetNodeState{Node: node, State: policy.NodeMaintenance, Reason: "maintenance by hand"}
	if !on {
		c = state.SetNodeState{Node: node, State: policy.NodeDown, Reason: "maintenance ended: up once heard"}
	}
	_, err := n.propose(ctx, c)
	return err
}

// AddNode adds a node at run time: to the replicated state (every node
// starts heartbeating it) and to raft as a voter. Start the new node with
// a Config listing the nodes (itself included) and Join set.
func (n *Node) AddNode(ctx context.Context, spec NodeSpec) error {
	if err := spec.validate("node"); err != nil {
		return err
	}
	if len(spec.Heartbeat) != len(n.self.Heartbeat) {
		return resource.ConfigError("node.heartbeat", spec.Heartbeat, "has %d paths, this cluster %d", len(spec.Heartbeat), len(n.self.Heartbeat))
	}
	if _, err := n.propose(ctx, state.AddNode{Node: spec.Name, Addrs: spec.Heartbeat, Witness: spec.Witness, Raft: spec.Raft}); err != nil {
		return err
	}
	_, err := n.request(ctx, nil, &voterChange{Add: true, ID: spec.Name, Address: spec.Raft})
	return err
}

// Voters lists raft's voters as this node knows them (names, sorted).
func (n *Node) Voters() []string {
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return nil
	}
	var out []string
	for _, s := range f.Configuration().Servers {
		if s.Suffrage == raft.Voter {
			out = append(out, string(s.ID))
		}
	}
	slices.Sort(out)
	return out
}

// RemoveNode removes a node at run time: it must own no group (move them
// first, or put it in maintenance and wait).
func (n *Node) RemoveNode(ctx context.Context, name string) error {
	if name == n.cfg.Name {
		return resource.ConfigError("node", name, "a node cannot remove itself: ask another")
	}
	if _, err := n.propose(ctx, state.RemoveNode{Node: name}); err != nil {
		// A retry refused for want of the node after an attempt whose
		// reply was lost: that attempt removed it.
		if !errors.Is(err, ErrMaybeApplied) || !strings.Contains(err.Error(), "no such node") {
			return err
		}
	}
	_, err := n.request(ctx, nil, &voterChange{ID: name})
	return err
}

// Simulate runs a what-if script over this node's copy of the state at
// the placement clock's now (see the package function Simulate).
func (n *Node) Simulate(steps []Step) ([]Outcome, *state.State, error) {
	return Simulate(n.snapshot(), n.cfg.Now(), n.cfg.Groups, steps)
}

// syncPeers makes the detector watch the nodes the state gained, and
// stop watching those a change removed (in prev, not in st). It never
// drops a node merely missing from st: while the log replays after a
// restart, or the leader adds the nodes one by one at the first start,
// the state lists only some of them, and dropping a watched peer would
// reset its echoes (the lease) and its holdoff.
func (n *Node) syncPeers(prev, st *state.State) {
	for name, nd := range st.Nodes {
		if name != n.cfg.Name && !n.det.Known(name) {
			if err := n.det.AddPeer(name, parseAddrs(nd.Addrs)); err != nil {
				n.log.Warn("cluster: cannot watch node", "node", name, "err", err)
			}
		}
	}
	for name := range prev.Nodes {
		if _, ok := st.Nodes[name]; !ok && name != n.cfg.Name && n.det.Known(name) {
			n.det.RemovePeer(name)
		}
	}
}
