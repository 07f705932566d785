// Package hbsim runs detector cores on a simulated network and clock, for
// tests that break the network on purpose: partitions, loss in one
// direction, clocks that run fast or slow, frozen nodes. Global time
// advances in steps; each node sees its own clock.
package hbsim

import (
	"fmt"
	"time"

	"github.com/sftkit/sft/cluster/detector"
)

// Epoch is the simulation's global time zero.
var Epoch = time.Date(2026, time.March, 4, 12, 0, 0, 0, time.UTC)

// Node is one simulated node.
type Node struct {
	Name string
	D    *detector.Detector
	// Rate is the speed of the node's clock against global time (1 +
	// drift): 1.001 runs fast, 0.999 slow.
	Rate float64
	// Frozen: the node does nothing (no checks, no heartbeats, no reads);
	// datagrams to it wait in its socket buffer.
	Frozen bool
	// Events it reported, with the global time of each.
	Events []Stamped
	inbox  []delivery
}

// Stamped is an event with the global time it happened at.
type Stamped struct {
	Global time.Time
	detector.Event
}

type delivery struct {
	at   time.Time // global
	path int
	msg  detector.Heartbeat
}

// Local is the node's clock reading at global time g.
func (n *Node) Local(g time.Time) time.Time {
	return Epoch.Add(time.Duration(float64(g.Sub(Epoch)) * n.Rate))
}

// Global is the global time at which the node's clock shows local.
func (n *Node) Global(local time.Time) time.Time {
	return Epoch.Add(time.Duration(float64(local.Sub(Epoch)) / n.Rate))
}

// Net is the simulated network.
type Net struct {
	Now   time.Time // global
	Nodes []*Node
	// Delay is the one-way latency of every datagram.
	Delay time.Duration
	// Drop decides whether a datagram is lost (nil: none is).
	Drop func(from, to string, path int) bool
	// OnStep runs after every step (an invariant checker).
	OnStep func()
	last   map[string]time.Time // node -> global time of its last round
}

// New builds a fully meshed network of nodes with cfg (Self set per node),
// each node's clock at rate 1.
func New(cfg detector.Config, names ...string) (*Net, error) {
	n := &Net{Now: Epoch, Delay: 200 * time.Microsecond, last: map[string]time.Time{}}
	for i, name := range names {
		c := cfg
		c.Self = name
		d, err := detector.New(c, uint64(i+1))
		if err != nil {
			return nil, err
		}
		for _, peer := range names {
			if peer != name {
				if err := d.AddPeer(peer, Epoch); err != nil {
					return nil, err
				}
			}
		}
		n.Nodes = append(n.Nodes, &Node{Name: name, D: d, Rate: 1})
	}
	return n, nil
}

// Node returns the named node.
func (n *Net) Node(name string) *Node {
	for _, x := range n.Nodes {
		if x.Name == name {
			return x
		}
	}
	panic(fmt.Sprintf("hbsim: no node %q", name))
}

// Step advances global time by dt: every node that is not frozen reads
// the datagrams that have arrived, checks, and (when its Interval has
// passed on its clock) sends a round, like detector.UDP.
func (n *Net) Step(dt time.Duration) {
	n.Now = n.Now.Add(dt)
	for _, x := range n.Nodes {
		if x.Frozen {
			continue
		}
		local := x.Local(n.Now)
		// A node that ran again checks before it reads or sends: see
		// detector.UDP.round.
		n.record(x, x.D.Check(local))
		var keep []delivery
		for _, d := range x.inbox {
			if d.at.After(n.Now) {
				keep = append(keep, d)
				continue
			}
			_ = x.D.Receive(local, d.path, d.msg) // repeats are rejected, as on the wire
		}
		x.inbox = keep
		n.record(x, x.D.Check(local))
		if last, ok := n.last[x.Name]; ok && x.Local(n.Now).Sub(x.Local(last)) < x.D.Config().Interval {
			continue
		}
		n.last[x.Name] = n.Now
		for _, o := range x.D.Tick(local) {
			if n.Drop != nil && n.Drop(x.Name, o.Msg.To, o.Path) {
				continue
			}
			to := n.Node(o.Msg.To)
			to.inbox = append(to.inbox, delivery{at: n.Now.Add(n.Delay), path: o.Path, msg: o.Msg})
		}
	}
	if n.OnStep != nil {
		n.OnStep()
	}
}

// Run steps by dt until d has passed.
func (n *Net) Run(d, dt time.Duration) {
	for end := n.Now.Add(d); n.Now.Before(end); {
		n.Step(dt)
	}
}

func (n *Net) record(x *Node, evs []detector.Event) {
	for _, e := range evs {
		x.Events = append(x.Events, Stamped{Global: n.Now, Event: e})
	}
}

// First returns the first event of kind about node (any node for "")
// that x reported, and whether there was one.
func (x *Node) First(kind detector.EventKind, node string) (Stamped, bool) {
	for _, e := range x.Events {
		if e.Kind == kind && (node == "" || e.Node == node) {
			return e, true
		}
	}
	return Stamped{}, false
}

// Count counts x's events of kind.
func (x *Node) Count(kind detector.EventKind) int {
	c := 0
	for _, e := range x.Events {
		if e.Kind == kind {
			c++
		}
	}
	return c
}
