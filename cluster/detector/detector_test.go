package detector_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sftkit/sft/cluster/detector"
	"github.com/sftkit/sft/cluster/internal/hbsim"
	"github.com/sftkit/sft/resource"
)

const ms = time.Millisecond

var cfg = detector.Config{Interval: 10 * ms, Window: 500 * ms, Lease: 300 * ms}

// warm is long enough for every node to hold its lease (the echo holdoff
// is 2 x Window).
const warm = 2 * time.Second

func sim(t *testing.T, c detector.Config, names ...string) *hbsim.Net {
	t.Helper()
	n, err := hbsim.New(c, names...)
	require.NoError(t, err)
	return n
}

func TestSteadyState(t *testing.T) {
	t.Parallel()
	n := sim(t, cfg, "a", "b", "c")
	n.Run(2*time.Second, ms)
	for _, x := range n.Nodes {
		_, ok := x.D.Lease(x.Local(n.Now))
		require.True(t, ok, x.Name)
		require.Equal(t, 1, x.Count(detector.LeaseGained), x.Name)
		require.Zero(t, x.Count(detector.PeerSilent), x.Name)
		require.Empty(t, x.D.Dead(), x.Name)
		require.Equal(t, []string{}, append([]string{}, x.D.Dead()...))
	}
	// The lease is first gained when the peers, having heard a for the
	// echo holdoff (2 x Window from the first datagram at 2 ms), echo its
	// heartbeat in their next round (1.011 s), read at the next step.
	e, _ := n.Node("a").First(detector.LeaseGained, "")
	require.Equal(t, hbsim.Epoch.Add(1012*ms), e.Global)
}

// A node that dies (no datagram in or out) is silent to each survivor
// Window after its last heartbeat reached it, and declared dead at once,
// since both survivors agree; its own lease ran out Lease after its last
// echoed heartbeat.
func TestNodeDies(t *testing.T) {
	t.Parallel()
	n := sim(t, cfg, "a", "b", "c")
	n.Run(warm, ms)
	dead := n.Now
	n.Drop = func(from, to string, _ int) bool { return from == "c" || to == "c" }
	n.Run(warm, ms)
	for _, x := range []string{"a", "b"} {
		e, ok := n.Node(x).First(detector.PeerSilent, "c")
		require.True(t, ok)
		// c's last heartbeat left at most one Interval before the cut.
		require.WithinRange(t, e.Global, dead.Add(cfg.Window-cfg.Interval), dead.Add(cfg.Window+ms))
		d, ok := n.Node(x).First(detector.NodeDead, "c")
		require.True(t, ok)
		require.Contains(t, d.Detail, "2 of 2 others; 2 needed")
		require.Equal(t, []string{"c"}, n.Node(x).D.Dead())
		require.Equal(t, map[string]string{"c": d.Detail}, n.Node(x).D.DeadEvidence(),
			"the verdict and its evidence read at once (a leader's first round used to find no reason)")
		require.Zero(t, n.Node(x).Count(detector.LeaseLost), "the survivors keep their lease")
	}
	lost, ok := n.Node("c").First(detector.LeaseLost, "")
	require.True(t, ok)
	// Its newest echoed heartbeat left up to two rounds (there and back)
	// and two steps before the cut.
	require.WithinRange(t, lost.Global, dead.Add(cfg.Lease-2*cfg.Interval-2*ms), dead.Add(cfg.Lease+ms))
	require.Equal(t, 2, n.Node("c").Count(detector.PeerSilent))
	require.Zero(t, n.Node("c").Count(detector.NodeDead), "isolated, c cannot get anyone to agree")

	// c comes back: heard again, alive again, and a lease again after the
	// echo holdoff.
	n.Drop = nil
	n.Run(100*ms, ms)
	_, ok = n.Node("c").D.Lease(n.Now)
	require.False(t, ok, "no echo before the holdoff")
	n.Run(2*cfg.Window, ms)
	for _, x := range []string{"a", "b"} {
		_, ok := n.Node(x).First(detector.PeerHeard, "c")
		require.True(t, ok)
		al, ok := n.Node(x).First(detector.NodeAlive, "c")
		require.True(t, ok)
		require.Contains(t, al.Detail, "dead for")
		require.Empty(t, n.Node(x).D.DeadEvidence())
	}
	_, ok = n.Node("c").D.Lease(n.Now)
	require.True(t, ok)
}

// One of two paths lost between two nodes: path events, nothing else.
func TestOnePathLost(t *testing.T) {
	t.Parallel()
	c := cfg
	c.Paths = 2
	n := sim(t, c, "a", "b", "c")
	n.Run(warm, ms)
	n.Drop = func(from, to string, path int) bool {
		return path == 1 && (from == "a" && to == "b" || from == "b" && to == "a")
	}
	n.Run(2*time.Second, ms)
	down, ok := n.Node("b").First(detector.PathDown, "a")
	require.True(t, ok)
	require.Equal(t, 1, down.Path)
	require.Contains(t, down.String(), "path-down a path 1: silent for")
	for _, x := range n.Nodes {
		require.Zero(t, x.Count(detector.PeerSilent), x.Name)
		require.Zero(t, x.Count(detector.NodeDead), x.Name)
		require.Zero(t, x.Count(detector.LeaseLost), x.Name)
	}
	require.Zero(t, n.Node("c").Count(detector.PathDown))
	n.Drop = nil
	n.Run(100*ms, ms)
	up, ok := n.Node("b").First(detector.PathUp, "a")
	require.True(t, ok)
	require.Equal(t, 1, up.Path)
}

// One node's view is not enough: c is silent to a only (c's datagrams to
// a are lost), b still hears it, so c is not dead. When b loses it too, c
// is dead.
func TestAgreementNeedsMajority(t *testing.T) {
	t.Parallel()
	n := sim(t, cfg, "a", "b", "c")
	n.Run(warm, ms)
	n.Drop = func(from, to string, _ int) bool { return from == "c" && to == "a" }
	n.Run(2*time.Second, ms)
	_, ok := n.Node("a").First(detector.PeerSilent, "c")
	require.True(t, ok)
	require.True(t, n.Node("a").D.Silent("c"))
	require.False(t, n.Node("b").D.Silent("c"))
	for _, x := range n.Nodes {
		require.Zero(t, x.Count(detector.NodeDead), x.Name)
	}
	_, ok = n.Node("c").D.Lease(n.Now)
	require.True(t, ok, "b still echoes c: c keeps its lease")

	n.Drop = func(from, to string, _ int) bool { return from == "c" }
	n.Run(warm, ms)
	for _, x := range []string{"a", "b"} {
		_, ok := n.Node(x).First(detector.NodeDead, "c")
		require.True(t, ok, x)
	}
}

// In five nodes, three of the four others must agree.
func TestAgreementFiveNodes(t *testing.T) {
	t.Parallel()
	n := sim(t, cfg, "a", "b", "c", "d", "e")
	n.Run(warm, ms)
	// e is heard only by d and c.
	n.Drop = func(from, to string, _ int) bool { return from == "e" && (to == "a" || to == "b") }
	n.Run(warm, ms)
	require.Zero(t, n.Node("a").Count(detector.NodeDead), "2 of 4 suspect e")
	n.Drop = func(from, to string, _ int) bool { return from == "e" && to != "d" }
	n.Run(warm, ms)
	d, ok := n.Node("a").First(detector.NodeDead, "e")
	require.True(t, ok)
	require.Contains(t, d.Detail, "suspected by a, b, c (3 of 4 others; 3 needed)")
}

func TestReceiveRejects(t *testing.T) {
	t.Parallel()
	now := hbsim.Epoch
	d, err := detector.New(detector.Config{Self: "a", Interval: 10 * ms, Window: 500 * ms, Lease: 300 * ms}, 1)
	require.NoError(t, err)
	require.NoError(t, d.AddPeer("b", now))
	require.ErrorIs(t, d.AddPeer("b", now), resource.ErrConfiguration)
	require.ErrorIs(t, d.AddPeer("a", now), resource.ErrConfiguration)
	require.ErrorIs(t, d.AddPeer("", now), resource.ErrConfiguration)
	require.Equal(t, []string{"b"}, d.Peers())
	require.Equal(t, 1, d.Config().Paths, "default one path")

	hb := detector.Heartbeat{From: "b", To: "a", Incarnation: 5, Seq: 1}
	for _, tc := range []struct {
		name string
		path int
		hb   detector.Heartbeat
		want string
	}{
		{"not for us", 0, detector.Heartbeat{From: "b", To: "c", Incarnation: 5, Seq: 1}, `addressed to "c", not "a"`},
		{"unknown sender", 0, detector.Heartbeat{From: "x", To: "a", Incarnation: 5, Seq: 1}, `from unknown node "x"`},
		{"unknown path", 1, hb, "path 1 of 1"},
		{"negative path", -1, hb, "path -1 of 1"},
	} {
		require.ErrorIs(t, d.Receive(now, tc.path, tc.hb), detector.ErrRejected, tc.name)
		require.ErrorContains(t, d.Receive(now, tc.path, tc.hb), tc.want, tc.name)
	}
	require.NoError(t, d.Receive(now, 0, hb))
	require.ErrorContains(t, d.Receive(now, 0, hb), "heartbeat 5/1 on path 0 is not newer than 5/1", "a repeat")
	require.ErrorIs(t, d.Receive(now, 0, detector.Heartbeat{From: "b", To: "a", Incarnation: 4, Seq: 99}), detector.ErrRejected, "an older incarnation")

	// An echo of a heartbeat we never sent does not make a lease.
	require.NoError(t, d.Receive(now, 0, detector.Heartbeat{From: "b", To: "a", Incarnation: 5, Seq: 2, EchoIncarnation: 1, Echo: 7}))
	_, ok := d.Lease(now)
	require.False(t, ok)
	// a echoes b only once it has heard b for the holdoff (2 x Window).
	out := d.Tick(now.Add(999 * ms))
	require.Len(t, out, 1)
	require.Equal(t, detector.Heartbeat{From: "a", To: "b", Incarnation: 1, Seq: 1}, out[0].Msg)
	sent := now.Add(time.Second)
	out = d.Tick(sent)
	require.Equal(t, detector.Heartbeat{From: "a", To: "b", Incarnation: 1, Seq: 2, EchoIncarnation: 5, Echo: 2}, out[0].Msg)
	// An echo from another incarnation of ours makes no lease.
	require.NoError(t, d.Receive(sent, 0, detector.Heartbeat{From: "b", To: "a", Incarnation: 5, Seq: 3, EchoIncarnation: 2, Echo: 2}))
	_, ok = d.Lease(sent)
	require.False(t, ok)
	// The right echo does.
	require.NoError(t, d.Receive(sent.Add(ms), 0, detector.Heartbeat{From: "b", To: "a", Incarnation: 5, Seq: 4, EchoIncarnation: 1, Echo: 2}))
	until, ok := d.Lease(sent.Add(ms))
	require.True(t, ok)
	require.Equal(t, sent.Add(300*ms), until, "Lease after the echoed heartbeat was sent")
	// b restarts (higher incarnation, seq from 1): accepted.
	require.NoError(t, d.Receive(sent.Add(2*ms), 0, detector.Heartbeat{From: "b", To: "a", Incarnation: 6, Seq: 1}))
	_, ok = d.Lease(sent.Add(2 * ms))
	require.False(t, ok, "a restarted peer has echoed nothing of ours yet")

	d.RemovePeer("b")
	require.Empty(t, d.Peers())
	until, ok = d.Lease(now)
	require.True(t, ok, "alone, the lease always runs")
	require.Equal(t, now.Add(300*ms), until)
	require.False(t, d.Silent("b"))
}

func TestLeaseLostDetail(t *testing.T) {
	t.Parallel()
	n := sim(t, cfg, "a", "b", "c")
	// Never echoed.
	n.Drop = func(string, string, int) bool { return true }
	n.Run(50*ms, ms)
	require.Zero(t, n.Node("a").Count(detector.LeaseLost), "never had one")
	n.Drop = nil
	n.Run(2*time.Second, ms)
	n.Drop = func(string, string, int) bool { return true }
	n.Run(warm, ms)
	e, ok := n.Node("a").First(detector.LeaseLost, "")
	require.True(t, ok)
	require.Contains(t, e.Detail, "ran out 0s ago")
	g, _ := n.Node("a").First(detector.LeaseGained, "")
	require.Contains(t, g.String(), "lease-gained: runs until")
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	_, err := detector.New(detector.Config{Paths: -1, Window: -1, EchoHoldoff: -1}, 1)
	require.ErrorIs(t, err, resource.ErrConfiguration)
	for _, s := range []string{`self ""`, "paths -1", "interval 0s", "window -1ns", "lease 0s", "echo_holdoff -1ns"} {
		require.ErrorContains(t, err, s)
	}
	_, err = hbsim.New(detector.Config{}, "a")
	require.Error(t, err)
}
