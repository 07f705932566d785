package config

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/sftkit/sft/cluster/peer"
	"github.com/sftkit/sft/internal/health"
	"github.com/sftkit/sft/resource"
)

// Cluster modes (cluster.mode).
const (
	// ModeQuorum (the default): raft, the failure detector and leases
	// (package cluster), any number of nodes.
	ModeQuorum = "quorum"
	// ModePeer: MiniSFT's two-node watch without a quorum (package
	// cluster/peer): each node pings the service addresses of the groups
	// the other serves and takes a group over when its holder is dead.
	ModePeer = "peer"
)

// IsPeer reports whether the cluster section runs peer mode.
func (c *Cluster) IsPeer() bool { return c != nil && c.Mode == ModePeer }

// PeerSettings is cluster.peer: peer mode's node-wide settings.
type PeerSettings struct {
	// Reference is an address (the gateway) that must answer a ping
	// before this node takes a group over: a node that cannot reach it
	// is the isolated one and takes nothing. Default: none.
	Reference string `yaml:"reference"`
	// Detect is how a holder is judged dead (peer.Detect); zero fields
	// take its defaults (10ms x 24).
	Detect PeerDetect `yaml:"detect"`
	// Grace is how long a watcher that never saw a reply waits before it
	// may judge the holder dead (both nodes starting). Default 2s.
	Grace Duration `yaml:"grace" max:"10m"`
	// RetryAfter is the pause before a watcher tries again after a
	// takeover it did not do. Default 1s.
	RetryAfter Duration `yaml:"retry_after" max:"10m"`
}

// PeerDetect is peer.Detect as written in YAML.
type PeerDetect struct {
	Interval        Duration `yaml:"interval" max:"1m"`
	Misses          int      `yaml:"misses" max:"1000"`
	SurviveLoss     float64  `yaml:"survive_loss"`
	MaxFalsePerYear float64  `yaml:"max_false_per_year"`
	ReferenceWait   Duration `yaml:"reference_wait" max:"1m"`
}

// PeerGroup is a group's peer-mode settings (groups[].peer).
type PeerGroup struct {
	// Address is the service address the peer pings. Default: the
	// address of the group's ipaddress resource.
	Address string `yaml:"address"`
	// Check is the functional check (IsAlive) of the service, run by the
	// node that does not hold the group: exactly one of tcp, http,
	// command. Default: none (the ping alone decides).
	Check PeerCheck `yaml:"check"`
	// CheckBody, with an HTTP check, is text the body must contain.
	CheckBody string `yaml:"check_body"`
	// ServiceFailures: functional checks failed in a row, while the
	// address answers pings, before the service counts as dead (an
	// alert). Default 3.
	ServiceFailures int `yaml:"service_failures" max:"100"`
	// Release: when the service is dead but the address answers, ask the
	// holder's sft to release the group (it checks the service itself
	// and agrees only if it fails there too). Default false.
	Release bool `yaml:"release"`
	// NoTakeover: only watch and alert. Default false.
	NoTakeover bool `yaml:"no_takeover"`
}

// PeerCheck is a health.Config as written in YAML.
type PeerCheck struct {
	TCP          string   `yaml:"tcp"`
	HTTP         string   `yaml:"http"`
	ExpectStatus int      `yaml:"expect_status" max:"599"`
	Command      []string `yaml:"command"`
	Interval     Duration `yaml:"interval" max:"1h"`
	Timeout      Duration `yaml:"timeout" max:"1h"`
}

func (c PeerCheck) health() health.Config {
	return health.Config{TCP: c.TCP, HTTP: c.HTTP, ExpectStatus: c.ExpectStatus, Command: c.Command,
		Interval: resource.Duration(c.Interval), Timeout: resource.Duration(c.Timeout)}
}

// PeerConfig returns node self's peer.Config (c validated, in peer mode;
// key read by the caller).
func (c Config) PeerConfig(self string, key []byte) peer.Config {
	cl := c.Cluster
	pc := peer.Config{Node: self, Key: key}
	for _, n := range cl.Nodes {
		ap, _ := netip.ParseAddrPort(first(n.Interconnect))
		if n.Name == self {
			pc.Listen = ap
		} else {
			pc.Peer, pc.PeerAddr = n.Name, ap
		}
	}
	ps := cl.Peer
	if ps.Reference != "" {
		pc.Reference, _ = netip.ParseAddr(ps.Reference)
	}
	d := ps.Detect
	pc.Detect = peer.Detect{Interval: d.Interval.D(), Misses: d.Misses, SurviveLoss: d.SurviveLoss,
		MaxFalsePerYear: d.MaxFalsePerYear, ReferenceWait: d.ReferenceWait.D()}
	for _, g := range c.Groups {
		pc.Groups = append(pc.Groups, g.peerGroup())
	}
	return pc
}

// peerGroup is g as peer mode sees it (g validated).
func (g Group) peerGroup() peer.Group {
	pg := g.PolicyGroup()
	out := peer.Group{Name: g.Name, Failback: pg.Failback, StablePeriod: pg.StablePeriod}
	out.Address, _ = g.PeerAddress()
	if len(pg.Owners.Preferred) > 0 {
		out.Home = pg.Owners.Preferred[0]
	}
	if p := g.Peer; p != nil {
		out.Check, out.CheckBody, out.ServiceFailures = p.Check.health(), p.CheckBody, p.ServiceFailures
		out.Release, out.NoTakeover = p.Release, p.NoTakeover
	}
	return out
}

// PeerAddress is the group's service address in peer mode: peer.address,
// else the address property of its ipaddress resource. source names
// where it came from (for errors).
func (g Group) PeerAddress() (addr netip.Addr, source string) {
	if g.Peer != nil && g.Peer.Address != "" {
		a, _ := netip.ParseAddr(g.Peer.Address)
		return a, "peer.address"
	}
	for i, r := range g.Resources {
		if r.Type != "ipaddress" {
			continue
		}
		s, _ := r.Properties["address"].(string)
		if p, err := netip.ParsePrefix(s); err == nil {
			return p.Addr(), fmt.Sprintf("resources[%d].properties.address", i)
		}
		a, _ := netip.ParseAddr(s)
		return a, fmt.Sprintf("resources[%d].properties.address", i)
	}
	return netip.Addr{}, ""
}

// PeerDefaults are the defaults of peer mode as the host applies them.
const (
	DefaultPeerGrace      = 2 * time.Second
	DefaultPeerRetryAfter = time.Second
)

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

// peer validates a peer-mode cluster section and the groups' peer
// settings (instead of the quorum checks).
func (v *validator) peer(c *Config) {
	cl := c.Cluster
	if len(cl.Nodes) != 2 {
		v.add("cluster.nodes", len(cl.Nodes), "peer mode needs exactly two nodes")
	}
	names := map[string]int{}
	for i, n := range cl.Nodes {
		np := fmt.Sprintf("cluster.nodes[%d]", i)
		v.name(np+".name", n.Name, "node", "cluster.nodes", i, names)
		if n.Role != "" && n.Role != RoleVoter {
			v.add(np+".role", n.Role, "peer mode has no witness: leave role out")
		}
		if n.Raft != "" {
			v.add(np+".raft", n.Raft, "peer mode runs no raft: leave raft out")
		}
		if len(n.Interconnect) != 1 {
			v.add(np+".interconnect", n.Interconnect, "peer mode wants one ip:port (TCP, the node's own address) for release and move requests, got %d", len(n.Interconnect))
			continue
		}
		ip := np + ".interconnect[0]"
		v.ipPort(ip, n.Interconnect[0])
		if ap, err := netip.ParseAddrPort(n.Interconnect[0]); err == nil && ap.Addr().IsUnspecified() {
			v.add(ip, n.Interconnect[0], "must be the node's own address (the peer connects to it), not unspecified")
		}
	}
	if self := c.NodeName(); len(cl.Nodes) > 0 {
		if _, ok := names[self]; !ok {
			v.add("node.name", self, "is not one of cluster.nodes (set node.name, or -node at run)")
		}
	}
	if cl.Profile != "" && cl.Profile != "default" {
		v.add("cluster.profile", cl.Profile, "quorum mode only: peer mode's timing is cluster.peer.detect")
	}
	if cl.Timing != (ClusterTiming{}) {
		v.add("cluster.timing", nil, "quorum mode only: peer mode's timing is cluster.peer.detect")
	}
	if cl.DataDir != "" {
		v.add("cluster.data_dir", cl.DataDir, "quorum mode only: peer mode keeps no log")
	}
	if len(cl.FenceHook) > 0 {
		v.add("cluster.fence_hook", cl.FenceHook, "quorum mode only: peer mode never steals an address, it alerts")
	}
	v.keyFile(cl.KeyFile, "the shared key that authenticates release and move requests")
	ps := cl.Peer
	if ps.Reference != "" {
		if a, err := netip.ParseAddr(ps.Reference); err != nil || a.IsUnspecified() {
			v.add("cluster.peer.reference", ps.Reference, "want an IP address (the gateway)")
		}
	}
	v.nonNegative("cluster.peer.grace", ps.Grace)
	v.nonNegative("cluster.peer.retry_after", ps.RetryAfter)
	d := ps.Detect
	if d.Interval < 0 || d.ReferenceWait < 0 || d.Misses < 0 || d.SurviveLoss < 0 || d.MaxFalsePerYear < 0 {
		v.add("cluster.peer.detect", nil, "no field may be negative (0: the default)")
	} else {
		pd := peer.Detect{Interval: d.Interval.D(), Misses: d.Misses, SurviveLoss: d.SurviveLoss, MaxFalsePerYear: d.MaxFalsePerYear, ReferenceWait: d.ReferenceWait.D()}
		v.policyErrs("cluster.peer", pd.Validate())
	}
	addrs := map[netip.Addr]string{}
	for gi, g := range c.Groups {
		gp := fmt.Sprintf("groups[%d]", gi)
		pl := g.Placement
		if len(pl.Preferred) != 1 {
			v.add(gp+".placement.preferred", pl.Preferred, "peer mode wants the group's home node: exactly one of cluster.nodes")
		} else if _, ok := names[pl.Preferred[0]]; !ok {
			v.add(gp+".placement.preferred[0]", pl.Preferred[0], "is not one of cluster.nodes")
		}
		if len(pl.Possible) > 0 {
			v.add(gp+".placement.possible", pl.Possible, "quorum mode only: in peer mode either node may serve a group")
		}
		if len(pl.AntiAffinity) > 0 {
			v.add(gp+".placement.anti_affinity", pl.AntiAffinity, "quorum mode only")
		}
		v.nonNegative(gp+".placement.stable_period", pl.StablePeriod)
		v.failback(gp+".placement", g)
		addr, source := g.PeerAddress()
		switch {
		case source == "":
			v.add(gp+".peer.address", nil, "required: the group has no ipaddress resource whose address the peer could ping")
		case !addr.IsValid() || addr.IsUnspecified():
			path := gp + "." + source
			if source == "peer.address" {
				v.add(path, g.Peer.Address, "want an IP address (the service address the peer pings)")
			} else if !v.has(path) {
				v.add(path, nil, "peer mode pings this address: it must be an IP address")
			}
		case addrs[addr] != "":
			v.add(gp+"."+source, addr.String(), "the service address of group %s too: each group needs its own", addrs[addr])
		default:
			addrs[addr] = g.Name
		}
		p := g.Peer
		if p == nil {
			continue
		}
		if hc := p.Check.health(); !hc.IsZero() {
			v.policyErrs(gp+".peer", hc.Validate("check"))
		}
		if p.CheckBody != "" && p.Check.HTTP == "" {
			v.add(gp+".peer.check_body", p.CheckBody, "needs an HTTP check (check.http)")
		}
		if p.ServiceFailures < 0 {
			v.add(gp+".peer.service_failures", p.ServiceFailures, "must not be negative (0: the default %d)", peer.DefaultServiceFailures)
		}
		if p.Release && p.Check.health().IsZero() {
			v.add(gp+".peer.release", true, "needs a check: the holder agrees to release only when the check fails there too")
		}
	}
}

// peerOnly refuses groups[].peer outside peer mode.
func (v *validator) peerOnly(c *Config) {
	if c.Cluster.IsPeer() {
		return
	}
	for gi, g := range c.Groups {
		if g.Peer != nil {
			v.add(fmt.Sprintf("groups[%d].peer", gi), nil, "peer mode only (cluster.mode: peer)")
		}
	}
}

// has reports whether an error names path already.
func (v *validator) has(path string) bool {
	for _, e := range v.errs {
		if e.Path == path || strings.HasPrefix(e.Path, path+".") {
			return true
		}
	}
	return false
}
