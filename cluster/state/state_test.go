package state_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sftkit/sft/cluster/state"
	"github.com/sftkit/sft/policy"
	"github.com/sftkit/sft/resource"
)

var t0 = time.Date(2026, time.March, 4, 12, 0, 0, 0, time.UTC)

// at is an entry at t0+d.
func at(d time.Duration, c state.Command) state.Entry { return state.Entry{At: t0.Add(d), Cmd: c} }

// base is a cluster of a, b and witness w, all up, with group g on a
// (epoch 1).
func base() []state.Entry {
	return []state.Entry{
		at(0, state.AddNode{Node: "a", Addrs: []string{"10.0.0.1"}}),
		at(0, state.AddNode{Node: "b"}),
		at(0, state.AddNode{Node: "w", Witness: true}),
		at(time.Second, state.SetNodeState{Node: "a", State: policy.NodeUp}),
		at(time.Second, state.SetNodeState{Node: "b", State: policy.NodeUp}),
		at(time.Second, state.SetNodeState{Node: "w", State: policy.NodeUp}),
		at(2*time.Second, state.SetOwner{Group: "g", Owner: "a", Kind: state.KindPlace, Reason: "not placed yet"}),
	}
}

func build(t *testing.T, entries ...state.Entry) *state.State {
	t.Helper()
	s := state.New()
	for i, e := range entries {
		require.NoError(t, s.Apply(e), "entry %d: %#v", i, e.Cmd)
	}
	return s
}

func TestApply(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		entry state.Entry
		field string // the error's field; "" when it applies
		value string
		check func(t *testing.T, s *state.State)
	}{
		{name: "set owner increments the epoch", entry: at(time.Minute, state.SetOwner{Group: "g", Owner: "b", PrevEpoch: 1, Kind: state.KindMove, Reason: "by hand"}),
			check: func(t *testing.T, s *state.State) {
				g := s.Groups["g"]
				require.Equal(t, "b", g.Owner)
				require.Equal(t, uint64(2), g.Epoch)
				require.Equal(t, state.KindMove, g.Kind)
				require.Equal(t, t0.Add(time.Minute), g.Changed)
				require.Empty(t, g.Failovers, "a move is no failover")
			}},
		{name: "stale epoch is refused", entry: at(time.Minute, state.SetOwner{Group: "g", Owner: "b", PrevEpoch: 0, Kind: state.KindFailover}),
			field: "prev_epoch", value: "0"},
		{name: "failover is recorded in the history", entry: at(time.Minute, state.SetOwner{Group: "g", Owner: "b", PrevEpoch: 1, Kind: state.KindFailover}),
			check: func(t *testing.T, s *state.State) {
				require.Equal(t, policy.History{t0.Add(time.Minute)}, s.Groups["g"].Failovers)
			}},
		{name: "offline: owner empty, epoch grows", entry: at(time.Minute, state.SetOwner{Group: "g", PrevEpoch: 1, Kind: state.KindOffline}),
			check: func(t *testing.T, s *state.State) {
				require.Empty(t, s.Groups["g"].Owner)
				require.Equal(t, uint64(2), s.Groups["g"].Epoch)
			}},
		{name: "offline and failed", entry: at(time.Minute, state.SetOwner{Group: "g", PrevEpoch: 1, Kind: state.KindOffline, Failed: true, Reason: "threshold"}),
			check: func(t *testing.T, s *state.State) {
				require.True(t, s.Groups["g"].Failed)
				require.Equal(t, "threshold", s.Groups["g"].Reason)
			}},
		{name: "empty owner needs kind offline", entry: at(0, state.SetOwner{Group: "g", PrevEpoch: 1, Kind: state.KindMove}), field: "owner", value: `""`},
		{name: "owner must be a node", entry: at(0, state.SetOwner{Group: "g", Owner: "x", PrevEpoch: 1, Kind: state.KindMove}), field: "node", value: `"x"`},
		{name: "a witness owns nothing", entry: at(0, state.SetOwner{Group: "g", Owner: "w", PrevEpoch: 1, Kind: state.KindMove}), field: "owner", value: `"w"`},
		{name: "unknown kind", entry: at(0, state.SetOwner{Group: "g", Owner: "b", PrevEpoch: 1, Kind: "teleport"}), field: "kind", value: `"teleport"`},
		{name: "empty group", entry: at(0, state.SetOwner{Owner: "b", Kind: state.KindMove}), field: "group", value: `""`},
		{name: "node-local failure bans the node", entry: at(time.Minute, state.RecordFailure{Group: "g", Node: "a", Class: resource.ClassNodeLocal, Reason: "no eth9"}),
			check: func(t *testing.T, s *state.State) {
				g := s.Groups["g"]
				require.True(t, g.Failed)
				require.Equal(t, []policy.Ban{{Node: "a", Reason: "node-local failure: no eth9"}}, g.Bans)
				require.Equal(t, t0.Add(time.Minute), g.LastFailure["a"])
			}},
		{name: "configuration failure bans every node", entry: at(0, state.RecordFailure{Group: "g", Node: "a", Class: resource.ClassConfiguration, Reason: "bad path"}),
			check: func(t *testing.T, s *state.State) {
				require.Equal(t, []policy.Ban{{Reason: "configuration failure on a: bad path"}}, s.Groups["g"].Bans)
			}},
		{name: "transient failure bans nothing", entry: at(0, state.RecordFailure{Group: "g", Node: "a", Class: resource.ClassTransient}),
			check: func(t *testing.T, s *state.State) {
				require.True(t, s.Groups["g"].Failed)
				require.Empty(t, s.Groups["g"].Bans)
			}},
		{name: "failure from a node that is not the owner is stale", entry: at(0, state.RecordFailure{Group: "g", Node: "b", Class: resource.ClassTransient}),
			field: "node", value: `"b"`},
		{name: "failure of an unknown class", entry: at(0, state.RecordFailure{Group: "g", Node: "a", Class: 7}), field: "class", value: `"Class(7)"`},
		{name: "failure of an unknown group", entry: at(0, state.RecordFailure{Group: "x", Node: "a"}), field: "group", value: `"x"`},
		{name: "ban by hand", entry: at(0, state.Ban{Group: "g", Node: "b", Reason: "disk"}),
			check: func(t *testing.T, s *state.State) {
				require.Equal(t, []policy.Ban{{Node: "b", Reason: "disk"}}, s.Groups["g"].Bans)
			}},
		{name: "ban on every node", entry: at(0, state.Ban{Group: "g", Reason: "audit"}),
			check: func(t *testing.T, s *state.State) { require.Len(t, s.Groups["g"].Bans, 1) }},
		{name: "ban on an unknown node", entry: at(0, state.Ban{Group: "g", Node: "x"}), field: "node", value: `"x"`},
		{name: "ban of an unknown group", entry: at(0, state.Ban{Group: "x"}), field: "group", value: `"x"`},
		{name: "move request", entry: at(0, state.MoveGroup{Group: "g", To: "b"}),
			check: func(t *testing.T, s *state.State) { require.Equal(t, "b", s.Groups["g"].MoveTo) }},
		{name: "move to a witness", entry: at(0, state.MoveGroup{Group: "g", To: "w"}), field: "to", value: `"w"`},
		{name: "move to an unknown node", entry: at(0, state.MoveGroup{Group: "g", To: "x"}), field: "node", value: `"x"`},
		{name: "move of an unknown group", entry: at(0, state.MoveGroup{Group: "x", To: "a"}), field: "group", value: `"x"`},
		{name: "node state change sets since", entry: at(time.Hour, state.SetNodeState{Node: "b", State: policy.NodeMaintenance, Reason: "patching"}),
			check: func(t *testing.T, s *state.State) {
				require.Equal(t, policy.NodeMaintenance, s.Nodes["b"].State)
				require.Equal(t, t0.Add(time.Hour), s.Nodes["b"].Since)
				require.Equal(t, "patching", s.Nodes["b"].Reason)
			}},
		{name: "same node state keeps since", entry: at(time.Hour, state.SetNodeState{Node: "b", State: policy.NodeUp, Reason: "heard"}),
			check: func(t *testing.T, s *state.State) { require.Equal(t, t0.Add(time.Second), s.Nodes["b"].Since) }},
		{name: "node state witness is not a state", entry: at(0, state.SetNodeState{Node: "b", State: policy.NodeWitness}), field: "state", value: `"witness"`},
		{name: "node state of an unknown node", entry: at(0, state.SetNodeState{Node: "x", State: policy.NodeUp}), field: "node", value: `"x"`},
		{name: "add node twice changes its addresses", entry: at(0, state.AddNode{Node: "a", Addrs: []string{"10.0.0.9"}}),
			check: func(t *testing.T, s *state.State) {
				require.Equal(t, []string{"10.0.0.9"}, s.Nodes["a"].Addrs)
				require.Equal(t, policy.NodeUp, s.Nodes["a"].State)
			}},
		{name: "add node cannot turn it into a witness", entry: at(0, state.AddNode{Node: "a", Witness: true}), field: "witness", value: "true"},
		{name: "add node without a name", entry: at(0, state.AddNode{}), field: "node", value: `""`},
		{name: "new node starts down", entry: at(time.Hour, state.AddNode{Node: "c"}),
			check: func(t *testing.T, s *state.State) {
				require.Equal(t, policy.NodeDown, s.Nodes["c"].State)
				require.Equal(t, t0.Add(time.Hour), s.Nodes["c"].Since)
			}},
		{name: "remove a node that owns a group", entry: at(0, state.RemoveNode{Node: "a"}), field: "node", value: `"a"`},
		{name: "remove a node", entry: at(0, state.RemoveNode{Node: "b"}),
			check: func(t *testing.T, s *state.State) { require.NotContains(t, s.Nodes, "b") }},
		{name: "remove an unknown node", entry: at(0, state.RemoveNode{Node: "x"}), field: "node", value: `"x"`},
		{name: "remove an online group", entry: at(0, state.RemoveGroup{Group: "g"}), field: "group", value: `"g"`},
		{name: "remove an unknown group", entry: at(0, state.RemoveGroup{Group: "x"}), field: "group", value: `"x"`},
		{name: "config version grows", entry: at(0, state.SetConfigVersion{Version: 3}),
			check: func(t *testing.T, s *state.State) { require.Equal(t, uint64(3), s.ConfigVersion) }},
		{name: "config version never shrinks", entry: at(0, state.SetConfigVersion{Version: 0}), field: "version", value: "0"},
		{name: "clear failure of an unknown group", entry: at(0, state.ClearFailure{Group: "x"}), field: "group", value: `"x"`},
		{name: "unknown command", entry: at(0, nil), field: "cmd", value: `"<nil>"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := build(t, base()...)
			before := s.Clone()
			err := s.Apply(tc.entry)
			if tc.field == "" {
				require.NoError(t, err)
				tc.check(t, s)
				return
			}
			require.ErrorIs(t, err, resource.ErrConfiguration)
			var re *resource.Error
			require.True(t, errors.As(err, &re))
			require.Equal(t, tc.field, re.Field, err.Error())
			require.Contains(t, err.Error(), tc.value)
			require.Equal(t, before, s, "a refused entry changes nothing")
		})
	}
}

// A group's life: failures, bans, clear, failover history bounded, offline
// and removed.
func TestGroupLife(t *testing.T) {
	t.Parallel()
	s := build(t, append(base(),
		at(time.Minute, state.RecordFailure{Group: "g", Node: "a", Class: resource.ClassNodeLocal, Reason: "x"}),
		at(2*time.Minute, state.SetOwner{Group: "g", Owner: "b", PrevEpoch: 1, Kind: state.KindFailover}),
		at(3*time.Minute, state.MoveGroup{Group: "g", To: "a"}),
		at(4*time.Minute, state.ClearFailure{Group: "g"}),
	)...)
	g := s.Groups["g"]
	require.False(t, g.Failed, "a new owner clears the failed state")
	require.Empty(t, g.Bans)
	require.Equal(t, "a", g.MoveTo)
	require.NoError(t, s.Apply(at(5*time.Minute, state.SetOwner{Group: "g", Owner: "a", PrevEpoch: 2, Kind: state.KindMove})))
	require.Empty(t, g.MoveTo, "done")
	// A failover more than KeepFailovers later forgets the old one.
	require.NoError(t, s.Apply(at(state.KeepFailovers+time.Hour, state.SetOwner{Group: "g", Owner: "b", PrevEpoch: 3, Kind: state.KindFailover})))
	require.Equal(t, policy.History{t0.Add(state.KeepFailovers + time.Hour)}, g.Failovers)
	require.NoError(t, s.Apply(at(0, state.SetOwner{Group: "g", PrevEpoch: 4, Kind: state.KindOffline})))
	require.NoError(t, s.Apply(at(0, state.RemoveGroup{Group: "g"})))
	require.Empty(t, s.Groups)
}

func TestRemoveNodeCancelsMoves(t *testing.T) {
	t.Parallel()
	s := build(t, append(base(), at(0, state.MoveGroup{Group: "g", To: "b"}))...)
	require.Equal(t, "b", s.Groups["g"].MoveTo)
	require.NoError(t, s.Apply(at(0, state.RemoveNode{Node: "b"})))
	require.Empty(t, s.Groups["g"].MoveTo)
}

// A drain: MoveGroup, the owner's Release at the current epoch (a stale
// one is refused), then SetOwner with the move's kind clears it all.
func TestDrain(t *testing.T) {
	t.Parallel()
	s := build(t, append(base(), at(0, state.MoveGroup{Group: "g", To: "b", Kind: state.KindFailback, Reason: "a is back"}))...)
	g := s.Groups["g"]
	require.Equal(t, state.KindFailback, g.MoveKind)
	require.Error(t, s.Apply(at(0, state.Release{Group: "g", Node: "a", Epoch: 0})), "stale epoch")
	require.Error(t, s.Apply(at(0, state.Release{Group: "g", Node: "b", Epoch: 1})), "not the owner")
	require.False(t, g.Released)
	require.NoError(t, s.Apply(at(0, state.Release{Group: "g", Node: "a", Epoch: 1})))
	require.True(t, g.Released)
	require.NoError(t, s.Apply(at(0, state.SetOwner{Group: "g", Owner: "b", PrevEpoch: 1, Kind: g.MoveKind, Reason: g.MoveReason})))
	require.Empty(t, g.MoveTo)
	require.False(t, g.Released)
	// A move to the owner itself is no move; "" cancels.
	require.NoError(t, s.Apply(at(0, state.MoveGroup{Group: "g", To: "b"})))
	require.Empty(t, g.MoveTo)
	require.NoError(t, s.Apply(at(0, state.MoveGroup{Group: "g", To: "a"})))
	require.Equal(t, state.KindMove, g.MoveKind, "the default kind")
	require.NoError(t, s.Apply(at(0, state.MoveGroup{Group: "g", To: ""})))
	require.Empty(t, g.MoveTo)
	require.Error(t, s.Apply(at(0, state.Release{Group: "g", Node: "b", Epoch: 2})), "no move pending")
}

// A stopped group is left out of placement until started again.
func TestStopped(t *testing.T) {
	t.Parallel()
	s := build(t, append(base(), at(0, state.SetStopped{Group: "g", Stopped: true, Reason: "by hand"}),
		at(0, state.SetStopped{Group: "new", Stopped: true}))...)
	require.True(t, s.Groups["g"].Stopped)
	require.Equal(t, "by hand", s.Groups["g"].StoppedReason)
	c := s.Cluster(t0, []policy.Group{{Name: "g"}, {Name: "new"}, {Name: "other"}})
	require.Len(t, c.Groups, 1)
	require.Equal(t, "other", c.Groups[0].Name)
	require.NoError(t, s.Apply(at(0, state.SetStopped{Group: "g"})))
	require.False(t, s.Groups["g"].Stopped)
	require.Empty(t, s.Groups["g"].StoppedReason)
	require.Error(t, s.Apply(at(0, state.SetStopped{})), "empty group")
}

func TestZeroStateApplies(t *testing.T) {
	t.Parallel()
	var s state.State
	require.NoError(t, s.Apply(at(0, state.AddNode{Node: "a"})))
	require.Contains(t, s.Nodes, "a")
	require.NotNil(t, s.Groups)
}

// Every command survives Encode and Decode, and the decoder table knows
// every type by the name its Type method gives.
func TestEncodeDecode(t *testing.T) {
	t.Parallel()
	cmds := []state.Command{
		state.AddNode{Node: "a", Addrs: []string{"10.0.0.1", "10.1.0.1"}, Witness: true},
		state.RemoveNode{Node: "a"},
		state.SetNodeState{Node: "a", State: policy.NodeMaintenance, Reason: "r"},
		state.SetOwner{Group: "g", Owner: "a", PrevEpoch: 7, Kind: state.KindFailback, Reason: "r"},
		state.SetOwner{Group: "g", PrevEpoch: 8, Kind: state.KindOffline, Reason: "r", Failed: true},
		state.RecordFailure{Group: "g", Node: "a", Class: resource.ClassConfiguration, Reason: "r"},
		state.ClearFailure{Group: "g"},
		state.Ban{Group: "g", Node: "a", Reason: "r"},
		state.MoveGroup{Group: "g", To: "b"},
		state.MoveGroup{Group: "g", To: "b", Kind: state.KindFailback, Reason: "r"},
		state.Release{Group: "g", Node: "a", Epoch: 3},
		state.SetStopped{Group: "g", Stopped: true, Reason: "r"},
		state.RemoveGroup{Group: "g"},
		state.SetConfigVersion{Version: 9},
	}
	for _, c := range cmds {
		b, err := state.Encode(state.Entry{At: t0, Cmd: c})
		require.NoError(t, err)
		var w map[string]any
		require.NoError(t, json.Unmarshal(b, &w))
		require.Equal(t, c.Type(), w["type"])
		require.EqualValues(t, state.Version, w["v"])
		e, err := state.Decode(b)
		require.NoError(t, err)
		require.Equal(t, state.Entry{At: t0, Cmd: c}, e)
	}
}

func TestDecodeErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
	}{
		{name: "not json", in: `{`, want: "decode log entry"},
		{name: "newer version", in: `{"v":2,"type":"ban","body":{}}`, want: `v 2: log entry version not supported (this node reads 1 to 1)`},
		{name: "no version", in: `{"type":"ban","body":{}}`, want: `v 0: log entry version not supported`},
		{name: "unknown type", in: `{"v":1,"type":"nuke","body":{}}`, want: `type "nuke": unknown command`},
		{name: "bad body", in: `{"v":1,"type":"ban","body":{"group":7}}`, want: "decode ban"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := state.Decode([]byte(tc.in))
			require.ErrorContains(t, err, tc.want)
		})
	}
	_, err := state.Encode(state.Entry{})
	require.ErrorContains(t, err, "no command")
	_, err = state.Encode(state.Entry{Cmd: badCmd{Ch: make(chan int)}})
	require.ErrorContains(t, err, "encode bad")
}

type badCmd struct{ Ch chan int }

func (badCmd) Type() string { return "bad" }

func TestSnapshotRestore(t *testing.T) {
	t.Parallel()
	s := build(t, append(base(),
		at(time.Minute, state.RecordFailure{Group: "g", Node: "a", Class: resource.ClassNodeLocal, Reason: "x"}),
		at(2*time.Minute, state.SetOwner{Group: "g", Owner: "b", PrevEpoch: 1, Kind: state.KindFailover}),
		at(3*time.Minute, state.SetConfigVersion{Version: 4}),
	)...)
	s.Index = 42
	b, err := s.Snapshot()
	require.NoError(t, err)
	r, err := state.Restore(b)
	require.NoError(t, err)
	require.Equal(t, s, r)
	require.Equal(t, s, s.Clone())

	empty, err := state.Restore([]byte(`{"v":1}`))
	require.NoError(t, err)
	require.Equal(t, state.New(), empty)
	_, err = state.Restore([]byte(`{"v":2}`))
	require.ErrorContains(t, err, "v 2: snapshot version not supported")
	_, err = state.Restore([]byte(`[`))
	require.ErrorContains(t, err, "restore cluster state")
}

// Cluster turns the state into the placement's input.
func TestCluster(t *testing.T) {
	t.Parallel()
	s := build(t, append(base(),
		at(time.Minute, state.SetNodeState{Node: "b", State: policy.NodeDown}),
		at(time.Minute, state.RecordFailure{Group: "g", Node: "a", Class: resource.ClassNodeLocal, Reason: "x"}),
	)...)
	cfg := []policy.Group{{Name: "g", Owners: policy.Owners{Preferred: []string{"b", "a"}}}, {Name: "new"}}
	c := s.Cluster(t0.Add(time.Hour), cfg)
	require.Equal(t, t0.Add(time.Hour), c.Now)
	require.Equal(t, []policy.Node{
		{Name: "a", State: policy.NodeUp, HealthySince: t0.Add(time.Second)},
		{Name: "b", State: policy.NodeDown},
		{Name: "w", State: policy.NodeWitness, HealthySince: t0.Add(time.Second)},
	}, c.Nodes)
	require.Len(t, c.Groups, 2)
	g := c.Groups[0]
	require.Equal(t, "a", g.Owner)
	require.Equal(t, t0.Add(2*time.Second), g.Since)
	require.True(t, g.Failed)
	require.Len(t, g.Bans, 1)
	require.Equal(t, []string{"b", "a"}, g.Owners.Preferred)
	require.Empty(t, c.Groups[1].Owner)
	p, err := c.Place("g")
	require.NoError(t, err)
	require.Equal(t, policy.ActionStayFailed, p.Action, "b is down, a banned: %s", p.Explain())
}

// TestReclaimKeepsArrival: a new epoch on the same owner (its reclaim
// after a lost lease) keeps the time the group came to it, which failback
// compares with the preferred node's return: a node that came back before
// the reclaim still gets its group back. A real move sets it.
func TestReclaimKeepsArrival(t *testing.T) {
	t.Parallel()
	s := build(t, append(base(),
		at(time.Minute, state.SetOwner{Group: "g", Owner: "b", PrevEpoch: 1, Kind: state.KindFailover}),
		at(2*time.Minute, state.SetNodeState{Node: "a", State: policy.NodeDown}),
		at(3*time.Minute, state.SetNodeState{Node: "a", State: policy.NodeUp}),
		at(4*time.Minute, state.SetOwner{Group: "g", Owner: "b", PrevEpoch: 2, Kind: state.KindPlace, Reason: "reclaimed"}),
	)...)
	g := s.Groups["g"]
	require.Equal(t, uint64(3), g.Epoch)
	require.Equal(t, t0.Add(time.Minute), g.Changed, "the reclaim kept the arrival")
	pg := s.Cluster(t0.Add(10*time.Minute), []policy.Group{{Name: "g", Owners: policy.Owners{Preferred: []string{"a", "b"}},
		Failback: policy.Failback{Mode: policy.FailbackImmediate}, StablePeriod: time.Minute}})
	d, err := pg.Place("g")
	require.NoError(t, err)
	require.Equal(t, "a", d.Node, "fails back to a, which came back after the group came to b: %s", d.Reason)
	require.NoError(t, s.Apply(at(5*time.Minute, state.SetOwner{Group: "g", Owner: "a", PrevEpoch: 3, Kind: state.KindFailback})))
	require.Equal(t, t0.Add(5*time.Minute), g.Changed)
}
