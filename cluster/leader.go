package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"time"

	"github.com/hashicorp/raft"

	"github.com/sftkit/sft/cluster/state"
	"github.com/sftkit/sft/policy"
)

// ErrNotLeader: the node asked is not the raft leader (requests are
// retried on the leader until their ctx ends).
var ErrNotLeader = errors.New("cluster: not the raft leader")

// ErrMaybeApplied marks a refusal that followed an attempt whose outcome
// is unknown (no reply, or the leader lost its leadership while the entry
// was in flight): the earlier attempt may have been applied, and the
// refusal may be of the state it left (raft's client-session problem; a
// command whose retry is harmless may treat it as done, see RemoveNode).
var ErrMaybeApplied = errors.New("an earlier attempt may have been applied")

// errLeadershipLost: the entry may or may not commit.
var errLeadershipLost = fmt.Errorf("%w: leadership lost with the entry in flight", ErrNotLeader)

// leaderLoop runs placement while this node is the raft leader: on every
// state change, detector event and every Heartbeat x 10.
func (n *Node) leaderLoop() {
	t := time.NewTicker(10 * n.timing.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-n.lkick:
		case <-t.C:
		}
		n.watchLeader()
		if n.raft.State() == raft.Leader {
			n.lead()
		}
	}
}

// watchLeader publishes leader changes and notes when this node became
// leader.
func (n *Node) watchLeader() {
	_, id := n.raft.LeaderWithID()
	leader := string(id)
	n.mu.Lock()
	changed := leader != n.leaderName
	n.leaderName = leader
	if leader != n.cfg.Name {
		n.leading = time.Time{}
	}
	n.mu.Unlock()
	if changed {
		n.emit(Event{Kind: EventLeader, Node: leader, Detail: "raft leadership moves no group"})
	}
}

// lead is one pass of the leader: nodes first, then placement. A new
// leader first waits until its state holds every committed entry; it
// re-reads the state and never re-places a healthy group.
func (n *Node) lead() {
	n.mu.Lock()
	first := n.leading.IsZero()
	n.mu.Unlock()
	if first {
		if err := n.raft.Barrier(n.timing.Window).Error(); err != nil {
			return
		}
		n.mu.Lock()
		n.leading = time.Now()
		n.mu.Unlock()
	}
	st := n.snapshot()
	if len(st.Nodes) == 0 {
		for _, s := range n.cfg.Nodes {
			n.applyLogged(state.AddNode{Node: s.Name, Addrs: s.Heartbeat, Witness: s.Witness, Raft: s.Raft})
		}
		st = n.snapshot()
	}
	nodes := n.nodeStates(st)
	if len(nodes) == 0 {
		for _, c := range n.placements(st) {
			n.applyLogged(c)
		}
		return
	}
	// A node changed state: plan the placement on a copy with the
	// change applied, and send both down the raft pipeline at once
	// rather than wait for one commit before the next (a failover then
	// costs one commit round, not two). Raft applies them in order, and
	// every SetOwner is a compare-and-set on the epoch it was planned at.
	plan := st.Clone()
	at := n.cfg.Now()
	var futs []raft.ApplyFuture
	var cmds, sent []state.Command
	for _, c := range nodes {
		if err := plan.Apply(state.Entry{At: at, Cmd: c}); err != nil {
			n.log.Debug("cluster: node state not planned", "cmd", c.Type(), "err", err)
		}
		cmds = append(cmds, c)
	}
	cmds = append(cmds, n.placements(plan)...)
	for _, c := range cmds {
		b, err := state.Encode(state.Entry{At: at, Cmd: c})
		if err != nil {
			n.log.Debug("cluster: leader command not encoded", "cmd", c.Type(), "err", err)
			continue
		}
		futs, sent = append(futs, n.raft.Apply(b, 2*time.Second)), append(sent, c)
	}
	for i, f := range futs {
		err := f.Error()
		if err == nil {
			if r, _ := f.Response().(state.Result); r.Err != nil {
				err = r.Err
			}
		}
		if err != nil {
			n.log.Debug("cluster: leader command not applied", "cmd", sent[i].Type(), "err", err)
		}
	}
}

// nodeStates turns the detector's view into node states: down when a
// majority of the others agree a node is silent, up once this node has
// heard it without a break for the echo holdoff (by then it can hold a
// lease). Maintenance is left alone; so is a node this node does not hear
// while no majority calls it dead (an asymmetric cut).
func (n *Node) nodeStates(st *state.State) []state.Command {
	var out []state.Command
	// The evidence with the verdict, in one read: the detector's
	// NodeDead event reaches onDetector on another goroutine and may come
	// after this (a new leader's first round: "silent: " with no reason).
	dead := n.det.DeadEvidence()
	now := time.Now()
	for _, name := range slices.Sorted(mapsKeys(st.Nodes)) {
		nd := st.Nodes[name]
		if nd.State == policy.NodeMaintenance {
			continue
		}
		if name == n.cfg.Name {
			if nd.State != policy.NodeUp {
				out = append(out, state.SetNodeState{Node: name, State: policy.NodeUp, Reason: "the raft leader"})
			}
			continue
		}
		since := n.det.HeardSince(name)
		why, isDead := dead[name]
		switch {
		case isDead && nd.State != policy.NodeDown:
			out = append(out, state.SetNodeState{Node: name, State: policy.NodeDown, Reason: "silent: " + why})
		case !isDead && !since.IsZero() && now.Sub(since) >= n.holdoff && nd.State == policy.NodeDown:
			out = append(out, state.SetNodeState{Node: name, State: policy.NodeUp,
				Reason: fmt.Sprintf("heard by %s without a break for %s", n.cfg.Name, now.Sub(since).Round(time.Millisecond))})
		}
	}
	return out
}

// placements runs the placement and returns the commands that carry it
// out: stopped groups go offline, released drains complete, a group
// moving away from a live owner is drained first (MoveGroup, then the
// owner's Release, then SetOwner: never online on both), and anything
// else (the owner is down, or the group failed and stopped there) gets
// its new owner at once.
func (n *Node) placements(st *state.State) []state.Command {
	var out []state.Command
	skip := map[string]bool{}
	alive := func(node string) bool {
		nd := st.Nodes[node]
		return nd != nil && nd.State != policy.NodeDown
	}
	for _, name := range n.groups {
		g := st.Groups[name]
		if g == nil {
			continue
		}
		switch {
		case g.Stopped:
			if g.Owner != "" {
				out = append(out, state.SetOwner{Group: name, PrevEpoch: g.Epoch, Kind: state.KindOffline, Reason: "stopped: " + g.StoppedReason})
			}
			skip[name] = true
		case g.MoveTo != "" && g.Owner != "" && alive(g.Owner) && !g.Failed:
			skip[name] = true
			to := st.Nodes[g.MoveTo]
			switch {
			case to == nil || to.State != policy.NodeUp:
				out = append(out, state.MoveGroup{Group: name, To: ""})
			case g.Released:
				out = append(out, state.SetOwner{Group: name, Owner: g.MoveTo, PrevEpoch: g.Epoch, Kind: g.MoveKind, Reason: g.MoveReason})
			}
		}
	}
	// The first placement of a group waits until every node that may
	// host it is up, or the cluster has settled (a node that does not
	// come is then simply down), so a cold start places by preference.
	n.mu.Lock()
	settled := !n.leading.IsZero() && time.Since(n.leading) >= n.holdoff+n.timing.Window
	n.mu.Unlock()
	allUp := true
	for _, nd := range st.Nodes {
		if !nd.Witness && nd.State == policy.NodeDown {
			allUp = false
		}
	}
	changes, _, soonest := plan(st, n.cfg.Now(), n.cfg.Groups)
	n.mu.Lock()
	n.deferAt = time.Time{}
	if soonest > 0 {
		n.deferAt = time.Now().Add(soonest)
		time.AfterFunc(soonest, n.poke)
	}
	n.mu.Unlock()
	for _, c := range changes {
		g := st.Groups[c.Group]
		if skip[c.Group] {
			continue
		}
		if (g == nil || g.Epoch == 0) && !settled && !allUp {
			continue
		}
		if c.Set.Owner != "" && g != nil && g.Owner != "" && !g.Failed && alive(g.Owner) {
			out = append(out, state.MoveGroup{Group: c.Group, To: c.Set.Owner, Kind: c.Set.Kind, Reason: c.Set.Reason})
			continue
		}
		out = append(out, c.Set)
	}
	return out
}

func (n *Node) applyLogged(c state.Command) {
	if _, err := n.applyLocal(c); err != nil {
		n.log.Debug("cluster: leader command not applied", "cmd", c.Type(), "err", err)
	}
}

// applyLocal applies a command through raft on this node (the leader).
func (n *Node) applyLocal(c state.Command) (state.Result, error) {
	b, err := state.Encode(state.Entry{At: n.cfg.Now(), Cmd: c})
	if err != nil {
		return state.Result{}, err
	}
	f := n.raft.Apply(b, 2*time.Second)
	if err := f.Error(); err != nil {
		if errors.Is(err, raft.ErrLeadershipLost) {
			return state.Result{}, errLeadershipLost
		}
		if errors.Is(err, raft.ErrNotLeader) {
			return state.Result{}, ErrNotLeader
		}
		return state.Result{}, err
	}
	r, _ := f.Response().(state.Result)
	return r, r.Err
}

// membership changes ride on the same request as commands.
type voterChange struct {
	Add     bool   `json:"add"`
	ID      string `json:"id"`
	Address string `json:"address,omitempty"`
}

func (n *Node) changeVoters(v voterChange) error {
	var f raft.IndexFuture
	if v.Add {
		f = n.raft.AddVoter(raft.ServerID(v.ID), raft.ServerAddress(v.Address), 0, 5*time.Second)
	} else {
		f = n.raft.RemoveServer(raft.ServerID(v.ID), 0, 5*time.Second)
	}
	err := f.Error()
	if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
		return ErrNotLeader
	}
	return err
}

// serve answers one request from another node (on the raft port).
func (n *Node) serve(c net.Conn) {
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	var req request
	if err := readFrame(c, n.cfg.Key, &req); err != nil {
		n.log.Warn("cluster: bad request", "from", c.RemoteAddr(), "err", err)
		return
	}
	var rep reply
	var err error
	select {
	case <-n.ready:
	default: // raft is not running yet (a restarted node's port is open first)
		rep.Err, rep.NotLead = ErrNotLeader.Error(), true
		_ = writeFrame(c, n.cfg.Key, rep)
		return
	}
	if req.Barrier {
		rep.Index, err = n.barrier()
	} else if req.Voter != nil {
		err = n.changeVoters(*req.Voter)
	} else {
		var e state.Entry
		if e, err = state.Decode(req.Entry); err == nil {
			var r state.Result
			r, err = n.applyLocal(e.Cmd)
			rep.Epoch = r.Epoch
			rep.Rejected = r.Err != nil
		}
	}
	if err != nil {
		rep.Err, rep.NotLead = err.Error(), errors.Is(err, ErrNotLeader)
		rep.Maybe = errors.Is(err, errLeadershipLost)
	}
	_ = writeFrame(c, n.cfg.Key, rep)
}

// propose applies a command through the leader, wherever it is, retrying
// until it is applied or refused, or ctx ends.
func (n *Node) propose(ctx context.Context, c state.Command) (state.Result, error) {
	return n.request(ctx, c, nil)
}

func (n *Node) request(ctx context.Context, c state.Command, v *voterChange) (state.Result, error) {
	body := request{Voter: v}
	if c != nil {
		b, err := state.Encode(state.Entry{Cmd: c})
		if err != nil {
			return state.Result{}, err
		}
		body.Entry = b
	}
	// maybe: an earlier attempt's outcome is unknown (see ErrMaybeApplied).
	maybe := false
	refused := func(res state.Result) (state.Result, error) {
		if maybe {
			res.Err = fmt.Errorf("%w (%w)", res.Err, ErrMaybeApplied)
		}
		return res, res.Err
	}
	for {
		addr, id := n.raft.LeaderWithID()
		var res state.Result
		var err error
		switch {
		case id == "":
			err = ErrNotLeader
		case string(id) == n.cfg.Name && v != nil:
			err = n.changeVoters(*v)
		case string(id) == n.cfg.Name:
			res, err = n.applyLocal(c)
			if res.Err != nil {
				return refused(res)
			}
			maybe = maybe || errors.Is(err, errLeadershipLost)
		default:
			var rep reply
			rep, err = n.mux.call(ctx, string(addr), n.cfg.Key, body)
			if errors.Is(err, errNoReply) {
				maybe = true
			}
			if err == nil && rep.Err != "" {
				err = errors.New(rep.Err)
				maybe = maybe || rep.Maybe
				if rep.NotLead {
					err = ErrNotLeader
				} else if rep.Rejected {
					return refused(state.Result{Err: err, Epoch: rep.Epoch})
				}
			}
			res.Epoch = rep.Epoch
		}
		if err == nil {
			return res, nil
		}
		if !errors.Is(err, ErrNotLeader) && c == nil {
			return res, err
		}
		select {
		case <-ctx.Done():
			return res, fmt.Errorf("%w (last: %w)", ctx.Err(), err)
		case <-time.After(n.timing.Heartbeat * 5):
		}
	}
}

// barrier waits (on the leader) until every committed entry is applied
// here and returns the state's index then.
func (n *Node) barrier() (uint64, error) {
	if err := n.raft.Barrier(n.timing.Window).Error(); err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
			return 0, ErrNotLeader
		}
		return 0, err
	}
	return n.snapshot().Index, nil
}

// leaderIndex asks the raft leader, wherever it is, for the index of its
// state after a barrier: it covers every command committed before the
// call. It retries until it has one or ctx ends.
func (n *Node) leaderIndex(ctx context.Context) (uint64, error) {
	for {
		addr, id := n.raft.LeaderWithID()
		var idx uint64
		var err error
		switch {
		case id == "":
			err = ErrNotLeader
		case string(id) == n.cfg.Name:
			idx, err = n.barrier()
		default:
			var rep reply
			rep, err = n.mux.call(ctx, string(addr), n.cfg.Key, request{Barrier: true})
			if err == nil && rep.Err != "" {
				err = errors.New(rep.Err)
			}
			idx = rep.Index
		}
		if err == nil {
			return idx, nil
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("%w (last: %w)", ctx.Err(), err)
		case <-time.After(n.timing.Heartbeat * 5):
		}
	}
}
