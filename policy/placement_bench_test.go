package policy_test

import (
	"fmt"
	"testing"

	"github.com/sftkit/sft/policy"
)

// BenchmarkPlaceAll places 1,000 groups (two anti-affinity classes, half
// with preferred owners) over 10 nodes, one node down: a leader's pass
// after a node loss.
func BenchmarkPlaceAll(b *testing.B) {
	var nodes []policy.Node
	for i := range 10 {
		nodes = append(nodes, policy.Node{Name: fmt.Sprintf("n%d", i)})
	}
	nodes[0].State = policy.NodeDown
	var groups []policy.Group
	for i := range 1000 {
		g := policy.Group{Name: fmt.Sprintf("g%d", i), Owner: nodes[i%10].Name, AntiAffinity: []string{fmt.Sprintf("c%d", i%2)}}
		if i%2 == 0 {
			g.Owners.Preferred = []string{nodes[i%10].Name, nodes[(i+1)%10].Name}
		}
		groups = append(groups, g)
	}
	c := policy.Cluster{Now: t0, Nodes: nodes, Groups: groups}
	b.ReportAllocs()
	for b.Loop() {
		if ps := c.PlaceAll(); len(ps) != len(groups) {
			b.Fatal(len(ps))
		}
	}
}
