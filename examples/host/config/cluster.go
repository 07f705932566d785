package config

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/sftkit/sft/cluster"
	"github.com/sftkit/sft/cluster/detector"
	"github.com/sftkit/sft/policy"
	"github.com/sftkit/sft/resource"
)

// Roles of a cluster node.
const (
	RoleVoter   = "voter"
	RoleWitness = "witness"
)

// Cluster is the optional cluster section: with it, the node runs its
// groups through a cluster.Node (raft, the failure detector, the owner's
// lease) and a group runs on one node of the cluster at a time.
type Cluster struct {
	// Mode is quorum (default: raft, any number of nodes) or peer
	// (two nodes without a quorum, MiniSFT's watch: see peer.go).
	Mode string `yaml:"mode"`
	// Peer holds peer mode's settings (mode peer only).
	Peer PeerSettings `yaml:"peer"`
	// Nodes is the static node list; every node's config lists the same
	// nodes. This node is the one named node.name (or -node at run).
	Nodes []ClusterNode `yaml:"nodes"`
	// Profile names the timing profile: default or fast. Default: default.
	Profile string `yaml:"profile"`
	// Timing overrides fields of the profile; the result must pass
	// cluster.Timing's Validate (L(1+rho) + drop < W(1-rho), ...).
	Timing ClusterTiming `yaml:"timing"`
	// KeyFile holds the shared key (at least 16 bytes) that signs
	// heartbeats and requests to the leader; mode 0600 or stricter.
	// Required.
	KeyFile string `yaml:"key_file"`
	// DataDir holds the raft log and snapshots. Default: none (raft in
	// memory: a node that restarts rejoins empty; tests and demos only).
	DataDir string `yaml:"data_dir"`
	// FenceHook is an argv (no shell) run when a group cannot come online
	// here because its address is held elsewhere (a STONITH agent), with
	// SFT_FENCE_GROUP, SFT_FENCE_EPOCH, SFT_FENCE_SUSPECT and
	// SFT_FENCE_ERROR set. Default: none.
	FenceHook []string `yaml:"fence_hook"`
	// FenceTimeout bounds one fence hook run. Default 30s.
	FenceTimeout Duration `yaml:"fence_timeout" max:"10m"`
}

// ClusterNode is one node of the cluster.
type ClusterNode struct {
	// Name is the node's name (node.name of its config). Required.
	Name string `yaml:"name"`
	// Role: voter (default; votes and hosts groups) or witness (votes
	// and heartbeats, hosts nothing).
	Role string `yaml:"role"`
	// Raft is the node's raft address ip:port (TCP). Required.
	Raft string `yaml:"raft"`
	// Interconnect has one UDP heartbeat address ip:port per
	// interconnect path: 1 or 2, the same number on every node.
	Interconnect []string `yaml:"interconnect"`
}

// ClusterTiming is cluster.Timing as written in YAML; zero fields take
// the profile's value.
type ClusterTiming struct {
	Heartbeat       Duration `yaml:"heartbeat" max:"1s"`
	Window          Duration `yaml:"window" max:"1m"`
	Lease           Duration `yaml:"lease" max:"1m"`
	ClockRate       float64  `yaml:"clock_rate"`
	Drop            Duration `yaml:"drop" max:"1m"`
	RaftHeartbeat   Duration `yaml:"raft_heartbeat" max:"1m"`
	RaftElection    Duration `yaml:"raft_election" max:"1m"`
	RaftLeaderLease Duration `yaml:"raft_leader_lease" max:"1m"`
	RaftCommit      Duration `yaml:"raft_commit" max:"1s"`
}

// DefaultFenceTimeout bounds a fence hook run.
const DefaultFenceTimeout = 30 * time.Second

// Placement is a group's placement in a cluster (policy.Owners,
// anti-affinity, failback).
type Placement struct {
	// Preferred lists nodes in order of preference. Default: none (any
	// possible owner).
	Preferred []string `yaml:"preferred"`
	// Possible limits the group to these nodes. Default: every voter.
	Possible []string `yaml:"possible"`
	// AntiAffinity lists classes: groups sharing one avoid sharing a node
	// when another can host them.
	AntiAffinity []string `yaml:"anti_affinity"`
	// Failback: mode prevent (default), immediate or window (with
	// window_start and window_end, hours 0-23).
	Failback Failback `yaml:"failback"`
	// StablePeriod is how long a node must be up (and the group not have
	// failed there) before the group fails back to it. Default 30s
	// (policy.DefaultStablePeriod).
	StablePeriod Duration `yaml:"stable_period" max:"24h"`
}

// Failback is policy.Failback as written in YAML.
type Failback struct {
	Mode        string `yaml:"mode"`
	WindowStart int    `yaml:"window_start" max:"23"`
	WindowEnd   int    `yaml:"window_end" max:"23"`
}

// ClusterTiming returns the cluster's timing: the profile with the overrides.
func (c Cluster) ClusterTiming() (cluster.Timing, error) {
	t, err := cluster.Profile(c.Profile)
	if err != nil {
		return cluster.Timing{}, err
	}
	o := c.Timing
	return t.Over(cluster.Timing{
		Heartbeat: o.Heartbeat.D(), Window: o.Window.D(), Lease: o.Lease.D(), Drop: o.Drop.D(),
		RaftHeartbeat: o.RaftHeartbeat.D(), RaftElection: o.RaftElection.D(),
		RaftLeaderLease: o.RaftLeaderLease.D(), RaftCommit: o.RaftCommit.D(),
		ClockRate: o.ClockRate,
	}), nil
}

// Specs returns the node list as cluster.NodeSpecs.
func (c Cluster) Specs() []cluster.NodeSpec {
	out := make([]cluster.NodeSpec, 0, len(c.Nodes))
	for _, n := range c.Nodes {
		out = append(out, cluster.NodeSpec{Name: n.Name, Raft: n.Raft, Heartbeat: slices.Clone(n.Interconnect), Witness: n.Role == RoleWitness})
	}
	return out
}

// IsWitness reports whether the named node is a witness.
func (c Cluster) IsWitness(name string) bool {
	i := slices.IndexFunc(c.Nodes, func(n ClusterNode) bool { return n.Name == name })
	return i >= 0 && c.Nodes[i].Role == RoleWitness
}

// ReadKey reads the shared key file (surrounding white space is ignored).
func (c Cluster) ReadKey() ([]byte, error) {
	key, problem := readKey(c.KeyFile)
	if problem != "" {
		return nil, fmt.Errorf("cluster.key_file %q: %s", c.KeyFile, problem)
	}
	return key, nil
}

// readKey reads a key file the way ReadKey does; problem says what is
// wrong with it.
func readKey(path string) (key []byte, problem string) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, unwrapPath(err).Error()
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Sprintf("readable or writable by others (mode %04o): chmod 600 it", fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, unwrapPath(err).Error()
	}
	key = []byte(strings.TrimSpace(string(b)))
	if len(key) < detector.MinKeyLen {
		return nil, fmt.Sprintf("key too short (%d bytes, at least %d)", len(key), detector.MinKeyLen)
	}
	return key, ""
}

// PolicyGroups returns the groups' placement specs, in config order.
func (c Config) PolicyGroups() []policy.Group {
	out := make([]policy.Group, 0, len(c.Groups))
	for _, g := range c.Groups {
		out = append(out, g.PolicyGroup())
	}
	return out
}

// PolicyGroup returns g's placement spec (g validated).
func (g Group) PolicyGroup() policy.Group {
	var mode policy.FailbackMode
	_ = mode.UnmarshalText([]byte(g.Placement.Failback.Mode))
	return policy.Group{
		Name:         g.Name,
		Owners:       policy.Owners{Preferred: slices.Clone(g.Placement.Preferred), Possible: slices.Clone(g.Placement.Possible)},
		AntiAffinity: slices.Clone(g.Placement.AntiAffinity),
		Failover:     g.Failover.PolicyFailover(),
		Failback:     policy.Failback{Mode: mode, WindowStart: g.Placement.Failback.WindowStart, WindowEnd: g.Placement.Failback.WindowEnd},
		StablePeriod: g.Placement.StablePeriod.D(),
	}
}

// cluster validates the cluster section and the groups' placement.
func (v *validator) cluster(c *Config) {
	cl := c.Cluster
	v.peerOnly(c)
	if cl == nil {
		for gi, g := range c.Groups {
			p := g.Placement
			if len(p.Preferred)+len(p.Possible)+len(p.AntiAffinity) > 0 || p.Failback != (Failback{}) || p.StablePeriod != 0 {
				v.add(fmt.Sprintf("groups[%d].placement", gi), nil, "needs a cluster section: a single node places nothing")
			}
		}
		return
	}
	switch cl.Mode {
	case "", ModeQuorum:
	case ModePeer:
		v.peer(c)
		return
	default:
		v.add("cluster.mode", cl.Mode, "want %s or %s", ModeQuorum, ModePeer)
		return
	}
	if cl.Peer != (PeerSettings{}) {
		v.add("cluster.peer", nil, "peer mode only (cluster.mode: peer)")
	}
	if len(cl.Nodes) == 0 {
		v.add("cluster.nodes", nil, "a cluster needs at least one node")
	}
	names := map[string]int{}
	paths := -1
	voters := 0
	for i, n := range cl.Nodes {
		np := fmt.Sprintf("cluster.nodes[%d]", i)
		v.name(np+".name", n.Name, "node", "cluster.nodes", i, names)
		switch n.Role {
		case "", RoleVoter:
			voters++
		case RoleWitness:
		default:
			v.add(np+".role", n.Role, "want %s or %s", RoleVoter, RoleWitness)
		}
		v.ipPort(np+".raft", n.Raft)
		switch len(n.Interconnect) {
		case 1, 2:
		default:
			v.add(np+".interconnect", n.Interconnect, "want 1 or 2 heartbeat addresses (one per interconnect path), got %d", len(n.Interconnect))
		}
		for j, a := range n.Interconnect {
			v.ipPort(fmt.Sprintf("%s.interconnect[%d]", np, j), a)
		}
		if paths >= 0 && len(n.Interconnect) != paths && len(n.Interconnect) > 0 {
			v.add(np+".interconnect", n.Interconnect, "has %d paths, the nodes before have %d: every node needs one address per path", len(n.Interconnect), paths)
		}
		if paths < 0 && len(n.Interconnect) > 0 {
			paths = len(n.Interconnect)
		}
	}
	if len(cl.Nodes) > 0 && voters == 0 {
		v.add("cluster.nodes", nil, "no voter: every node is a witness, nothing could host a group")
	}
	if self := c.NodeName(); len(cl.Nodes) > 0 {
		if _, ok := names[self]; !ok {
			v.add("node.name", self, "is not one of cluster.nodes (set node.name, or -node at run)")
		}
	}
	switch cl.Profile {
	case "":
	default:
		if _, err := cluster.Profile(cl.Profile); err != nil {
			v.add("cluster.profile", cl.Profile, "unknown timing profile (want %s)", strings.Join(cluster.Profiles(), " or "))
		}
	}
	if t, err := cl.ClusterTiming(); err == nil {
		for _, e := range flatten(t.Validate()) {
			var re *resource.Error
			if errors.As(e, &re) && re.Field != "" {
				if _, known := timingFields[re.Field]; known {
					v.add("cluster.timing."+re.Field, valueOf(re.Value), "%v", re.Err)
					continue
				}
			}
			v.add("cluster.timing", nil, "%v", e)
		}
	}
	v.keyFile(cl.KeyFile, "the shared key that signs heartbeats and requests")
	if cl.DataDir != "" && !filepath.IsAbs(cl.DataDir) {
		v.add("cluster.data_dir", cl.DataDir, "must be an absolute path")
	}
	if len(cl.FenceHook) > 0 && !filepath.IsAbs(cl.FenceHook[0]) {
		v.add("cluster.fence_hook[0]", cl.FenceHook[0], "must be an absolute path (no shell, no PATH lookup)")
	}
	v.nonNegative("cluster.fence_timeout", cl.FenceTimeout)
	for gi, g := range c.Groups {
		gp := fmt.Sprintf("groups[%d].placement", gi)
		pg := g.PolicyGroup()
		v.policyErrs(gp, pg.Owners.Validate())
		for _, list := range []struct {
			field string
			names []string
		}{{"preferred", g.Placement.Preferred}, {"possible", g.Placement.Possible}} {
			for i, n := range list.names {
				if _, ok := names[n]; !ok && n != "" {
					v.add(fmt.Sprintf("%s.%s[%d]", gp, list.field, i), n, "is not one of cluster.nodes")
				} else if cl.IsWitness(n) {
					v.add(fmt.Sprintf("%s.%s[%d]", gp, list.field, i), n, "is a witness: it hosts nothing")
				}
			}
		}
		for i, a := range g.Placement.AntiAffinity {
			if !nameRE.MatchString(a) {
				v.add(fmt.Sprintf("%s.anti_affinity[%d]", gp, i), a, nameRule)
			}
		}
		v.nonNegative(gp+".stable_period", g.Placement.StablePeriod)
		v.failback(gp, g)
	}
}

// keyFile checks cluster.key_file; what says what the key is for.
func (v *validator) keyFile(path, what string) {
	switch {
	case path == "":
		v.add("cluster.key_file", nil, "required: %s", what)
	case !filepath.IsAbs(path):
		v.add("cluster.key_file", path, "must be an absolute path")
	default:
		if _, problem := readKey(path); problem != "" {
			v.machine("cluster.key_file", path, "%s", problem)
		}
	}
}

// failback checks g's placement.failback; gp is the placement's path.
func (v *validator) failback(gp string, g Group) {
	var mode policy.FailbackMode
	if err := mode.UnmarshalText([]byte(g.Placement.Failback.Mode)); err != nil {
		v.add(gp+".failback.mode", g.Placement.Failback.Mode, "want prevent, immediate or window")
		return
	}
	v.policyErrs(gp+".failback", g.PolicyGroup().Failback.Validate())
}

// timingFields are the yaml names of ClusterTiming (the field names
// cluster.Timing.Validate reports).
var timingFields = map[string]struct{}{
	"heartbeat": {}, "window": {}, "lease": {}, "clock_rate": {}, "drop": {},
	"raft_heartbeat": {}, "raft_election": {}, "raft_leader_lease": {}, "raft_commit": {},
}

// ipPort checks an ip:port address with a non-zero port.
func (v *validator) ipPort(path, addr string) {
	ap, err := netip.ParseAddrPort(addr)
	switch {
	case addr == "":
		v.add(path, nil, "required (ip:port)")
	case err != nil:
		v.add(path, addr, "want ip:port")
	case ap.Port() == 0:
		v.add(path, addr, "port 0: every node must know the others' ports")
	}
}
