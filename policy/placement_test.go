package policy_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sftkit/sft/policy"
)

// up returns nodes that are up (for long), in order.
func up(names ...string) []policy.Node {
	out := make([]policy.Node, len(names))
	for i, n := range names {
		out[i] = policy.Node{Name: n}
	}
	return out
}

// with returns nodes with the named node changed by f.
func with(nodes []policy.Node, name string, f func(*policy.Node)) []policy.Node {
	out := slices.Clone(nodes)
	for i := range out {
		if out[i].Name == name {
			f(&out[i])
		}
	}
	return out
}

func state(s policy.NodeState) func(*policy.Node) { return func(n *policy.Node) { n.State = s } }

func since(d time.Duration) func(*policy.Node) {
	return func(n *policy.Node) { n.HealthySince = t0.Add(-d) }
}

func TestPlace(t *testing.T) {
	t.Parallel()
	abc := policy.Owners{Preferred: []string{"a", "b", "c"}}
	immediate := policy.Failback{Mode: policy.FailbackImmediate}
	office := policy.Failback{Mode: policy.FailbackWindow, WindowStart: 9, WindowEnd: 11} // t0 is 12:00
	tests := []struct {
		name   string
		nodes  []policy.Node
		group  policy.Group
		others []policy.Group
		action policy.Action
		node   string
		delay  time.Duration
		reason string            // substring of the decision's reason
		thr    bool              // Throttled
		why    map[string]string // node -> substring of its reason
	}{
		{name: "first placement: most preferred", nodes: up("c", "b", "a"),
			group:  policy.Group{Name: "g", Owners: abc},
			action: policy.ActionMove, node: "a", reason: "not placed yet: a (preferred #1, load 0)",
			why: map[string]string{"b": "preferred #2, load 0", "c": "preferred #3"}},
		{name: "stays on a healthy owner that is not preferred (failback prevented)", nodes: with(up("a", "b", "c"), "a", since(time.Hour)),
			group:  policy.Group{Name: "g", Owners: abc, Owner: "c"},
			action: policy.ActionNone, node: "c",
			reason: "stays on its owner c: healthy; a is better (preferred #1, load 0) than c (preferred #3, load 0), but failback is prevented"},
		{name: "stays on its most preferred owner", nodes: up("a", "b"),
			group:  policy.Group{Name: "g", Owners: abc, Owner: "a", Failback: immediate},
			action: policy.ActionNone, node: "a", reason: "stays on its owner a: healthy"},
		{name: "owner down: next by preference, counted", nodes: with(up("a", "b", "c"), "a", state(policy.NodeDown)),
			group:  policy.Group{Name: "g", Owners: abc, Owner: "a"},
			action: policy.ActionFailover, node: "b", reason: "owner a is down: b (preferred #2",
			why: map[string]string{"a": "down"}},
		{name: "owner gone from the cluster: failover", nodes: up("b", "c"),
			group:  policy.Group{Name: "g", Owners: abc, Owner: "a"},
			action: policy.ActionFailover, node: "b", reason: "owner a is not a member of the cluster"},
		{name: "not preferred: least loaded, then node order", nodes: with(up("x", "y", "z"), "x", func(n *policy.Node) { n.Load = 1 }),
			group:  policy.Group{Name: "g"},
			others: []policy.Group{{Name: "o", Owner: "y"}},
			action: policy.ActionMove, node: "z", reason: "z (possible owner, load 0)",
			why: map[string]string{"x": "possible owner, load 1", "y": "possible owner, load 1"}},
		{name: "preference beats load", nodes: up("a", "b"),
			group:  policy.Group{Name: "g", Owners: abc},
			others: []policy.Group{{Name: "o1", Owner: "a"}, {Name: "o2", Owner: "a"}},
			action: policy.ActionMove, node: "a", reason: "a (preferred #1, load 2)"},
		{name: "not a possible owner, witness, maintenance, down are never chosen",
			nodes: []policy.Node{{Name: "w", State: policy.NodeWitness}, {Name: "m", State: policy.NodeMaintenance},
				{Name: "d", State: policy.NodeDown}, {Name: "x"}, {Name: "ok"}},
			group:  policy.Group{Name: "g", Owners: policy.Owners{Possible: []string{"w", "m", "d", "ok"}}},
			action: policy.ActionMove, node: "ok",
			why: map[string]string{"w": "witness: hosts nothing", "m": "in maintenance", "d": "down", "x": "not a possible owner"}},
		{name: "group failed: next after the owner by preference", nodes: up("a", "b", "c"),
			group:  policy.Group{Name: "g", Owners: abc, Owner: "b", Failed: true},
			action: policy.ActionFailover, node: "c", reason: "failed on b; next after b in order of preference: c",
			why: map[string]string{"b": "the group failed here"}},
		{name: "group failed on the last preferred: wraps to the first", nodes: up("a", "b", "c"),
			group:  policy.Group{Name: "g", Owners: abc, Owner: "c", Failed: true},
			action: policy.ActionFailover, node: "a", reason: "failed on c: a (preferred #1"},
		{name: "group failed: non-preferred owners after the preferred ones", nodes: up("a", "b", "x"),
			group:  policy.Group{Name: "g", Owners: policy.Owners{Preferred: []string{"a", "b"}}, Owner: "a", Failed: true},
			action: policy.ActionFailover, node: "b"},
		{name: "group failed with nowhere else to go", nodes: up("a"),
			group:  policy.Group{Name: "g", Owners: abc, Owner: "a", Failed: true},
			action: policy.ActionStayFailed, reason: "failed on a; no node can host it"},
		{name: "failover threshold reached: stays offline with the reason", nodes: up("a", "b", "c"),
			group: policy.Group{Name: "g", Owners: abc, Owner: "a", Failed: true,
				Failovers: ago(time.Hour, 2*time.Hour)}, // default threshold: 3 nodes - 1 = 2 in 6 h
			action: policy.ActionStayFailed,
			reason: "failed on a; failover threshold reached: 2 failovers within 6h0m0s (threshold 2): it stays offline", thr: true},
		{name: "failovers outside the period do not count", nodes: up("a", "b", "c"),
			group: policy.Group{Name: "g", Owners: abc, Owner: "a", Failed: true,
				Failovers: ago(7*time.Hour, 8*time.Hour)},
			action: policy.ActionFailover, node: "b"},
		{name: "witness does not count towards the default threshold",
			nodes:  []policy.Node{{Name: "a", State: policy.NodeDown}, {Name: "b"}, {Name: "w", State: policy.NodeWitness}},
			group:  policy.Group{Name: "g", Owner: "a", Failovers: ago(time.Hour)}, // 2 hosts: threshold 1
			action: policy.ActionStayFailed, reason: "threshold 1", thr: true},
		{name: "node-local ban", nodes: up("a", "b", "c"),
			group: policy.Group{Name: "g", Owners: abc, Owner: "a", Failed: true,
				Bans: []policy.Ban{{Node: "b", Reason: "node-local failure: no such interface eth9"}}},
			action: policy.ActionFailover, node: "c",
			why: map[string]string{"b": "banned: node-local failure: no such interface eth9"}},
		{name: "configuration ban: nowhere", nodes: up("a", "b"),
			group: policy.Group{Name: "g", Owners: abc, Owner: "a", Failed: true,
				Bans: []policy.Ban{{Reason: "configuration error: path \"/nope\""}}},
			action: policy.ActionStayFailed, reason: "no node can host it",
			why: map[string]string{"a": "banned on every node: configuration error", "b": "banned on every node"}},
		{name: "owner banned by hand: moves, not counted", nodes: up("a", "b"),
			group:  policy.Group{Name: "g", Owners: abc, Owner: "a", Bans: []policy.Ban{{Node: "a", Reason: "by hand"}}},
			action: policy.ActionMove, node: "b", reason: "owner a may not keep it: banned: by hand"},
		{name: "owner in maintenance: drained, not counted", nodes: with(up("a", "b"), "a", state(policy.NodeMaintenance)),
			group:  policy.Group{Name: "g", Owners: abc, Owner: "a", Failovers: ago(time.Minute, time.Minute)},
			action: policy.ActionMove, node: "b", reason: "owner a may not keep it: in maintenance"},
		{name: "owner in maintenance with nowhere to go: stays", nodes: with(up("a", "b"), "a", state(policy.NodeMaintenance)),
			group:  policy.Group{Name: "g", Owners: policy.Owners{Possible: []string{"a"}}, Owner: "a"},
			action: policy.ActionNone, node: "a", reason: "no other node can host it: it stays until one can"},
		{name: "owner no longer a possible owner: moves", nodes: up("a", "b"),
			group:  policy.Group{Name: "g", Owners: policy.Owners{Possible: []string{"b"}}, Owner: "a"},
			action: policy.ActionMove, node: "b", reason: "owner a may not keep it: not a possible owner"},
		{name: "failed and offline: stays so until cleared", nodes: up("a", "b"),
			group:  policy.Group{Name: "g", Owners: abc, Failed: true},
			action: policy.ActionStayFailed, reason: "failed: it stays offline until a person clears it"},
		{name: "no node at all", nodes: nil, group: policy.Group{Name: "g"},
			action: policy.ActionStayFailed, reason: "not placed yet; no node can host it"},

		// Failback.
		{name: "failback immediate once the preferred node is stable", nodes: with(up("a", "b"), "a", since(time.Minute)),
			group:  policy.Group{Name: "g", Owners: abc, Owner: "b", Failback: immediate},
			action: policy.ActionMove, node: "a",
			reason: "a is better (preferred #1, load 0) than b (preferred #2, load 0): failback immediate"},
		{name: "failback waits for the stable period", nodes: with(up("a", "b"), "a", since(10*time.Second)),
			group:  policy.Group{Name: "g", Owners: abc, Owner: "b", Failback: immediate},
			action: policy.ActionNone, node: "b", delay: 20 * time.Second,
			reason: "a would be better (preferred #1, load 0) but has been up only 10s of the stable period 30s"},
		{name: "failback stable period is configurable", nodes: with(up("a", "b"), "a", since(10*time.Second)),
			group:  policy.Group{Name: "g", Owners: abc, Owner: "b", Failback: immediate, StablePeriod: 5 * time.Second},
			action: policy.ActionMove, node: "a"},
		{name: "failback waits after the group failed on the preferred node", nodes: with(up("a", "b"), "a", since(time.Hour)),
			group: policy.Group{Name: "g", Owners: abc, Owner: "b", Failback: immediate,
				LastFailure: map[string]time.Time{"a": t0.Add(-5 * time.Second)}},
			action: policy.ActionNone, node: "b", delay: 25 * time.Second,
			reason: "but the group failed there 5s ago"},
		{name: "failback window closed: waits for it", nodes: with(up("a", "b"), "a", since(time.Hour)),
			group:  policy.Group{Name: "g", Owners: abc, Owner: "b", Failback: office},
			action: policy.ActionNone, node: "b", delay: 21 * time.Hour,
			reason: "but waiting for the failback window 09:00-11:00"},
		{name: "no failback to a node that was up when the group came (a failover or a move)",
			nodes:  with(up("a", "b"), "a", since(time.Hour)),
			group:  policy.Group{Name: "g", Owners: abc, Owner: "b", Failback: immediate, Since: t0.Add(-time.Minute)},
			action: policy.ActionNone, node: "b", reason: "a would be better (preferred #1, load 0) but was up when the group came here"},
		{name: "failback to a node that returned after the group came", nodes: with(up("a", "b"), "a", since(time.Hour)),
			group:  policy.Group{Name: "g", Owners: abc, Owner: "b", Failback: immediate, Since: t0.Add(-2 * time.Hour)},
			action: policy.ActionMove, node: "a"},
		{name: "failback to the best node only (a not stable: no move to b)",
			nodes:  with(up("a", "b", "c"), "a", since(time.Second)),
			group:  policy.Group{Name: "g", Owners: abc, Owner: "c", Failback: immediate},
			action: policy.ActionNone, node: "c", delay: 29 * time.Second},

		// Anti-affinity.
		{name: "anti-affinity beats preference", nodes: up("a", "b"),
			group:  policy.Group{Name: "sql2", Owners: abc, AntiAffinity: []string{"sql"}},
			others: []policy.Group{{Name: "sql1", Owner: "a", AntiAffinity: []string{"sql", "x"}}},
			action: policy.ActionMove, node: "b",
			why: map[string]string{"a": "preferred #1, load 1, anti-affinity with sql1 (class sql)"}},
		{name: "anti-affinity yields when no other node can host it", nodes: with(up("a", "b"), "b", state(policy.NodeDown)),
			group:  policy.Group{Name: "sql2", Owners: abc, AntiAffinity: []string{"sql"}},
			others: []policy.Group{{Name: "sql1", Owner: "a", AntiAffinity: []string{"sql"}}},
			action: policy.ActionMove, node: "a", reason: "anti-affinity with sql1"},
		{name: "anti-affinity names three groups and counts the rest", nodes: up("a", "b"),
			group: policy.Group{Name: "sql9", Owners: abc, AntiAffinity: []string{"sql"}},
			others: []policy.Group{{Name: "sql1", Owner: "a", AntiAffinity: []string{"sql"}}, {Name: "sql2", Owner: "a", AntiAffinity: []string{"sql"}},
				{Name: "web", Owner: "a"}, {Name: "sql3", Owner: "a", AntiAffinity: []string{"sql"}}, {Name: "sql4", Owner: "a", AntiAffinity: []string{"sql"}},
				{Name: "sql5", Owner: "b", AntiAffinity: []string{"sql"}}},
			action: policy.ActionMove, node: "b",
			why: map[string]string{"a": "preferred #1, load 5, anti-affinity with sql1 (class sql), sql2 (class sql), sql3 (class sql) and 1 more",
				"b": "preferred #2, load 1, anti-affinity with sql5 (class sql)"}},
		{name: "other classes do not conflict", nodes: up("a", "b"),
			group:  policy.Group{Name: "web", Owners: abc, AntiAffinity: []string{"web"}},
			others: []policy.Group{{Name: "sql1", Owner: "a", AntiAffinity: []string{"sql"}}},
			action: policy.ActionMove, node: "a"},
		{name: "anti-affinity rebalances on failback", nodes: with(up("a", "b"), "b", since(time.Hour)),
			group:  policy.Group{Name: "sql2", Owners: abc, Owner: "a", AntiAffinity: []string{"sql"}, Failback: immediate},
			others: []policy.Group{{Name: "sql1", Owner: "a", AntiAffinity: []string{"sql"}}},
			action: policy.ActionMove, node: "b"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := policy.Cluster{Now: t0, Nodes: tc.nodes, Groups: append([]policy.Group{tc.group}, tc.others...)}
			require.NoError(t, c.Validate())
			p, err := c.Place(tc.group.Name)
			require.NoError(t, err)
			require.Equal(t, tc.group.Name, p.Group)
			require.Equal(t, tc.action, p.Action, p.Explain())
			require.Equal(t, tc.node, p.Node, p.Explain())
			require.Equal(t, tc.delay, p.Delay, p.Explain())
			require.Contains(t, p.Reason, tc.reason)
			require.Equal(t, tc.thr, p.Throttled)
			require.Len(t, p.Nodes, len(tc.nodes))
			for node, why := range tc.why {
				i := slices.IndexFunc(p.Nodes, func(r policy.NodeReason) bool { return r.Node == node })
				require.GreaterOrEqual(t, i, 0, node)
				require.Contains(t, p.Nodes[i].Reason, why, p.Explain())
			}
		})
	}
}

func TestPlaceUnknownNodeState(t *testing.T) {
	t.Parallel()
	c := policy.Cluster{Nodes: []policy.Node{{Name: "a", State: 9}}, Groups: []policy.Group{{Name: "g"}}}
	p, err := c.Place("g")
	require.NoError(t, err)
	require.Equal(t, policy.ActionStayFailed, p.Action)
	require.Equal(t, "NodeState(9): hosts nothing", p.Nodes[0].Reason)
}

func TestPlaceUnknownGroup(t *testing.T) {
	t.Parallel()
	_, err := policy.Cluster{Nodes: up("a")}.Place("nope")
	requireFieldError(t, err, "group", `"nope"`)
}

// A pool (MiniSFT's "luxury version"): six addresses over three nodes,
// none preferred, spread by load; a node dies and its groups spread over
// the others; it returns and, with failback immediate, the pool rebalances
// once the node is stable; with failback prevented it does not.
func TestPlaceAllPool(t *testing.T) {
	t.Parallel()
	groups := func(fb policy.Failback) []policy.Group {
		var gs []policy.Group
		for i := range 6 {
			gs = append(gs, policy.Group{Name: fmt.Sprintf("ip%d", i), Failback: fb})
		}
		return gs
	}
	owners := func(ps []policy.Placement) map[string]int {
		m := map[string]int{}
		for _, p := range ps {
			m[p.Node]++
		}
		return m
	}
	apply := func(gs []policy.Group, ps []policy.Placement) []policy.Group {
		out := slices.Clone(gs)
		for i, p := range ps {
			out[i].Owner = p.Node
		}
		return out
	}
	for _, fb := range []policy.Failback{{Mode: policy.FailbackImmediate}, {}} {
		t.Run(fb.Mode.String(), func(t *testing.T) {
			t.Parallel()
			c := policy.Cluster{Now: t0, Nodes: up("a", "b", "c"), Groups: groups(fb)}
			ps := c.PlaceAll()
			require.Equal(t, map[string]int{"a": 2, "b": 2, "c": 2}, owners(ps))
			require.Equal(t, []string{"a", "b", "c", "a", "b", "c"}, nodesOf(ps))

			// c dies: its two groups go one to a, one to b (least loaded).
			c.Groups = apply(c.Groups, ps)
			c.Nodes = with(c.Nodes, "c", state(policy.NodeDown))
			ps = c.PlaceAll()
			require.Equal(t, map[string]int{"a": 3, "b": 3}, owners(ps))
			require.Equal(t, policy.ActionFailover, ps[2].Action)
			require.Equal(t, policy.ActionNone, ps[0].Action)

			// c returns: not stable yet, nothing moves.
			c.Groups = apply(c.Groups, ps)
			c.Nodes = with(c.Nodes, "c", func(n *policy.Node) { n.State, n.HealthySince = policy.NodeUp, t0 })
			ps = c.PlaceAll()
			require.Equal(t, map[string]int{"a": 3, "b": 3}, owners(ps))
			require.Equal(t, policy.DefaultStablePeriod, ps[0].Delay, ps[0].Explain())

			// Stable: rebalance per failback policy.
			c.Now = t0.Add(policy.DefaultStablePeriod)
			ps = c.PlaceAll()
			if fb.Mode == policy.FailbackImmediate {
				require.Equal(t, map[string]int{"a": 2, "b": 2, "c": 2}, owners(ps))
				moved := 0
				for _, p := range ps {
					if p.Action == policy.ActionMove {
						moved++
						require.Contains(t, p.Reason, "c is better (possible owner, load")
					}
				}
				require.Equal(t, 2, moved, "only as many groups move as balance needs")
			} else {
				require.Equal(t, map[string]int{"a": 3, "b": 3}, owners(ps))
				require.Contains(t, ps[0].Reason, "failback is prevented")
			}
		})
	}
}

func nodesOf(ps []policy.Placement) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Node
	}
	return out
}

// Two groups of one anti-affinity class and a third: placed together they
// land on different nodes.
func TestPlaceAllAntiAffinity(t *testing.T) {
	t.Parallel()
	pref := policy.Owners{Preferred: []string{"a", "b"}}
	c := policy.Cluster{Now: t0, Nodes: up("a", "b"), Groups: []policy.Group{
		{Name: "sql1", Owners: pref, AntiAffinity: []string{"sql"}},
		{Name: "sql2", Owners: pref, AntiAffinity: []string{"sql"}},
		{Name: "web", Owners: pref},
	}}
	require.Equal(t, []string{"a", "b", "a"}, nodesOf(c.PlaceAll()))
}

func TestPlacementExplain(t *testing.T) {
	t.Parallel()
	c := policy.Cluster{Now: t0, Nodes: with(up("a", "b", "w"), "w", state(policy.NodeWitness)),
		Groups: []policy.Group{{Name: "g", Owners: policy.Owners{Preferred: []string{"b"}}}}}
	p, err := c.Place("g")
	require.NoError(t, err)
	require.Equal(t, `g: move to b: not placed yet: b (preferred #1, load 0)
  a: possible owner, load 0
  b: preferred #1, load 0
  w: witness: hosts nothing`, p.Explain())
}

func TestPlacementValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		in     policy.Cluster
		fields []string
		values []string
	}{
		{name: "valid", in: policy.Cluster{Nodes: up("a", "b"), Groups: []policy.Group{{Name: "g", AntiAffinity: []string{"x"}}}}},
		{name: "node errors", in: policy.Cluster{Nodes: []policy.Node{{Name: ""}, {Name: "a", State: 9}, {Name: "a", Load: -1}}},
			fields: []string{"nodes[0].name", "nodes[1].state", "nodes[2].name", "nodes[2].load"},
			values: []string{`""`, "9", `"a"`, "-1"}},
		{name: "group errors, prefixed", in: policy.Cluster{Groups: []policy.Group{
			{Name: "", Owners: policy.Owners{Preferred: []string{"a", "a"}}, Failover: policy.Failover{Threshold: -1},
				Failback:     policy.Failback{Mode: policy.FailbackWindow, WindowStart: 3, WindowEnd: 3},
				AntiAffinity: []string{""}, StablePeriod: -time.Second},
			{Name: "g"}, {Name: "g"}}},
			fields: []string{"groups[0].name", "groups[0].owners.preferred[1]", "groups[0].failover.threshold",
				"groups[0].failback.window_end", "groups[0].anti_affinity[0]", "groups[0].stable_period", "groups[2].name"},
			values: []string{`""`, `"a"`, "-1", "3", `""`, "-1s", `"g"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			requireValidation(t, tc.in.Validate(), tc.fields, tc.values)
		})
	}
}

func TestNodeStateText(t *testing.T) {
	t.Parallel()
	for _, s := range []policy.NodeState{policy.NodeUp, policy.NodeDown, policy.NodeMaintenance, policy.NodeWitness} {
		b, err := s.MarshalText()
		require.NoError(t, err)
		var back policy.NodeState
		require.NoError(t, back.UnmarshalText(b))
		require.Equal(t, s, back)
	}
	require.Equal(t, "NodeState(7)", policy.NodeState(7).String())
	var s policy.NodeState
	requireFieldError(t, s.UnmarshalText([]byte("sleepy")), "state", `"sleepy"`)
}

// FuzzPlace checks the properties every placement must keep, whatever the
// cluster: it never places on a node that is down, a witness, in
// maintenance, not a possible owner or banned; a failed group never stays
// on the node it failed on; only a healthy owner may be kept; the decision
// is deterministic and always has a reason; the input is not modified.
func FuzzPlace(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, int64(0))
	f.Add([]byte{3, 3, 3, 200, 17, 99, 1, 0, 254, 8, 77, 5, 1, 2}, int64(3600))
	f.Add([]byte("the quick brown fox jumps over the lazy dog"), int64(86400*3))
	f.Fuzz(func(t *testing.T, data []byte, secs int64) {
		c := clusterFrom(data, t0.Add(time.Duration(secs%(7*86400))*time.Second))
		before := fmt.Sprintf("%#v", c)
		ps := c.PlaceAll()
		require.Equal(t, ps, c.PlaceAll(), "deterministic")
		require.Equal(t, before, fmt.Sprintf("%#v", c), "input unchanged")
		for _, g := range c.Groups {
			p, err := c.Place(g.Name)
			require.NoError(t, err)
			p2, _ := c.Place(g.Name)
			require.Equal(t, p, p2, "deterministic")
			checkPlacement(t, c, g, p)
		}
		for i, p := range ps {
			require.Equal(t, c.Groups[i].Name, p.Group)
			checkPlacement(t, c, c.Groups[i], p)
		}
	})
}

func checkPlacement(t *testing.T, c policy.Cluster, g policy.Group, p policy.Placement) {
	t.Helper()
	require.NotEmpty(t, p.Reason)
	require.Len(t, p.Nodes, len(c.Nodes))
	for _, r := range p.Nodes {
		require.NotEmpty(t, r.Reason)
	}
	switch p.Action {
	case policy.ActionStayFailed:
		require.Empty(t, p.Node)
		return
	case policy.ActionNone:
		require.Equal(t, g.Owner, p.Node, p.Explain())
		if !g.Failed {
			// Kept on a node that may not be chosen only to drain nowhere.
			for _, n := range c.Nodes {
				if n.Name == p.Node && n.State != policy.NodeUp {
					require.Equal(t, policy.NodeMaintenance, n.State, p.Explain())
				}
			}
			return
		}
	case policy.ActionMove, policy.ActionFailover:
		require.NotEqual(t, g.Owner, p.Node, p.Explain())
	default:
		t.Fatalf("unexpected action %v", p.Action)
	}
	i := slices.IndexFunc(c.Nodes, func(n policy.Node) bool { return n.Name == p.Node })
	require.GreaterOrEqual(t, i, 0, "placed on an unknown node: %s", p.Explain())
	n := c.Nodes[i]
	require.Equal(t, policy.NodeUp, n.State, p.Explain())
	require.True(t, g.Owners.CanOwn(n.Name), p.Explain())
	for _, b := range g.Bans {
		require.False(t, b.Node == "" || b.Node == n.Name, p.Explain())
	}
	if g.Failed {
		require.NotEqual(t, g.Owner, n.Name, p.Explain())
	}
	require.True(t, p.Nodes[i].Eligible)
	require.False(t, strings.HasPrefix(p.Nodes[i].Reason, "banned"))
}

// clusterFrom builds a small cluster from fuzz bytes: up to 5 nodes and 6
// groups with every state and policy knob drawn from data.
func clusterFrom(data []byte, now time.Time) policy.Cluster {
	pos := 0
	next := func(n int) int {
		if len(data) == 0 {
			return 0
		}
		b := int(data[pos%len(data)]) + pos/len(data)
		pos++
		return b % n
	}
	names := []string{"a", "b", "c", "d", "e"}
	c := policy.Cluster{Now: now}
	for _, name := range names[:1+next(5)] {
		c.Nodes = append(c.Nodes, policy.Node{Name: name, State: policy.NodeState(next(4)), Load: next(3),
			HealthySince: now.Add(-time.Duration(next(90)) * time.Second)})
	}
	some := func() []string {
		var out []string
		for _, n := range names {
			if next(2) == 1 {
				out = append(out, n)
			}
		}
		return out
	}
	for gi := range 1 + next(6) {
		g := policy.Group{Name: fmt.Sprintf("g%d", gi), Failed: next(3) == 0,
			Failback: policy.Failback{Mode: policy.FailbackMode(next(3)), WindowStart: next(24), WindowEnd: next(24)}}
		g.Owners.Possible = some()
		for _, n := range some() {
			if g.Owners.CanOwn(n) {
				g.Owners.Preferred = append(g.Owners.Preferred, n)
			}
		}
		if next(2) == 0 {
			g.Owner = names[next(5)]
			g.Since = now.Add(-time.Duration(next(90)) * time.Second)
		}
		for range next(3) {
			g.Bans = append(g.Bans, policy.Ban{Node: []string{"", "a", "b", "c"}[next(4)], Reason: "fuzz"})
		}
		for range next(4) {
			g.Failovers = append(g.Failovers, now.Add(-time.Duration(next(10))*time.Hour))
		}
		if next(2) == 0 {
			g.LastFailure = map[string]time.Time{names[next(5)]: now.Add(-time.Duration(next(60)) * time.Second)}
		}
		if next(2) == 0 {
			g.AntiAffinity = []string{[]string{"x", "y"}[next(2)]}
		}
		c.Groups = append(c.Groups, g)
	}
	return c
}
