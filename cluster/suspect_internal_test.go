package cluster

import (
	"testing"
	"time"

	"github.com/sftkit/sft/cluster/state"
)

// The fence suspect is the last other owner the group did not fail on:
// a reclaim in place and an owner it failed on (refused: held elsewhere)
// keep the one before (TestFenceNeeded under load: b lost its lease and
// reclaimed web, and the hook was told to fence b, not a, which held the
// address).
func TestSuspectAfter(t *testing.T) {
	t0 := time.Unix(1000, 0)
	g := func(owner string, epoch uint64, changed time.Time, failed bool, lastFailure map[string]time.Time) *state.Group {
		return &state.Group{Name: "web", Owner: owner, Epoch: epoch, Changed: changed, Failed: failed, LastFailure: lastFailure}
	}
	steps := []struct {
		name string
		g    *state.Group
		want string
	}{
		{"placed on a", g("a", 1, t0, false, nil), ""},
		{"a down: failover to b", g("b", 2, t0.Add(time.Second), false, nil), "a"},
		{"b lost its lease: reclaim in place", g("b", 3, t0.Add(time.Second), false, nil), "a"},
		{"the group failed on b", g("b", 3, t0.Add(time.Second), true, map[string]time.Time{"b": t0.Add(2 * time.Second)}), "a"},
		{"failover to c", g("c", 4, t0.Add(3*time.Second), false, map[string]time.Time{"b": t0.Add(2 * time.Second)}), "a"},
		{"moved to b", g("b", 5, t0.Add(4*time.Second), false, map[string]time.Time{"b": t0.Add(2 * time.Second)}), "c"},
		{"failure on b recorded in the same change as the failover to a", g("a", 6, t0.Add(5*time.Second), false, map[string]time.Time{"b": t0.Add(5 * time.Second)}), "c"},
		{"unchanged epoch", g("a", 6, t0.Add(5*time.Second), false, nil), "c"},
	}
	var prev *state.Group
	suspect := ""
	for _, s := range steps {
		suspect = suspectAfter(suspect, prev, s.g)
		if suspect != s.want {
			t.Fatalf("%s: suspect %q, want %q", s.name, suspect, s.want)
		}
		prev = s.g
	}
}
