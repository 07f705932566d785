package state_test

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/require"

	"github.com/sftkit/sft/cluster/state"
	"github.com/sftkit/sft/policy"
	"github.com/sftkit/sft/resource"
)

// hangGuard bounds every wait in the raft test: reaching it is a hang, not
// a slow machine (each step takes milliseconds).
const hangGuard = 60 * time.Second

type raftNode struct {
	id    raft.ServerID
	fsm   *state.FSM
	raft  *raft.Raft
	trans *raft.InmemTransport
	snaps *raft.InmemSnapshotStore
}

func newRaftNode(t *testing.T, id string) *raftNode {
	t.Helper()
	conf := raft.DefaultConfig()
	conf.LocalID = raft.ServerID(id)
	// The starting values DESIGN.md names (raft timeouts 200 ms).
	conf.HeartbeatTimeout = 200 * time.Millisecond
	conf.ElectionTimeout = 200 * time.Millisecond
	conf.LeaderLeaseTimeout = 200 * time.Millisecond
	conf.CommitTimeout = 5 * time.Millisecond
	conf.TrailingLogs = 1 // a late joiner needs the snapshot: Restore runs
	conf.Logger = hclog.New(&hclog.LoggerOptions{Output: io.Discard})
	_, trans := raft.NewInmemTransport(raft.ServerAddress(id))
	n := &raftNode{id: conf.LocalID, fsm: state.NewFSM(), trans: trans, snaps: raft.NewInmemSnapshotStore()}
	store := raft.NewInmemStore()
	r, err := raft.NewRaft(conf, n.fsm, store, store, n.snaps, trans)
	require.NoError(t, err)
	n.raft = r
	t.Cleanup(func() { _ = r.Shutdown().Error() })
	return n
}

func connect(nodes ...*raftNode) {
	for _, a := range nodes {
		for _, b := range nodes {
			if a != b {
				a.trans.Connect(b.trans.LocalAddr(), b.trans)
			}
		}
	}
}

// leader waits for one of the running nodes to lead.
func leader(t *testing.T, nodes ...*raftNode) *raftNode {
	t.Helper()
	deadline := time.Now().Add(hangGuard)
	for time.Now().Before(deadline) {
		for _, n := range nodes {
			if n.raft.State() == raft.Leader {
				return n
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("no leader elected")
	return nil
}

// propose applies c through the current leader and returns the result.
func propose(t *testing.T, nodes []*raftNode, c state.Command) state.Result {
	t.Helper()
	b, err := state.Encode(state.Entry{At: t0, Cmd: c})
	require.NoError(t, err)
	for range 100 {
		f := leader(t, nodes...).raft.Apply(b, hangGuard)
		if err := f.Error(); errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
			// Not committed through this leader; a CAS on the epoch makes
			// the retry safe if it was committed after all.
			continue
		} else {
			require.NoError(t, err)
		}
		return f.Response().(state.Result)
	}
	t.Fatal("no leader accepted the entry")
	return state.Result{}
}

// fsmIndex is the index of the last entry n's state machine applied.
func fsmIndex(n *raftNode) uint64 {
	var i uint64
	n.fsm.View(func(s *state.State) { i = s.Index })
	return i
}

// converged waits until every node's state machine has applied what the
// leader's has, and returns their states. raft's AppliedIndex will not
// do: it moves when entries are handed to the state machine's goroutine,
// before they are applied (a loaded machine showed a follower's state
// 4 entries behind it).
func converged(t *testing.T, nodes ...*raftNode) []*state.State {
	t.Helper()
	l := leader(t, nodes...)
	require.NoError(t, l.raft.Barrier(hangGuard).Error()) // the leader's FSM has applied all
	want := fsmIndex(l)
	deadline := time.Now().Add(hangGuard)
	for _, n := range nodes {
		for fsmIndex(n) < want {
			require.True(t, time.Now().Before(deadline), "node %s stuck at %d < %d", n.id, fsmIndex(n), want)
			time.Sleep(5 * time.Millisecond)
		}
	}
	out := make([]*state.State, len(nodes))
	for i, n := range nodes {
		n.fsm.View(func(s *state.State) { out[i] = s.Clone() })
	}
	return out
}

// Three raft nodes over the in-memory transport replicate the commands,
// refuse the same stale ones, keep every owner across a leader change,
// and a node that joins late gets the state from a snapshot.
func TestFSMOverRaft(t *testing.T) {
	t.Parallel()
	nodes := []*raftNode{newRaftNode(t, "a"), newRaftNode(t, "b"), newRaftNode(t, "c")}
	connect(nodes...)
	var servers []raft.Server
	for _, n := range nodes {
		servers = append(servers, raft.Server{ID: n.id, Address: n.trans.LocalAddr()})
	}
	require.NoError(t, nodes[0].raft.BootstrapCluster(raft.Configuration{Servers: servers}).Error())

	for _, name := range []string{"a", "b", "c"} {
		require.NoError(t, propose(t, nodes, state.AddNode{Node: name}).Err)
		require.NoError(t, propose(t, nodes, state.SetNodeState{Node: name, State: policy.NodeUp}).Err)
	}
	for i := range 3 {
		r := propose(t, nodes, state.SetOwner{Group: fmt.Sprintf("g%d", i), Owner: "abc"[i : i+1], Kind: state.KindPlace})
		require.NoError(t, r.Err)
		require.Equal(t, uint64(1), r.Epoch)
	}
	r := propose(t, nodes, state.SetOwner{Group: "g0", Owner: "b", PrevEpoch: 0, Kind: state.KindFailover})
	require.ErrorContains(t, r.Err, "stale: group g0 is at epoch 1")
	r = propose(t, nodes, state.RecordFailure{Group: "g0", Node: "a", Class: resource.ClassNodeLocal, Reason: "eth9"})
	require.NoError(t, r.Err)

	states := converged(t, nodes...)
	require.Equal(t, states[0], states[1])
	require.Equal(t, states[0], states[2])
	require.Equal(t, "a", states[0].Groups["g0"].Owner)
	require.Len(t, states[0].Groups["g0"].Bans, 1)

	// Depose the leader: a new one is elected, and no owner changed.
	old := leader(t, nodes...)
	require.NoError(t, old.raft.LeadershipTransfer().Error())
	require.Eventually(t, func() bool { l := leader(t, nodes...); return l != old }, hangGuard, 5*time.Millisecond)
	after := converged(t, nodes...)
	require.Equal(t, states[0], after[0], "a leader change changes nothing")

	// Snapshot, compact, and let a fourth node join from the snapshot.
	l := leader(t, nodes...)
	require.NoError(t, propose(t, nodes, state.SetConfigVersion{Version: 2}).Err)
	require.NoError(t, l.raft.Snapshot().Error())
	d := newRaftNode(t, "d")
	all := append(nodes, d)
	connect(all...)
	require.NoError(t, propose(t, nodes, state.AddNode{Node: "d"}).Err)
	require.NoError(t, leader(t, nodes...).raft.AddVoter(d.id, d.trans.LocalAddr(), 0, hangGuard).Error())
	final := converged(t, all...)
	for _, s := range final[1:] {
		require.Equal(t, final[0], s)
	}
	require.Equal(t, uint64(2), final[3].ConfigVersion)
	require.Equal(t, "c", final[3].Groups["g2"].Owner)
	require.Contains(t, final[3].Nodes, "d")
}

// The adapter's own edges: non-command entries, bad entries, a failing
// snapshot sink and a bad snapshot.
func TestFSMEdges(t *testing.T) {
	t.Parallel()
	f := state.NewFSM()
	require.Equal(t, state.Result{}, f.Apply(&raft.Log{Type: raft.LogNoop, Index: 1}))
	r := f.Apply(&raft.Log{Type: raft.LogCommand, Index: 2, Data: []byte(`{`)}).(state.Result)
	require.ErrorContains(t, r.Err, "decode log entry")
	b, err := state.Encode(state.Entry{At: t0, Cmd: state.RemoveNode{Node: "x"}})
	require.NoError(t, err)
	r = f.Apply(&raft.Log{Type: raft.LogCommand, Index: 3, Data: b}).(state.Result)
	require.ErrorContains(t, r.Err, `node "x": no such node`)
	f.View(func(s *state.State) { require.Equal(t, uint64(3), s.Index) })

	snap, err := f.Snapshot()
	require.NoError(t, err)
	defer snap.Release()
	sink := &failingSink{}
	require.ErrorContains(t, snap.Persist(sink), "disk full")
	require.True(t, sink.cancelled)

	require.ErrorContains(t, f.Restore(io.NopCloser(errReader{})), "read failed")
	require.ErrorContains(t, f.Restore(io.NopCloser(strings.NewReader(`{"v":9}`))), "snapshot version not supported")
}

type failingSink struct{ cancelled bool }

func (s *failingSink) Write([]byte) (int, error) { return 0, errors.New("disk full") }
func (s *failingSink) Close() error              { return nil }
func (s *failingSink) ID() string                { return "x" }
func (s *failingSink) Cancel() error             { s.cancelled = true; return nil }

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("read failed") }
