package policy

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sftkit/sft/resource"
)

// DefaultStablePeriod is how long a node must have been up before a group
// fails back (or rebalances) onto it: long enough that a node flapping up
// and down does not drag groups with it, short against the hours a
// failback window spans. WSFC has no such knob (it fails back at once);
// keepalived's preempt_delay (default 0) is the nearest.
const DefaultStablePeriod = 30 * time.Second

// NodeState is a node's state as the placement sees it.
type NodeState int

const (
	// NodeUp: the node may host groups.
	NodeUp NodeState = iota
	// NodeDown: declared dead (or not yet joined); hosts nothing.
	NodeDown
	// NodeMaintenance: paused by a person; its groups move away and
	// nothing new is placed there.
	NodeMaintenance
	// NodeWitness: votes and heartbeats, hosts nothing, ever.
	NodeWitness
)

var nodeStateNames = map[NodeState]string{
	NodeUp:          "up",
	NodeDown:        "down",
	NodeMaintenance: "maintenance",
	NodeWitness:     "witness",
}

func (s NodeState) String() string {
	if n, ok := nodeStateNames[s]; ok {
		return n
	}
	return fmt.Sprintf("NodeState(%d)", int(s))
}

// MarshalText implements encoding.TextMarshaler.
func (s NodeState) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *NodeState) UnmarshalText(b []byte) error {
	for k, v := range nodeStateNames {
		if v == string(b) {
			*s = k
			return nil
		}
	}
	return errField("state", string(b), "unknown node state (want up, down, maintenance or witness)")
}

// Node is one node as the placement sees it.
type Node struct {
	Name  string
	State NodeState
	// Load is weight on the node from outside the groups being placed
	// (default 0). The placement adds one per group the node owns.
	Load int
	// HealthySince is when the node last came up. A group fails back to
	// the node only if it came up after the group came to its owner, and
	// has been up for the group's StablePeriod since. The zero time means
	// "up for as long as anyone knows".
	HealthySince time.Time
}

// Ban keeps a group off a node: a node-local failure there bans that node,
// a configuration failure (Node "") bans every node, until a person clears
// it.
type Ban struct {
	// Node is the banned node; "" bans every node.
	Node string
	// Reason says why, as shown in the node's placement reason.
	Reason string
}

// Group is one group as the placement sees it: its policy and its state.
type Group struct {
	Name   string
	Owners Owners
	// AntiAffinity lists class names (WSFC's AntiAffinityClassNames): two
	// groups that share a class avoid one node when another can host them.
	AntiAffinity []string
	Failover     Failover
	Failback     Failback
	// StablePeriod: see DefaultStablePeriod (the default).
	StablePeriod time.Duration

	// Owner is the node the group is on ("" when it is on none).
	Owner string
	// Since is when the group came to Owner. It fails back (or rebalances)
	// only to a node that came up after that: failback follows a node's
	// return, so it does not undo a failover or a manual move to a node
	// that was up all along.
	Since time.Time
	// Failed: the group failed on Owner and gave up restarting there
	// (restart threshold reached, or a node-local failure): it must fail
	// over to another node. Failed with no Owner: it was left offline
	// (failover threshold reached, nowhere to go) until a person clears
	// it.
	Failed bool
	// Bans keep the group off nodes.
	Bans []Ban
	// Failovers are the times of its earlier failovers, for
	// Failover.Threshold within Failover.Period.
	Failovers History
	// LastFailure says when the group last failed on each node. A group
	// fails back to a node only StablePeriod after its last failure there,
	// so failback does not undo a failover at once.
	LastFailure map[string]time.Time
}

// WithDefaults returns g with StablePeriod set if zero.
func (g Group) WithDefaults() Group {
	if g.StablePeriod == 0 {
		g.StablePeriod = DefaultStablePeriod
	}
	return g
}

// Validate checks g's policy (not its state).
func (g Group) Validate() error {
	var errs []error
	if g.Name == "" {
		errs = append(errs, errField("name", g.Name, "empty group name"))
	}
	errs = append(errs, resource.PrefixFields("owners", g.Owners.Validate()),
		resource.PrefixFields("failover", g.Failover.Validate()),
		resource.PrefixFields("failback", g.Failback.Validate()))
	for i, c := range g.AntiAffinity {
		if c == "" {
			errs = append(errs, errField(fmt.Sprintf("anti_affinity[%d]", i), c, "empty class name"))
		}
	}
	if g.StablePeriod < 0 {
		errs = append(errs, errField("stable_period", g.StablePeriod, "must not be negative"))
	}
	return errors.Join(errs...)
}

// Cluster is the input of a placement: the time, the nodes and every
// group with its state. It is a plain value; Place and PlaceAll never
// modify it.
type Cluster struct {
	Now    time.Time
	Nodes  []Node
	Groups []Group
}

// Validate checks the nodes (names non-empty and unique, states known,
// loads not negative) and every group's policy (names unique).
func (c Cluster) Validate() error {
	var errs []error
	seen := map[string]bool{}
	for i, n := range c.Nodes {
		f := fmt.Sprintf("nodes[%d]", i)
		switch {
		case n.Name == "":
			errs = append(errs, errField(f+".name", n.Name, "empty node name"))
		case seen[n.Name]:
			errs = append(errs, errField(f+".name", n.Name, "listed twice"))
		}
		seen[n.Name] = true
		if _, ok := nodeStateNames[n.State]; !ok {
			errs = append(errs, errField(f+".state", int(n.State), "unknown node state"))
		}
		if n.Load < 0 {
			errs = append(errs, errField(f+".load", n.Load, "must not be negative"))
		}
	}
	groups := map[string]bool{}
	for i, g := range c.Groups {
		errs = append(errs, resource.PrefixFields(fmt.Sprintf("groups[%d]", i), g.Validate()))
		if g.Name != "" && groups[g.Name] {
			errs = append(errs, errField(fmt.Sprintf("groups[%d].name", i), g.Name, "listed twice"))
		}
		groups[g.Name] = true
	}
	return errors.Join(errs...)
}

// NodeReason is the placement's view of one node for one group: whether
// the group may go there, and why (or why not).
type NodeReason struct {
	Node string
	// Eligible: the group may run there.
	Eligible bool
	// Reason, for example "not a possible owner", "down", or
	// "preferred #1, load 2".
	Reason string
}

func (r NodeReason) String() string { return r.Node + ": " + r.Reason }

// Placement is where one group should run, and why, with the verdict on
// every node (Nomad's AllocMetric in small). Action is
//   - ActionNone: stay on Owner (Node is Owner; Delay > 0: ask again then,
//     a failback is pending);
//   - ActionMove: move to Node, not counted as a failover (first placement,
//     failback, rebalance, drain, owner no longer allowed);
//   - ActionFailover: move to Node because the group failed or its owner
//     was lost; counts towards Failover.Threshold;
//   - ActionStayFailed: run nowhere; Reason says why.
type Placement struct {
	Decision
	Group string
	// Throttled: ActionStayFailed because the failover threshold was
	// reached (the group stays offline until a person clears it), not
	// because no node can host it now.
	Throttled bool
	Nodes     []NodeReason
}

// Explain is the decision followed by one line per node.
func (p Placement) Explain() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s", p.Group, p.Decision)
	for _, r := range p.Nodes {
		b.WriteString("\n  " + r.String())
	}
	return b.String()
}

// Place decides where the named group runs, given where the other groups
// are now. It is an error only when there is no such group.
func (c Cluster) Place(group string) (Placement, error) {
	i := slices.IndexFunc(c.Groups, func(g Group) bool { return g.Name == group })
	if i < 0 {
		return Placement{}, errField("group", group, "no such group")
	}
	return c.place(i, c.occupancy()), nil
}

// PlaceAll places every group in order (the order is the priority: an
// earlier group gets the better node), each seeing the decisions made for
// the groups before it. The result is in the order of c.Groups.
func (c Cluster) PlaceAll() []Placement {
	work := c
	work.Groups = slices.Clone(c.Groups)
	occ := work.occupancy()
	out := make([]Placement, len(c.Groups))
	for i := range work.Groups {
		p := work.place(i, occ)
		out[i] = p
		g := &work.Groups[i]
		switch p.Action {
		case ActionMove, ActionFailover:
			occ.move(i, g.Owner, p.Node)
			g.Owner, g.Failed = p.Node, false
		case ActionStayFailed:
			occ.move(i, g.Owner, "")
			g.Owner = ""
		}
	}
	return out
}

// occupancy lists, per node, the groups it owns (indexes into
// Cluster.Groups, ascending), so a pass over many groups does not scan
// them all for every node.
type occupancy map[string][]int

func (c Cluster) occupancy() occupancy {
	o := occupancy{}
	for i, g := range c.Groups {
		if g.Owner != "" {
			o[g.Owner] = append(o[g.Owner], i)
		}
	}
	return o
}

func (o occupancy) move(i int, from, to string) {
	if j, ok := slices.BinarySearch(o[from], i); ok {
		o[from] = slices.Delete(o[from], j, j+1)
	}
	if to != "" {
		j, _ := slices.BinarySearch(o[to], i)
		o[to] = slices.Insert(o[to], j, i)
	}
}

// maxConflictNames bounds the groups a node's reason names for
// anti-affinity; the rest are counted.
const maxConflictNames = 3

// candidate is an eligible node with its ranking key.
type candidate struct {
	node      Node
	index     int      // position in Cluster.Nodes: the last tie-breaker
	conflicts int      // groups of a shared anti-affinity class on the node
	names     []string // the first maxConflictNames of them, "g (class c)"
	pref      int      // position among the preferred owners; len(Preferred) for the others
	rank      int      // pref, rotated to start after the owner when the group failed there
	load      int      // Node.Load plus the other groups it owns
}

// better reports whether a ranks strictly before b: fewer groups of a
// shared anti-affinity class, then preference, then load (not on the node
// order).
func (a candidate) better(b candidate) bool {
	if a.conflicts != b.conflicts {
		return a.conflicts < b.conflicts
	}
	if a.rank != b.rank {
		return a.rank < b.rank
	}
	return a.load < b.load
}

func (a candidate) compare(b candidate) int {
	switch {
	case a.better(b):
		return -1
	case b.better(a):
		return 1
	}
	return cmp.Compare(a.index, b.index)
}

func (a candidate) describe(g Group) string {
	var s string
	if a.pref < len(g.Owners.Preferred) {
		s = fmt.Sprintf("preferred #%d, load %d", a.pref+1, a.load)
	} else {
		s = fmt.Sprintf("possible owner, load %d", a.load)
	}
	if a.conflicts > 0 {
		s += ", anti-affinity with " + strings.Join(a.names, ", ")
		if more := a.conflicts - len(a.names); more > 0 {
			s += fmt.Sprintf(" and %d more", more)
		}
	}
	return s
}

// place decides for c.Groups[gi].
func (c Cluster) place(gi int, occ occupancy) Placement {
	g := c.Groups[gi].WithDefaults()
	p := Placement{Group: g.Name, Nodes: make([]NodeReason, 0, len(c.Nodes))}
	var cands []candidate
	var owner candidate
	owned := false
	ownerState := "not a member of the cluster" // why the owner may not keep it
	for i, n := range c.Nodes {
		why := c.exclude(g, n)
		if n.Name == g.Owner {
			ownerState = why
			if why == "" && g.Failed {
				why = "the group failed here"
			}
		}
		if why != "" {
			p.Nodes = append(p.Nodes, NodeReason{Node: n.Name, Reason: why})
			continue
		}
		cd := c.candidate(gi, g, i, occ)
		p.Nodes = append(p.Nodes, NodeReason{Node: n.Name, Eligible: true, Reason: cd.describe(g)})
		cands = append(cands, cd)
		if n.Name == g.Owner {
			owner, owned = cd, true
		}
	}
	slices.SortFunc(cands, candidate.compare)
	if owned {
		p.Decision = c.stay(g, owner, cands)
	} else {
		p.Decision, p.Throttled = c.move(g, ownerState, cands)
	}
	return p
}

const (
	reasonDown        = "down"
	reasonMaintenance = "in maintenance"
)

// exclude says why n may not host g, or "" when it may.
func (c Cluster) exclude(g Group, n Node) string {
	switch {
	case n.State == NodeWitness:
		return "witness: hosts nothing"
	case n.State == NodeDown:
		return reasonDown
	case n.State == NodeMaintenance:
		return reasonMaintenance
	case n.State != NodeUp:
		return n.State.String() + ": hosts nothing"
	case !g.Owners.CanOwn(n.Name):
		return "not a possible owner"
	}
	for _, b := range g.Bans {
		if b.Node == "" {
			return "banned on every node: " + b.Reason
		}
		if b.Node == n.Name {
			return "banned: " + b.Reason
		}
	}
	return ""
}

func (c Cluster) candidate(gi int, g Group, ni int, occ occupancy) candidate {
	n := c.Nodes[ni]
	cd := candidate{node: n, index: ni, load: n.Load, pref: preference(g, n.Name)}
	cd.rank = cd.pref
	if g.Failed {
		// The next node after the owner in order of preference comes
		// first (the non-preferred owners count as one slot after the
		// preferred ones), so that a group failing everywhere visits
		// every node in turn, as Owners.Next does.
		slots := len(g.Owners.Preferred) + 1
		cd.rank = ((cd.pref-preference(g, g.Owner)-1)%slots + slots) % slots
	}
	for _, j := range occ[n.Name] {
		if j == gi {
			continue
		}
		cd.load++
		o := c.Groups[j]
		for _, class := range o.AntiAffinity {
			if slices.Contains(g.AntiAffinity, class) {
				if cd.conflicts < maxConflictNames {
					cd.names = append(cd.names, fmt.Sprintf("%s (class %s)", o.Name, class))
				}
				cd.conflicts++
				break
			}
		}
	}
	return cd
}

// preference is node's position among g's preferred owners, or
// len(Preferred) when it is not one.
func preference(g Group, node string) int {
	if r := slices.Index(g.Owners.Preferred, node); r >= 0 {
		return r
	}
	return len(g.Owners.Preferred)
}

// stay decides for a group whose owner may keep it: stay, unless a better
// node has been up for the stable period and the failback policy lets the
// group move there now.
func (c Cluster) stay(g Group, owner candidate, cands []candidate) Decision {
	stay := Decision{Action: ActionNone, Node: owner.node.Name, Reason: "stays on its owner " + owner.node.Name + ": healthy"}
	best := cands[0]
	if !best.better(owner) {
		return stay
	}
	if best.node.HealthySince.Before(g.Since) {
		stay.Reason += fmt.Sprintf("; %s would be better (%s) but was up when the group came here (failback follows a node's return)",
			best.node.Name, best.describe(g))
		return stay
	}
	if since := best.node.HealthySince; c.Now.Sub(since) < g.StablePeriod {
		stay.Delay = since.Add(g.StablePeriod).Sub(c.Now)
		stay.Reason += fmt.Sprintf("; %s would be better (%s) but has been up only %s of the stable period %s",
			best.node.Name, best.describe(g), c.Now.Sub(since), g.StablePeriod)
		return stay
	}
	if at, ok := g.LastFailure[best.node.Name]; ok && c.Now.Sub(at) < g.StablePeriod {
		stay.Delay = at.Add(g.StablePeriod).Sub(c.Now)
		stay.Reason += fmt.Sprintf("; %s would be better (%s) but the group failed there %s ago (stable period %s)",
			best.node.Name, best.describe(g), c.Now.Sub(at), g.StablePeriod)
		return stay
	}
	fb := g.Failback.Decide(c.Now, owner.node.Name, best.node.Name)
	why := fmt.Sprintf("%s is better (%s) than %s (%s)", best.node.Name, best.describe(g), owner.node.Name, owner.describe(g))
	if fb.Action != ActionMove {
		stay.Delay = fb.Delay
		stay.Reason += "; " + why + ", but " + fb.Reason
		return stay
	}
	return Decision{Action: ActionMove, Node: best.node.Name, Reason: why + ": " + fb.Reason}
}

// move decides for a group that must leave its owner (or has none), and
// says whether the failover threshold stopped it.
func (c Cluster) move(g Group, ownerState string, cands []candidate) (Decision, bool) {
	var counted bool // a failover, counted against the threshold
	var why string
	switch {
	case g.Failed && g.Owner == "":
		return Decision{Action: ActionStayFailed, Reason: "failed: it stays offline until a person clears it"}, false
	case g.Failed:
		counted, why = true, "failed on "+g.Owner
	case g.Owner == "":
		why = "not placed yet"
	case ownerState == reasonDown || ownerState == "not a member of the cluster":
		counted, why = true, "owner "+g.Owner+" is "+ownerState
	default:
		why = "owner " + g.Owner + " may not keep it: " + ownerState
	}
	if len(cands) == 0 {
		if ownerState == reasonMaintenance && !g.Failed {
			return Decision{Action: ActionNone, Node: g.Owner,
				Reason: why + ", but no other node can host it: it stays until one can"}, false
		}
		return Decision{Action: ActionStayFailed, Reason: why + "; no node can host it"}, false
	}
	if counted {
		hosts := 0
		for _, n := range c.Nodes {
			if n.State != NodeWitness {
				hosts++
			}
		}
		if d := g.Failover.Decide(c.Now, g.Failovers, hosts); d.Action != ActionFailover {
			return Decision{Action: ActionStayFailed, Reason: why + "; " + d.Reason + ": it stays offline"}, true
		}
	}
	target := cands[0]
	if g.Failed && slices.ContainsFunc(cands, func(cd candidate) bool { return cd.conflicts == target.conflicts && cd.pref < target.pref }) {
		// A more preferred node was passed over for the rotation: say so.
		why += "; next after " + g.Owner + " in order of preference"
	}
	d := Decision{Action: ActionMove, Node: target.node.Name, Reason: why + ": " + target.node.Name + " (" + target.describe(g) + ")"}
	if counted {
		d.Action = ActionFailover
	}
	return d, false
}
