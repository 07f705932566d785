package cluster_test

import (
	"fmt"
	"time"

	"github.com/sftkit/sft/cluster"
	"github.com/sftkit/sft/cluster/state"
	"github.com/sftkit/sft/policy"
)

// A what-if run over three nodes and two groups: web prefers a and fails
// back at once; db prefers b and stays where it lands.
func ExampleSimulate() {
	start := time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC)
	st := state.New()
	for _, n := range []string{"a", "b", "c"} {
		_ = st.Apply(state.Entry{At: start, Cmd: state.AddNode{Node: n}})
		_ = st.Apply(state.Entry{At: start, Cmd: state.SetNodeState{Node: n, State: policy.NodeUp}})
	}
	groups := []policy.Group{
		{Name: "web", Owners: policy.Owners{Preferred: []string{"a", "b"}}, Failback: policy.Failback{Mode: policy.FailbackImmediate}},
		{Name: "db", Owners: policy.Owners{Preferred: []string{"b", "a"}}},
	}
	steps, err := cluster.ParseScript(`
		down a
		up a
		wait 1m
		fail db node-local
		move db c
		down c
		move db b
	`)
	if err != nil {
		fmt.Println(err)
		return
	}
	out, _, err := cluster.Simulate(st, start, groups, steps)
	for _, o := range out {
		fmt.Printf("%s %s\n", o.At.Format("15:04:05"), o)
	}
	if err != nil {
		fmt.Println(err)
	}
	// Output:
	// 12:00:00 start
	//   web: move to a: not placed yet: a (preferred #1, load 0)
	//   db: move to b: not placed yet: b (preferred #1, load 0)
	// 12:00:00 down a
	//   web: failover to b: owner a is down: b (preferred #2, load 1)
	// 12:00:00 up a: no change
	//   web: deferred 30s: stays on its owner b: healthy; a would be better (preferred #1, load 0) but has been up only 0s of the stable period 30s
	// 12:00:30 after 30s: deferred decision
	//   web: move to a: a is better (preferred #1, load 0) than b (preferred #2, load 1): failback immediate: a is preferred and up
	// 12:01:00 wait 1m0s: no change
	// 12:01:00 fail db node-local
	//   db: failover to a: failed on b: a (preferred #2, load 1)
	// 12:01:00 move db c: moved from a
	// 12:01:00 down c
	//   db: failover to a: owner c is down: a (preferred #2, load 1)
	// 12:01:00 move db b: refused: b: banned: node-local failure: simulated
}
