package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"

	"github.com/sftkit/sft/cluster/detector"
	"github.com/sftkit/sft/cluster/state"
	"github.com/sftkit/sft/monitor"
	"github.com/sftkit/sft/policy"
	"github.com/sftkit/sft/resource"
)

// NodeSpec is one node of the cluster. Every node's Config lists the same
// nodes.
type NodeSpec struct {
	Name string `json:"name" yaml:"name"`
	// Raft is the node's raft address, host:port (TCP), on the
	// interconnect. The node's requests to the leader use it too.
	Raft string `json:"raft" yaml:"raft"`
	// Heartbeat has one UDP address (host:port) per interconnect path;
	// every node must list the same number of paths.
	Heartbeat []string `json:"heartbeat" yaml:"heartbeat"`
	// Witness: the node votes and heartbeats but hosts no group.
	Witness bool `json:"witness,omitempty" yaml:"witness,omitempty"`
}

// FenceRequest is what the fence hook is told: a group cannot come online
// here because another host still holds what it needs.
type FenceRequest struct {
	Group string
	Epoch uint64
	// Suspect is the last other node that owned the group and did not
	// give it up after a failure there (the likely holder: frozen, or cut
	// off with its address still bound). A reclaim in place (a new epoch
	// on the same owner) and an owner where the group failed (which took
	// it offline; an Online refused because the address is held elsewhere
	// is such a failure) do not change it: after a failover a -> b, a lost
	// lease on b and a failover b -> c, it is still a.
	Suspect string
	// Err is the refusal.
	Err error
}

// Config configures a Node.
type Config struct {
	// Name is this node's name; it must be one of Nodes.
	Name string
	// Nodes is the static node list (every node has the same). Nodes added
	// at run time (Node.AddNode) live in the replicated state.
	Nodes []NodeSpec
	// Timing: zero fields take the default profile (Timing.WithDefaults);
	// Validate must pass.
	Timing Timing
	// Key is the cluster's shared key (at least 16 bytes): heartbeats and
	// requests to the leader are signed with it. Raft's own traffic is
	// not: keep the interconnect private.
	Key []byte
	// DataDir holds the raft log, its stable store and snapshots. Empty
	// keeps them in memory: a node that restarts has forgotten the state
	// and rejoins empty (for tests and examples only).
	DataDir string
	// Join: this node was added to a running cluster (Node.AddNode on a
	// member): it does not bootstrap raft from Nodes but waits for the
	// leader to replicate the configuration and the state. Default false:
	// every node of the first start lists the same Nodes and bootstraps
	// with them (raft accepts the same bootstrap from each).
	Join bool
	// Local runs this node's groups; nil for a witness. Its groups must be
	// added (monitor.AddGroup) before Start, in managed mode.
	Local Local
	// Groups are the placement specs (owners, failover, failback,
	// anti-affinity), in priority order; every node has the same. Each
	// must be a group of Local (on nodes that may own it).
	Groups []policy.Group
	// FenceHook, if set, is called (once per group and epoch, as soon as
	// the previous owner is known) when a group cannot come online here
	// because its address is held elsewhere: a STONITH agent (power off or
	// isolate Suspect). Meanwhile the group
	// waits, retried every Timing.Window.
	FenceHook func(ctx context.Context, req FenceRequest) error
	// HeldElsewhere recognizes that refusal among Online errors (default
	// IsHeldElsewhere).
	HeldElsewhere func(error) bool
	// Now is the clock of placement decisions (failback windows, stable
	// periods, failover periods; default time.Now). The detector and the
	// lease always use the monotonic clock.
	Now func() time.Time
	// OnHeartbeatGap, if set, is told the time between two heartbeats
	// received from a node on an interconnect path (every heartbeat but
	// the first): the heartbeat gaps histogram. It runs on the detector's
	// reader goroutines and must be quick.
	OnHeartbeatGap func(node string, path int, gap time.Duration)
	// Events, if above 0, is the buffer of a subscription made before
	// any loop starts (Node.Events), so that the first events (leader,
	// lease gained, groups adopted or online) are not missed, as they can
	// be by a Subscribe after Start. 0: none; below 0 is refused.
	Events int
	// Logger (default: discard).
	Logger *slog.Logger

	filter linkFilter // tests only (export_test.go)
}

func (c Config) self() (NodeSpec, bool) {
	i := slices.IndexFunc(c.Nodes, func(n NodeSpec) bool { return n.Name == c.Name })
	if i < 0 {
		return NodeSpec{}, false
	}
	return c.Nodes[i], true
}

// Validate checks c, naming the field and the value of every problem.
func (c Config) Validate() error {
	var errs []error
	if c.Name == "" {
		errs = append(errs, resource.ConfigError("name", c.Name, "empty node name"))
	}
	if len(c.Nodes) == 0 {
		errs = append(errs, resource.ConfigError("nodes", "[]", "no nodes"))
	}
	names := map[string]bool{}
	paths := -1
	for i, n := range c.Nodes {
		errs = append(errs, n.validate(fmt.Sprintf("nodes[%d]", i)))
		if names[n.Name] {
			errs = append(errs, resource.ConfigError(fmt.Sprintf("nodes[%d].name", i), n.Name, "listed twice"))
		}
		names[n.Name] = true
		if paths >= 0 && len(n.Heartbeat) != paths {
			errs = append(errs, resource.ConfigError(fmt.Sprintf("nodes[%d].heartbeat", i), n.Heartbeat,
				"has %d paths, the nodes before have %d: every node needs one address per path", len(n.Heartbeat), paths))
		}
		paths = len(n.Heartbeat)
	}
	self, ok := c.self()
	if c.Name != "" && !ok {
		errs = append(errs, resource.ConfigError("name", c.Name, "not one of the nodes"))
	}
	if ok && self.Witness && c.Local != nil {
		errs = append(errs, resource.ConfigError("local", "set", "node %s is a witness: it hosts nothing", c.Name))
	}
	if ok && !self.Witness && c.Local == nil {
		errs = append(errs, resource.ConfigError("local", "nil", "node %s hosts groups: it needs the monitor", c.Name))
	}
	if len(c.Key) < detector.MinKeyLen {
		errs = append(errs, resource.ConfigError("key", fmt.Sprintf("%d bytes", len(c.Key)), "shared key must have at least %d bytes", detector.MinKeyLen))
	}
	if err := c.Timing.WithDefaults().Validate(); err != nil {
		errs = append(errs, resource.PrefixFields("timing", err))
	}
	if c.Events < 0 {
		errs = append(errs, resource.ConfigError("events", c.Events, "negative subscription buffer (0: no subscription from Start)"))
	}
	groups := map[string]bool{}
	for i, g := range c.Groups {
		errs = append(errs, resource.PrefixFields(fmt.Sprintf("groups[%d]", i), g.Validate()))
		if groups[g.Name] {
			errs = append(errs, resource.ConfigError(fmt.Sprintf("groups[%d].name", i), g.Name, "listed twice"))
		}
		groups[g.Name] = true
	}
	return errors.Join(errs...)
}

func (n NodeSpec) validate(at string) error {
	var errs []error
	if n.Name == "" {
		errs = append(errs, resource.ConfigError(at+".name", n.Name, "empty node name"))
	}
	if _, err := netip.ParseAddrPort(n.Raft); err != nil {
		errs = append(errs, resource.ConfigError(at+".raft", n.Raft, "want ip:port: %v", err))
	}
	if len(n.Heartbeat) == 0 {
		errs = append(errs, resource.ConfigError(at+".heartbeat", "[]", "at least one heartbeat address (one per interconnect path)"))
	}
	for i, a := range n.Heartbeat {
		if _, err := netip.ParseAddrPort(a); err != nil {
			errs = append(errs, resource.ConfigError(fmt.Sprintf("%s.heartbeat[%d]", at, i), a, "want ip:port: %v", err))
		}
	}
	return errors.Join(errs...)
}

// Node is one running node of a cluster: raft over TCP on the
// interconnect, the UDP heartbeat detector, the leader loop (which places
// groups while this node is the raft leader) and the owner loop (which
// brings this node's groups online and offline and fences them when the
// lease runs out). Start it with Start; it is safe for concurrent use.
type Node struct {
	cfg     Config
	self    NodeSpec
	timing  Timing
	log     *slog.Logger
	hub     hub
	sub     *Subscription // Config.Events
	fsm     *state.FSM
	raft    *raft.Raft
	trans   *raft.NetworkTransport
	mux     *mux
	det     *detector.UDP
	store   *raftboltdb.BoltStore
	groups  []string
	holdoff time.Duration

	ctx    context.Context
	cancel context.CancelFunc
	// onlineCtx bounds the owner loop's Onlines (and their Probes); Close
	// cancels it first, so that no group comes online again here while
	// Close takes them offline.
	onlineCtx  context.Context
	stopOnline context.CancelFunc
	wg         sync.WaitGroup
	lkick      chan struct{} // leader loop
	okick      chan struct{} // owner loop
	ready      chan struct{} // closed once raft runs (requests wait for it)

	mu         sync.Mutex
	changed    chan struct{} // closed and replaced when the state changes
	prev       *state.State  // for the events derived from the state
	leaderName string
	lastOwner  map[string]string // the owner before the current one, per group
	leading    time.Time         // when this node last became leader (zero: not leader)
	deferAt    time.Time         // the leader's next deferred placement
	closing    bool
	own        owner
}

// Start starts a node: it binds the raft and heartbeat addresses,
// bootstraps the cluster on first start (every node lists the same nodes;
// raft accepts the same bootstrap from each), probes this node's groups
// and starts the loops. Close stops it.
func Start(cfg Config) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	self, _ := cfg.self()
	n := &Node{cfg: cfg, self: self, timing: cfg.Timing.WithDefaults(), log: cfg.Logger,
		fsm: state.NewFSM(), lkick: make(chan struct{}, 1), okick: make(chan struct{}, 1), ready: make(chan struct{}),
		changed: make(chan struct{}), lastOwner: map[string]string{}, prev: state.New()}
	if n.log == nil {
		n.log = slog.New(slog.DiscardHandler)
	}
	if n.cfg.Now == nil {
		n.cfg.Now = time.Now
	}
	if n.cfg.HeldElsewhere == nil {
		n.cfg.HeldElsewhere = IsHeldElsewhere
	}
	for _, g := range cfg.Groups {
		n.groups = append(n.groups, g.Name)
	}
	n.holdoff = 2 * n.timing.Window
	n.own.init()
	n.ctx, n.cancel = context.WithCancel(context.Background())
	n.onlineCtx, n.stopOnline = context.WithCancel(n.ctx)
	if cfg.Events > 0 {
		n.sub = n.hub.subscribe(cfg.Events)
	}
	if err := n.start(); err != nil {
		n.cancel()
		n.teardown()
		return nil, err
	}
	return n, nil
}

func (n *Node) start() error {
	byAddr := map[netip.Addr]string{}
	for _, s := range n.cfg.Nodes {
		byAddr[netip.MustParseAddrPort(s.Raft).Addr().Unmap()] = s.Name
	}
	ln, err := net.Listen("tcp", n.self.Raft)
	if err != nil {
		return resource.ConfigError("raft", n.self.Raft, "%v", err)
	}
	n.mux = newMux(n.cfg.Name, ln, byAddr, n.cfg.filter, n.serve)
	hlog := hclog.New(&hclog.LoggerOptions{Name: "raft " + n.cfg.Name, Level: hclog.Error, Output: slogWriter{n.log}})
	n.trans = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream: n.mux, MaxPool: 3, Timeout: 2 * time.Second, Logger: hlog})

	var listen []netip.AddrPort
	for _, a := range n.self.Heartbeat {
		listen = append(listen, netip.MustParseAddrPort(a))
	}
	ucfg := detector.UDPConfig{Detector: n.timing.Detector(n.cfg.Name, len(listen)), Listen: listen, Key: n.cfg.Key,
		OnEvent: n.onDetector, OnGap: n.cfg.OnHeartbeatGap, Logger: n.log}
	if f := n.cfg.filter; f != nil {
		ucfg.Drop = func(path int, to string) bool { return f.Blocked(n.cfg.Name, to, path) }
	}
	if n.det, err = detector.ListenUDP(ucfg); err != nil {
		return err
	}
	for _, s := range n.cfg.Nodes {
		if s.Name != n.cfg.Name {
			if err := n.det.AddPeer(s.Name, parseAddrs(s.Heartbeat)); err != nil {
				return err
			}
		}
	}
	var logs raft.LogStore
	var stable raft.StableStore
	var snaps raft.SnapshotStore
	if n.cfg.DataDir == "" {
		mem := raft.NewInmemStore()
		logs, stable, snaps = mem, mem, raft.NewInmemSnapshotStore()
	} else {
		if err := os.MkdirAll(n.cfg.DataDir, 0o700); err != nil {
			return resource.ConfigError("data_dir", n.cfg.DataDir, "%v", err)
		}
		if _, err := os.Stat(filepath.Join(n.cfg.DataDir, "raft")); err == nil {
			return resource.ConfigError("data_dir", n.cfg.DataDir,
				"holds a raft-wal log (raft/) of an older version: clear the directory and start the node with Join set")
		}
		path := filepath.Join(n.cfg.DataDir, "raft.db")
		if n.store, err = raftboltdb.New(raftboltdb.Options{Path: path,
			// Another process holding the file: an error, not a wait forever.
			BoltOptions: &bbolt.Options{Timeout: time.Second}}); err != nil {
			return fmt.Errorf("cluster: open raft log %s: %w", path, err)
		}
		if snaps, err = raft.NewFileSnapshotStoreWithLogger(n.cfg.DataDir, 2, hlog); err != nil {
			return fmt.Errorf("cluster: snapshots in %s: %w", n.cfg.DataDir, err)
		}
		logs, stable = n.store, n.store
	}
	conf := n.timing.Raft(n.cfg.Name)
	conf.Logger = hlog
	conf.ShutdownOnRemove = false
	existing, err := raft.HasExistingState(logs, stable, snaps)
	if err != nil {
		return fmt.Errorf("cluster: read raft state: %w", err)
	}
	if n.raft, err = raft.NewRaft(conf, notifyFSM{n.fsm, n}, logs, stable, snaps, n.trans); err != nil {
		return fmt.Errorf("cluster: start raft: %w", err)
	}
	close(n.ready)
	if !existing && !n.cfg.Join {
		var servers []raft.Server
		for _, s := range n.cfg.Nodes {
			servers = append(servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(s.Name), Address: raft.ServerAddress(s.Raft)})
		}
		if err := n.raft.BootstrapCluster(raft.Configuration{Servers: servers}).Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
			return fmt.Errorf("cluster: bootstrap: %w", err)
		}
	}

	n.wg.Go(func() { _ = n.det.Run(n.ctx) })
	n.wg.Go(n.leaderLoop)
	if n.cfg.Local != nil {
		w := n.cfg.Local.Watch()
		n.wg.Go(func() { n.watchLocal(w) })
		n.wg.Go(n.ownerLoop)
	}
	return nil
}

func parseAddrs(ss []string) []netip.AddrPort {
	var out []netip.AddrPort
	for _, s := range ss {
		if a, err := netip.ParseAddrPort(s); err == nil {
			out = append(out, a)
		}
	}
	return out
}

// Close stops the node. Groups still online here are taken offline first
// (bounded by ctx; what is left is fenced): a node that stops heartbeating
// loses its lease, and another node may take its groups over. Close
// leaves the monitor itself open.
func (n *Node) Close(ctx context.Context) error {
	n.mu.Lock()
	if n.closing {
		n.mu.Unlock()
		return nil
	}
	n.closing = true
	n.mu.Unlock()
	// No Online from here on, and one in flight is cut short: otherwise
	// the owner loop, seeing its group go offline, brings it online again
	// after the Offline below (clusterembed's TestRun at load 32), and the
	// group runs on in the monitor of a node that has left.
	n.stopOnline()
	var errs []error
	if n.cfg.Local != nil {
		n.own.mu.Lock()
		untouched := maps.Clone(n.own.adopt) // a previous run's leftovers: fenced, not left behind
		n.own.mu.Unlock()
		var wg sync.WaitGroup
		var emu sync.Mutex
		for _, g := range n.groups {
			wg.Go(func() {
				var err error
				if untouched[g] {
					_, err = n.cfg.Local.Fence(ctx, g)
				} else {
					err = n.cfg.Local.Offline(ctx, g)
				}
				if err != nil && !errors.Is(err, monitor.ErrNoSuchGroup) {
					if _, ferr := n.cfg.Local.Fence(context.WithoutCancel(ctx), g); ferr != nil {
						emu.Lock()
						errs = append(errs, fmt.Errorf("group %s: %w", g, ferr))
						emu.Unlock()
					}
				}
			})
		}
		wg.Wait()
	}
	n.cancel()
	n.teardown()
	return errors.Join(errs...)
}

// kill stops the node without touching its groups (a crash; tests).
func (n *Node) kill() {
	n.mu.Lock()
	n.closing = true
	n.mu.Unlock()
	n.cancel()
	n.teardown()
}

func (n *Node) teardown() {
	if n.raft != nil {
		_ = n.raft.Shutdown().Error()
	}
	if n.trans != nil {
		_ = n.trans.Close()
	} else if n.mux != nil {
		_ = n.mux.Close()
	}
	n.wg.Wait()
	if n.mux != nil {
		_ = n.mux.Close()
		n.mux.wait()
	}
	n.own.wait()
	if n.store != nil {
		_ = n.store.Close()
	}
	n.hub.close()
}

// Subscribe returns a subscription to the node's events (buffer <= 0:
// 256), from now on: events of the first moments after Start may be
// gone already; Config.Events keeps them.
func (n *Node) Subscribe(buffer int) *Subscription { return n.hub.subscribe(buffer) }

// Events is the subscription Start made with Config.Events (nil
// without): it has every event of this node, from the first.
func (n *Node) Events() *Subscription { return n.sub }

func (n *Node) emit(e Event) {
	if e.At.IsZero() {
		e.At = n.cfg.Now()
	}
	n.log.Info("cluster", "event", e.Kind, "node", e.Node, "group", e.Group, "epoch", e.Epoch, "detail", e.Detail)
	n.hub.publish(e)
}

// poke wakes the loops.
func (n *Node) poke() {
	for _, c := range []chan struct{}{n.lkick, n.okick} {
		select {
		case c <- struct{}{}:
		default:
		}
	}
}

// notifyFSM is the state's raft FSM, telling the node about every change.
type notifyFSM struct {
	*state.FSM
	n *Node
}

func (f notifyFSM) Apply(l *raft.Log) any {
	r := f.FSM.Apply(l)
	f.n.stateChanged()
	return r
}

func (f notifyFSM) Restore(r io.ReadCloser) error {
	err := f.FSM.Restore(r)
	f.n.stateChanged()
	return err
}

// suspectAfter is the fence suspect (FenceRequest.Suspect) once group g
// follows p in the state, last being the suspect before: the owner of p
// if the group left it for another node and did not fail there.
func suspectAfter(last string, p, g *state.Group) string {
	if p == nil || g == nil || p.Epoch == g.Epoch || p.Owner == "" || p.Owner == g.Owner {
		return last
	}
	if t, ok := g.LastFailure[p.Owner]; p.Failed || (ok && !t.Before(p.Changed)) {
		return last // failed there: taken offline, not holding it
	}
	return p.Owner
}

// stateChanged derives the replicated events, wakes waiters and loops.
func (n *Node) stateChanged() {
	st := n.snapshot()
	n.mu.Lock()
	prev := n.prev
	n.prev = st
	for name, g := range st.Groups {
		n.lastOwner[name] = suspectAfter(n.lastOwner[name], prev.Groups[name], g)
	}
	close(n.changed)
	n.changed = make(chan struct{})
	n.mu.Unlock()
	for _, e := range diff(prev, st) {
		n.emit(e)
	}
	if n.det != nil {
		n.syncPeers(prev, st)
	}
	n.poke()
}

// snapshot is a copy of the replicated state.
func (n *Node) snapshot() *state.State {
	var st *state.State
	n.fsm.View(func(s *state.State) { st = s.Clone() })
	return st
}

// waitState waits until cond holds on the state (checked on every change)
// or ctx ends.
func (n *Node) waitState(ctx context.Context, cond func(*state.State) (bool, error)) error {
	for {
		n.mu.Lock()
		ch := n.changed
		n.mu.Unlock()
		if ok, err := cond(n.snapshot()); ok || err != nil {
			return err
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// diff turns a state change into events.
func diff(prev, st *state.State) []Event {
	var out []Event
	for _, name := range slices.Sorted(mapsKeys(st.Nodes)) {
		nd := st.Nodes[name]
		if p := prev.Nodes[name]; p != nil && p.State == nd.State {
			continue
		}
		kind := map[policy.NodeState]EventKind{policy.NodeUp: EventNodeUp, policy.NodeDown: EventNodeDown, policy.NodeMaintenance: EventNodeMaintenance}[nd.State]
		if prev.Nodes[name] == nil && nd.State == policy.NodeDown {
			continue // just added
		}
		out = append(out, Event{Kind: kind, Node: name, Detail: nd.Reason})
	}
	for _, name := range slices.Sorted(mapsKeys(st.Groups)) {
		g, p := st.Groups[name], prev.Groups[name]
		if p == nil {
			p = &state.Group{}
		}
		if g.MoveTo != "" && g.MoveTo != p.MoveTo {
			out = append(out, Event{Kind: EventMoveStarted, Group: name, Node: g.MoveTo, Epoch: g.Epoch,
				Detail: fmt.Sprintf("%s: %s drains it from %s", g.MoveKind, g.MoveReason, g.Owner)})
		}
		if g.Epoch != p.Epoch {
			out = append(out, Event{Kind: EventPlacement, Group: name, Node: g.Owner, Epoch: g.Epoch,
				Detail: fmt.Sprintf("%s from %q: %s", g.Kind, p.Owner, g.Reason)})
			if g.Kind == state.KindMove || (p.MoveTo != "" && p.MoveTo == g.Owner) {
				out = append(out, Event{Kind: EventMoveDone, Group: name, Node: g.Owner, Epoch: g.Epoch})
			}
		}
		for node, at := range g.LastFailure {
			if !at.Equal(p.LastFailure[node]) {
				out = append(out, Event{Kind: EventFailure, Group: name, Node: node, Epoch: g.Epoch,
					Detail: fmt.Sprintf("failed on %s (bans: %v)", node, g.Bans)})
			}
		}
	}
	return out
}

func mapsKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// onDetector takes the detector's events (on its goroutine).
func (n *Node) onDetector(e detector.Event) {
	switch e.Kind {
	case detector.LeaseLost:
		n.leaseLost(e.Detail)
	case detector.LeaseGained:
		n.leaseGained()
		n.emit(Event{Kind: EventLeaseGained, Node: n.cfg.Name, Detail: e.Detail})
	case detector.PathDown, detector.PathUp:
		kind := EventPathDown
		if e.Kind == detector.PathUp {
			kind = EventPathUp
		}
		n.emit(Event{Kind: kind, Node: e.Node, Detail: fmt.Sprintf("path %d: %s", e.Path, e.Detail)})
	case detector.NodeDead:
		n.log.Info("cluster detector", "event", e.Kind, "node", e.Node, "detail", e.Detail)
	case detector.PeerSilent, detector.PeerHeard, detector.NodeAlive:
		n.log.Info("cluster detector", "event", e.Kind, "node", e.Node, "detail", e.Detail)
	}
	n.poke()
}

// slogWriter sends raft's log lines to the node's logger.
type slogWriter struct{ log *slog.Logger }

func (w slogWriter) Write(b []byte) (int, error) {
	w.log.Warn(string(b))
	return len(b), nil
}
