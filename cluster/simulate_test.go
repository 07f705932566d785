package cluster_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sftkit/sft/cluster"
	"github.com/sftkit/sft/cluster/state"
	"github.com/sftkit/sft/policy"
	"github.com/sftkit/sft/resource"
)

var start = time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC)

func nodes(t *testing.T, names ...string) *state.State {
	t.Helper()
	st := state.New()
	for _, n := range names {
		require.NoError(t, st.Apply(state.Entry{At: start.Add(-time.Hour), Cmd: state.AddNode{Node: n}}))
		require.NoError(t, st.Apply(state.Entry{At: start.Add(-time.Hour), Cmd: state.SetNodeState{Node: n, State: policy.NodeUp}}))
	}
	return st
}

func script(t *testing.T, text string) []cluster.Step {
	t.Helper()
	steps, err := cluster.ParseScript(text)
	require.NoError(t, err)
	return steps
}

func owners(st *state.State) map[string]string {
	out := map[string]string{}
	for name, g := range st.Groups {
		out[name] = g.Owner
	}
	return out
}

func TestParseStep(t *testing.T) {
	t.Parallel()
	good := []struct {
		in   string
		want cluster.Step
	}{
		{"down a", cluster.Step{Kind: cluster.StepDown, Node: "a"}},
		{"up a", cluster.Step{Kind: cluster.StepUp, Node: "a"}},
		{"maintenance a", cluster.Step{Kind: cluster.StepMaintenance, Node: "a"}},
		{"fail g transient", cluster.Step{Kind: cluster.StepFail, Group: "g", Class: resource.ClassTransient}},
		{"fail g node-local", cluster.Step{Kind: cluster.StepFail, Group: "g", Class: resource.ClassNodeLocal}},
		{"fail g configuration", cluster.Step{Kind: cluster.StepFail, Group: "g", Class: resource.ClassConfiguration}},
		{"wait 6h0m0s", cluster.Step{Kind: cluster.StepWait, For: 6 * time.Hour}},
		{"move g b", cluster.Step{Kind: cluster.StepMove, Group: "g", Node: "b"}},
		{"clear g", cluster.Step{Kind: cluster.StepClear, Group: "g"}},
	}
	for _, tc := range good {
		s, err := cluster.ParseStep(tc.in)
		require.NoError(t, err, tc.in)
		require.Equal(t, tc.want, s)
		require.Equal(t, tc.in, s.String(), "String is the inverse")
	}
	s, err := cluster.ParseStep("  fail   g ")
	require.NoError(t, err)
	require.Equal(t, resource.ClassTransient, s.Class, "transient by default")

	for _, tc := range []struct{ in, want string }{
		{"", "empty step"},
		{"explode a", "unknown step (want down, up, maintenance, fail, wait, move or clear)"},
		{"down", `want "down NODE"`},
		{"down a b", `want "down NODE"`},
		{"fail", `want "fail GROUP [transient|node-local|configuration]"`},
		{"fail g cosmic", "cosmic"},
		{"wait", `want "wait DURATION"`},
		{"wait soon", "want a positive duration"},
		{"wait -1s", "want a positive duration"},
		{"move g", `want "move GROUP NODE"`},
		{"clear", `want "clear GROUP"`},
	} {
		_, err := cluster.ParseStep(tc.in)
		require.ErrorIs(t, err, resource.ErrConfiguration, tc.in)
		require.ErrorContains(t, err, tc.want, tc.in)
	}
	_, err = cluster.ParseScript("# comment\n\ndown a\nbogus\nup\n")
	require.ErrorContains(t, err, "line 4: step \"bogus\"")
	require.ErrorContains(t, err, "line 5: step \"up\"")
}

// A group that keeps failing moves to each node in turn, then stays
// offline past its failover threshold (nodes - 1 = 2 in 6 h) with the
// reason; a person clears it and it comes back.
func TestSimulateFailoverThreshold(t *testing.T) {
	t.Parallel()
	st := nodes(t, "a", "b", "c")
	groups := []policy.Group{{Name: "g", Owners: policy.Owners{Preferred: []string{"a", "b", "c"}}}}
	out, final, err := cluster.Simulate(st, start, groups, script(t, "fail g\nwait 1m\nfail g\nfail g\nwait 1h\nclear g"))
	require.NoError(t, err)
	var lines []string
	for _, o := range out {
		lines = append(lines, o.String())
	}
	text := strings.Join(lines, "\n")
	require.Equal(t, `start
  g: move to a: not placed yet: a (preferred #1, load 0)
fail g transient
  g: failover to b: failed on a: b (preferred #2, load 0)
wait 1m0s: no change
fail g transient
  g: failover to c: failed on b; next after b in order of preference: c (preferred #3, load 0)
fail g transient
  g: stay-failed: failed on c; failover threshold reached: 2 failovers within 6h0m0s (threshold 2): it stays offline
wait 1h0m0s: no change
clear g
  g: move to a: not placed yet: a (preferred #1, load 0)`, text)
	g := final.Groups["g"]
	require.Equal(t, "a", g.Owner)
	require.Equal(t, uint64(5), g.Epoch, "place, failover, failover, offline, place")
	require.Len(t, g.Failovers, 2)
	require.Empty(t, st.Groups, "the input state is not modified")
}

// A configuration failure bans every node: the group stays offline until
// cleared. A node-local one bans that node only.
func TestSimulateBans(t *testing.T) {
	t.Parallel()
	st := nodes(t, "a", "b")
	groups := []policy.Group{{Name: "g", Owners: policy.Owners{Preferred: []string{"a", "b"}}}}
	out, final, err := cluster.Simulate(st, start, groups, script(t, "fail g configuration\nwait 7h\nclear g\nfail g node-local\nmove g a"))
	require.NoError(t, err)
	require.Equal(t, "stay-failed: failed on a; no node can host it", out[1].Placements[0].String())
	require.Contains(t, out[1].Placements[0].Explain(), "b: banned on every node: configuration failure on a: simulated")
	require.Empty(t, out[2].Placements, "still failed after the threshold period: it waits for a person")
	require.Equal(t, "a", out[3].Placements[0].Node, "cleared: placed again")
	require.Equal(t, "b", out[4].Placements[0].Node)
	require.Equal(t, "refused: a: banned: node-local failure: simulated", out[5].Note)
	require.Equal(t, "b", final.Groups["g"].Owner)
}

// Maintenance drains a node (moves, not failovers), and nothing returns
// to it until it is up again and stable; a failing node's groups spread
// over the pool by load.
func TestSimulatePoolMaintenance(t *testing.T) {
	t.Parallel()
	st := nodes(t, "a", "b", "c")
	var groups []policy.Group
	for i := range 6 {
		groups = append(groups, policy.Group{Name: fmt.Sprintf("ip%d", i), Failback: policy.Failback{Mode: policy.FailbackImmediate}})
	}
	out, final, err := cluster.Simulate(st, start, groups, script(t, "maintenance c\nup c\nwait 10s\nwait 1m\ndown a"))
	require.NoError(t, err)
	require.Equal(t, map[string]string{"ip0": "a", "ip1": "b", "ip2": "c", "ip3": "a", "ip4": "b", "ip5": "c"}, owners(mustState(t, st, groups, "")))
	drain := out[1]
	require.Len(t, drain.Placements, 2)
	for _, p := range drain.Placements {
		require.Equal(t, policy.ActionMove, p.Action)
		require.Contains(t, p.Reason, "owner c may not keep it: in maintenance")
	}
	require.Empty(t, out[2].Placements, "c is up but not stable")
	require.Len(t, out[2].Pending, 6, "every group waits for c to be stable")
	require.Empty(t, out[3].Placements)
	rebalance := out[4]
	require.Equal(t, "after 20s: deferred decision", rebalance.Step)
	require.Len(t, rebalance.Placements, 2)
	require.Equal(t, start.Add(30*time.Second), rebalance.At)
	final2 := out[len(out)-1]
	require.Len(t, final2.Placements, 2)
	for _, p := range final2.Placements {
		require.Equal(t, policy.ActionFailover, p.Action)
	}
	count := map[string]int{}
	for _, o := range owners(final) {
		count[o]++
	}
	require.Equal(t, map[string]int{"b": 3, "c": 3}, count)
	for _, g := range final.Groups {
		require.LessOrEqual(t, len(g.Failovers), 1)
	}
}

// mustState runs an empty script (only the start pass).
func mustState(t *testing.T, st *state.State, groups []policy.Group, text string) *state.State {
	t.Helper()
	_, final, err := cluster.Simulate(st, start, groups, script(t, text))
	require.NoError(t, err)
	return final
}

func TestSimulateErrorsAndNotes(t *testing.T) {
	t.Parallel()
	st := nodes(t, "a", "b")
	groups := []policy.Group{{Name: "g"}, {Name: "h", Owners: policy.Owners{Possible: []string{"x"}}}}
	for _, tc := range []struct{ text, want string }{
		{"down x", `step 1 (down x): node "x": no such node`},
		{"move nope a", `step 1 (move nope a): group "nope": no such group`},
		{"move g x", `step 1 (move g x): node "x": no such node`},
		{"clear nope", `step 1 (clear nope): group "nope": no such group`},
	} {
		_, _, err := cluster.Simulate(st, start, groups, script(t, tc.text))
		require.ErrorContains(t, err, tc.want)
	}
	_, _, err := cluster.Simulate(st, start, groups, []cluster.Step{{Kind: "teleport"}})
	require.ErrorContains(t, err, `kind "teleport": unknown step`)

	out, _, err := cluster.Simulate(st, start, groups, script(t, "fail h\nmove g a"))
	require.NoError(t, err)
	require.Equal(t, "fail h transient: not online anywhere: nothing to fail", out[1].String())
	require.Equal(t, "move g a: already there", out[2].String())
}
