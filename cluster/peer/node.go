package peer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/sftkit/sft/monitor"
	"github.com/sftkit/sft/policy"
	"github.com/sftkit/sft/resource"
)

// Local is the node's monitor as peer mode drives it.
type Local interface {
	// Online brings the group online here (for an address: the duplicate
	// address probe runs first and fails node-local if it is answered).
	Online(ctx context.Context, group string) error
	// Offline takes it offline here.
	Offline(ctx context.Context, group string) error
	// Holds reports whether the group is online (or coming online) here.
	Holds(group string) bool
}

// MonitorLocal adapts a *monitor.Monitor (run it with Config.Managed) to
// Local.
type MonitorLocal struct{ M *monitor.Monitor }

// Online implements Local.
func (l MonitorLocal) Online(ctx context.Context, g string) error { return l.M.Online(ctx, g) }

// Offline implements Local.
func (l MonitorLocal) Offline(ctx context.Context, g string) error { return l.M.Offline(ctx, g) }

// Holds implements Local.
func (l MonitorLocal) Holds(g string) bool {
	st, err := l.M.GroupStatus(g)
	if err != nil {
		return false
	}
	return st.State == resource.StateOnline || st.State == resource.StateOnlinePending
}

// Role is what a node does for a group.
type Role string

const (
	// Holder: the group is online here.
	Holder Role = "holder"
	// Watcher: the group is (or should be) online on the peer; this node
	// pings its address.
	Watcher Role = "watcher"
)

// Options are a Node's collaborators.
type Options struct {
	// Local is the node's monitor (required).
	Local Local
	// Pinger defaults to ICMP (pro-bing, privileged); Start then fails
	// unless CheckICMP passes.
	Pinger Pinger
	// Listener for the interconnect; nil: listen on Config.Listen.
	Listener net.Listener
	// Grace is how long a watcher that never saw a reply waits before it
	// may judge the holder dead (both nodes starting). Default 2 s.
	Grace time.Duration
	// RetryAfter is the pause before a watcher tries again after a
	// takeover it did not do (isolated, address still answered, release
	// refused). Default 1 s.
	RetryAfter time.Duration
	// PeerCheck is the period of an authenticated status request to the
	// peer's sft, whose answer Status shows (PeerUp). Zero: none (Status
	// then says nothing about the peer node itself).
	PeerCheck time.Duration
	// Events, if above 0, is the buffer of a subscription made before
	// any group loop starts (Node.Events), so that the first events (a
	// home group online, or its address found held) are not missed.
	Events int
	Logger *slog.Logger
}

// GroupStatus is one group as this node sees it.
type GroupStatus struct {
	Name    string     `json:"name"`
	Address netip.Addr `json:"address"`
	Home    string     `json:"home"`
	Role    Role       `json:"role"`
	// Owner is the node believed to serve the group: this node when it
	// holds it, the peer while its address answers, "" when nobody does.
	Owner string `json:"owner"`
	// State is the watcher's verdict, or "holding".
	State string `json:"state"`
	// Reason is the newest event's message for the group.
	Reason string `json:"reason,omitempty"`
	// Peer view (watchers): the last echo reply, unanswered echoes in a
	// row, functional checks failed in a row.
	LastReply       time.Time `json:"last_reply,omitzero"`
	Misses          int       `json:"misses"`
	ServiceFailures int       `json:"service_failures"`
}

// Status is a snapshot of the node.
type Status struct {
	Node string `json:"node"`
	Peer string `json:"peer"`
	// With Options.PeerCheck: whether the peer's sft answered the last
	// status request, when it last did, and why the last one failed.
	PeerChecked bool          `json:"peer_checked"`
	PeerUp      bool          `json:"peer_up"`
	PeerSeen    time.Time     `json:"peer_seen,omitzero"`
	PeerError   string        `json:"peer_error,omitempty"`
	Groups      []GroupStatus `json:"groups"`
}

type groupRun struct {
	g     Group
	check checker
	op    sync.Mutex // serializes takeover, release, move
	kick  chan struct{}

	// under Node.mu
	role       Role
	det        *Detector
	verdict    Verdict
	reason     string
	retryAt    time.Time
	episode    map[EventKind]bool // events raised once per episode
	stableFrom time.Time
}

// Node is one node of a two-node peer-mode pair.
type Node struct {
	cfg Config
	opt Options
	log *slog.Logger
	srv *Server
	hub hub
	sub *Subscription // Options.Events

	mu     sync.Mutex
	groups map[string]*groupRun
	order  []string
	// peer view (Options.PeerCheck), under mu
	peerChecked bool
	peerSeen    time.Time
	peerErr     string

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Start validates cfg, starts the interconnect server and one loop per
// group: a group homed here is brought online (unless its address is
// answered elsewhere: then this node watches it, as MiniSFT's Recovery);
// the others are watched.
func Start(cfg Config, opt Options) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opt.Local == nil {
		return nil, resource.ConfigError("local", nil, "a Local (the node's monitor) is required")
	}
	if opt.Pinger == nil {
		v6 := cfg.Reference.Is6()
		for _, g := range cfg.Groups {
			v6 = v6 || g.Address.Is6() || cfg.PeerAddr.Addr().Is6()
		}
		if err := CheckICMP(v6); err != nil {
			return nil, resource.NodeLocal(err)
		}
		opt.Pinger = ICMP{}
	}
	if opt.Grace == 0 {
		opt.Grace = 2 * time.Second
	}
	if opt.RetryAfter == 0 {
		opt.RetryAfter = time.Second
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.Detect = cfg.Detect.withDefaults()
	n := &Node{cfg: cfg, opt: opt, log: opt.Logger, groups: map[string]*groupRun{}}
	for _, g := range cfg.Groups {
		g = g.withDefaults()
		gr := &groupRun{g: g, kick: make(chan struct{}, 1), episode: map[EventKind]bool{}, role: Watcher}
		if !g.Check.IsZero() {
			c, err := newChecker(g)
			if err != nil {
				return nil, err
			}
			gr.check = c
		}
		n.groups[g.Name] = gr
		n.order = append(n.order, g.Name)
	}
	ln := opt.Listener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", cfg.Listen.String()); err != nil {
			return nil, resource.NodeLocal(fmt.Errorf("peer: interconnect listen %s: %w", cfg.Listen, err))
		}
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	if opt.Events > 0 {
		n.sub = n.hub.subscribe(opt.Events)
	}
	n.srv = Serve(ln, cfg.Key, n.handle)
	for _, name := range n.order {
		gr := n.groups[name]
		n.wg.Add(1)
		go n.run(gr)
	}
	if opt.PeerCheck > 0 {
		n.wg.Go(n.checkPeer)
	}
	return n, nil
}

// checkPeer asks the peer's sft for its status every PeerCheck.
func (n *Node) checkPeer() {
	t := time.NewTicker(n.opt.PeerCheck)
	defer t.Stop()
	for {
		ctx, cancel := context.WithTimeout(n.ctx, max(n.opt.PeerCheck, time.Second))
		rep, err := Call(ctx, n.cfg.PeerAddr.String(), n.cfg.Key, OpStatus, "", n.cfg.Node, false)
		cancel()
		if n.ctx.Err() != nil {
			return
		}
		if err == nil && !rep.OK {
			err = errors.New(rep.Reason)
		}
		n.mu.Lock()
		n.peerChecked = true
		if err == nil {
			n.peerSeen, n.peerErr = time.Now(), ""
		} else {
			n.peerErr = err.Error()
		}
		n.mu.Unlock()
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Close stops every loop and the interconnect. It takes nothing offline:
// the monitor's owner decides (a node leaving keeps serving until its
// monitor closes).
func (n *Node) Close() error {
	n.cancel()
	err := n.srv.Close()
	n.wg.Wait()
	n.hub.close()
	return err
}

// Subscribe returns a lossy event subscription (see Subscription). It
// sees the events from now on: for every event since Start, use
// Options.Events and Events.
func (n *Node) Subscribe(buffer int) *Subscription { return n.hub.subscribe(buffer) }

// Events is the subscription Start made with Options.Events (nil
// without).
func (n *Node) Events() *Subscription { return n.sub }

// Status returns a snapshot.
func (n *Node) Status() Status {
	n.mu.Lock()
	defer n.mu.Unlock()
	now := time.Now()
	st := Status{Node: n.cfg.Node, Peer: n.cfg.Peer, PeerChecked: n.peerChecked, PeerUp: n.peerChecked && n.peerErr == "",
		PeerSeen: n.peerSeen, PeerError: n.peerErr}
	for _, name := range n.order {
		gr := n.groups[name]
		gs := GroupStatus{Name: name, Address: gr.g.Address, Home: gr.g.Home, Role: gr.role, Reason: gr.reason}
		if gr.role == Holder {
			gs.Owner, gs.State = n.cfg.Node, "holding"
		} else if gr.det != nil {
			gs.State = gr.verdict.String()
			gs.LastReply, gs.Misses, gs.ServiceFailures = gr.det.LastReply(), gr.det.Misses(now), gr.det.ServiceFailures()
			if gr.verdict != Dead {
				gs.Owner = n.cfg.Peer
			}
		} else {
			gs.State = "starting"
		}
		st.Groups = append(st.Groups, gs)
	}
	return st
}

func (n *Node) group(name string) (*groupRun, error) {
	gr, ok := n.groups[name]
	if !ok {
		return nil, fmt.Errorf("peer: no group %q", name)
	}
	return gr, nil
}

func (n *Node) setRole(gr *groupRun, r Role) {
	n.mu.Lock()
	gr.role = r
	gr.det = nil
	gr.stableFrom = time.Time{}
	clear(gr.episode)
	n.mu.Unlock()
	select {
	case gr.kick <- struct{}{}:
	default:
	}
}

func (n *Node) role(gr *groupRun) Role {
	n.mu.Lock()
	defer n.mu.Unlock()
	return gr.role
}

// emit publishes an event and keeps it as the group's reason. once: only
// the first of its kind per episode (until the role or verdict changes).
func (n *Node) emit(gr *groupRun, kind EventKind, once bool, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	n.mu.Lock()
	if once && gr.episode[kind] {
		n.mu.Unlock()
		return
	}
	gr.episode[kind] = true
	gr.reason = msg
	n.mu.Unlock()
	e := Event{Time: time.Now(), Node: n.cfg.Node, Group: gr.g.Name, Kind: kind, Alert: kind.IsAlert(), Message: msg}
	lvl := slog.LevelInfo
	if e.Alert {
		lvl = slog.LevelWarn
	}
	n.log.Log(context.Background(), lvl, msg, "group", e.Group, "event", string(kind))
	n.hub.publish(e)
}

// run is one group's loop.
func (n *Node) run(gr *groupRun) {
	defer n.wg.Done()
	if gr.g.Home == n.cfg.Node {
		gr.op.Lock()
		err := n.opt.Local.Online(n.ctx, gr.g.Name)
		switch {
		case err == nil:
			n.setRole(gr, Holder)
			n.emit(gr, EventOnline, false, "online here, its home")
		case n.ctx.Err() != nil:
		case resource.ClassOf(err) == resource.ClassNodeLocal:
			n.emit(gr, EventRecovery, false, "address %s is held by another node: not binding it, watching it (failback: Move or the failback policy): %v", gr.g.Address, err)
		default:
			n.emit(gr, EventTakeoverFailed, false, "could not bring the group online at its home: %v", err)
		}
		gr.op.Unlock()
	}
	for n.ctx.Err() == nil {
		if n.role(gr) == Holder {
			n.hold(gr)
		} else {
			n.watch(gr)
		}
	}
}

// hold runs while the group is held here: it notices the group lost (the
// monitor failed it) and runs automatic failback.
func (n *Node) hold(gr *groupRun) {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	var nextFailback time.Time
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-gr.kick:
		case <-t.C:
		}
		if n.role(gr) != Holder {
			return
		}
		if !gr.op.TryLock() {
			continue
		}
		if !n.opt.Local.Holds(gr.g.Name) {
			n.emit(gr, EventLost, false, "the group is no longer online here: watching its address")
			n.setRole(gr, Watcher)
			gr.op.Unlock()
			return
		}
		gr.op.Unlock()
		if gr.g.Home == n.cfg.Peer && gr.g.Failback.Mode != policy.FailbackPrevent && !time.Now().Before(nextFailback) {
			nextFailback = time.Now().Add(time.Second)
			n.failbackStep(gr)
		}
	}
}

// failbackStep checks the returning home node (ping of its own address
// and its sft answering) and moves the group home once it passed both for
// StablePeriod, inside the failback window.
func (n *Node) failbackStep(gr *groupRun) {
	ctx, cancel := context.WithTimeout(n.ctx, time.Second)
	defer cancel()
	ok := n.pingOnce(ctx, n.cfg.PeerAddr.Addr())
	if ok {
		rep, err := Call(ctx, n.cfg.PeerAddr.String(), n.cfg.Key, OpStatus, "", n.cfg.Node, false)
		ok = err == nil && rep.OK
	}
	now := time.Now()
	n.mu.Lock()
	if !ok {
		gr.stableFrom = time.Time{}
	} else if gr.stableFrom.IsZero() {
		gr.stableFrom = now
	}
	ready := ok && now.Sub(gr.stableFrom) >= gr.g.StablePeriod
	n.mu.Unlock()
	if !ready || (gr.g.Failback.Mode == policy.FailbackWindow && !gr.g.Failback.InWindow(now)) {
		return
	}
	if err := n.Move(n.ctx, gr.g.Name, n.cfg.Peer); err != nil {
		n.emit(gr, EventFailback, true, "automatic failback to %s failed: %v", n.cfg.Peer, err)
		return
	}
	n.emit(gr, EventFailback, false, "failed back to %s, stable for %v", n.cfg.Peer, gr.g.StablePeriod)
}

// watch runs while the peer should hold the group: ping its address,
// run functional checks, and act on the verdict.
func (n *Node) watch(gr *groupRun) {
	ctx, cancel := context.WithCancel(n.ctx)
	var pw sync.WaitGroup
	defer func() {
		cancel()
		pw.Wait()
	}()
	d := n.cfg.Detect
	var checkEvery time.Duration
	if gr.check != nil {
		checkEvery = gr.check.Interval()
	}
	det := NewDetector(d, gr.g, checkEvery, n.opt.Grace, time.Now())
	n.mu.Lock()
	gr.det, gr.verdict = det, Alive
	n.mu.Unlock()
	pw.Add(1)
	go func() {
		defer pw.Done()
		_ = n.opt.Pinger.Run(ctx, gr.g.Address, d.Interval,
			func() { n.mu.Lock(); det.Sent(time.Now()); n.mu.Unlock() },
			func() { n.mu.Lock(); det.Reply(time.Now()); n.mu.Unlock() })
	}()
	t := time.NewTicker(d.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-gr.kick:
		case <-t.C:
		}
		now := time.Now()
		n.mu.Lock()
		if gr.role != Watcher || gr.det != det {
			n.mu.Unlock()
			return
		}
		v := det.Verdict(now)
		prev := gr.verdict
		gr.verdict = v
		if v != prev && (v == Alive || prev == Dead || prev == ServiceDead) {
			clear(gr.episode)
		}
		for k := det.WantCheck(now); k != NoCheck; k = det.WantCheck(now) {
			det.CheckStarted(now, k)
			timeout, attempts := gr.check.Timeout(), checkAttempts
			if k == QuickCheck {
				timeout, attempts = min(timeout, d.Window()), 1
			}
			pw.Add(1)
			go func() {
				defer pw.Done()
				var err error
				for i := 0; i < attempts && ctx.Err() == nil; i++ {
					cctx, ccancel := context.WithTimeout(ctx, timeout)
					err = gr.check.Check(cctx)
					ccancel()
					if err == nil {
						break
					}
				}
				n.mu.Lock()
				det.CheckDone(time.Now(), k, err == nil)
				n.mu.Unlock()
			}()
		}
		retry := now.Before(gr.retryAt)
		n.mu.Unlock()
		if retry {
			continue
		}
		switch v {
		case Dead:
			if gr.g.NoTakeover {
				n.emit(gr, EventPeerDead, true, "holder of %s looks dead (%d echoes unanswered); takeover disabled", gr.g.Address, d.Misses)
				continue
			}
			if n.takeover(ctx, gr) {
				return
			}
		case ServiceDead:
			n.emit(gr, EventServiceDead, true, "service at %s fails its check %d times in a row while the address answers pings: alert, not stealing the address", gr.g.Address, gr.g.ServiceFailures)
			if gr.g.Release && !gr.g.NoTakeover && n.release(ctx, gr) {
				return
			}
		case Unpingable:
			n.emit(gr, EventUnpingable, true, "%s does not answer pings but its service answers: not taking over", gr.g.Address)
		}
	}
}

// checkAttempts is how many attempts one periodic functional check makes
// before it counts as failed: a lost SYN or SYN-ACK costs TCP a second,
// more than a check's timeout, so one lost packet must not fail a check.
const checkAttempts = 3

func (n *Node) backoff(gr *groupRun) {
	n.mu.Lock()
	gr.retryAt = time.Now().Add(n.opt.RetryAfter)
	n.mu.Unlock()
}

// pingOnce reports whether addr answers an echo within ReferenceWait.
func (n *Node) pingOnce(ctx context.Context, addr netip.Addr) bool {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.Detect.ReferenceWait)
	defer cancel()
	var once sync.Once
	ok := false
	_ = n.opt.Pinger.Run(ctx, addr, n.cfg.Detect.Interval, func() {}, func() {
		once.Do(func() { ok = true; cancel() })
	})
	return ok
}

// takeover: reference check, then Online (whose address probe refuses an
// answered address). It reports whether the group is now held here.
func (n *Node) takeover(ctx context.Context, gr *groupRun) bool {
	gr.op.Lock()
	defer gr.op.Unlock()
	if n.role(gr) != Watcher {
		return true
	}
	d := n.cfg.Detect
	if n.cfg.Reference.IsValid() && !n.pingOnce(ctx, n.cfg.Reference) {
		n.emit(gr, EventIsolated, true, "holder of %s looks dead but the reference %s does not answer either: isolated, taking nothing", gr.g.Address, n.cfg.Reference)
		n.backoff(gr)
		return false
	}
	err := n.opt.Local.Online(ctx, gr.g.Name)
	if err == nil {
		n.setRole(gr, Holder)
		n.emit(gr, EventTakeover, false, "took over %s: %d echoes unanswered (%v) and the functional check failed", gr.g.Address, d.Misses, d.Window())
		return true
	}
	if ctx.Err() != nil {
		return false
	}
	if resource.ClassOf(err) == resource.ClassNodeLocal {
		n.emit(gr, EventAddressHeld, true, "holder of %s looks dead but the address is still answered: not stealing it (alert): %v", gr.g.Address, err)
		if gr.g.Release {
			gr.op.Unlock()
			ok := n.release(ctx, gr)
			gr.op.Lock()
			return ok
		}
	} else {
		n.emit(gr, EventTakeoverFailed, true, "takeover of %s failed: %v", gr.g.Address, err)
	}
	n.backoff(gr)
	return false
}

// release asks the peer's sft to release the group, then takes it.
func (n *Node) release(ctx context.Context, gr *groupRun) bool {
	gr.op.Lock()
	defer gr.op.Unlock()
	defer n.backoff(gr)
	cctx, cancel := context.WithTimeout(ctx, wireTimeout)
	rep, err := Call(cctx, n.cfg.PeerAddr.String(), n.cfg.Key, OpRelease, gr.g.Name, n.cfg.Node, false)
	cancel()
	if err != nil {
		n.emit(gr, EventReleaseRefused, true, "release request for %s to %s failed: %v (alert only)", gr.g.Name, n.cfg.Peer, err)
		return false
	}
	if !rep.OK {
		n.emit(gr, EventReleaseRefused, true, "%s refused to release %s: %s", n.cfg.Peer, gr.g.Name, rep.Reason)
		return false
	}
	if err := n.opt.Local.Online(ctx, gr.g.Name); err != nil {
		n.emit(gr, EventTakeoverFailed, false, "%s released %s but bringing it online here failed: %v", n.cfg.Peer, gr.g.Name, err)
		return false
	}
	n.setRole(gr, Holder)
	n.emit(gr, EventMoved, false, "orderly move: %s released %s (its service was dead), online here", n.cfg.Peer, gr.g.Name)
	return true
}

// handle serves the interconnect.
func (n *Node) handle(ctx context.Context, r Request) (bool, string) {
	if r.From != n.cfg.Peer {
		return false, fmt.Sprintf("unknown node %q", r.From)
	}
	if r.Op == OpStatus {
		return true, "up"
	}
	gr, err := n.group(r.Group)
	if err != nil {
		return false, err.Error()
	}
	gr.op.Lock()
	defer gr.op.Unlock()
	switch r.Op {
	case OpRelease:
		if !n.opt.Local.Holds(gr.g.Name) {
			return false, "not holding it"
		}
		if !r.Admin {
			if gr.check == nil {
				return false, "no functional check configured here to confirm the service is dead"
			}
			cctx, cancel := context.WithTimeout(ctx, gr.check.Timeout())
			cerr := gr.check.Check(cctx)
			cancel()
			if cerr == nil {
				n.emit(gr, EventReleaseRefused, false, "%s asked to release %s but the service answers here: refused", r.From, gr.g.Name)
				return false, "the service answers here"
			}
		}
		if err := n.opt.Local.Offline(ctx, gr.g.Name); err != nil {
			return false, fmt.Sprintf("offline failed: %v", err)
		}
		n.setRole(gr, Watcher)
		n.emit(gr, EventReleased, false, "released %s to %s (admin %v)", gr.g.Name, r.From, r.Admin)
		return true, "released"
	case OpTake:
		if err := n.opt.Local.Online(ctx, gr.g.Name); err != nil {
			return false, fmt.Sprintf("online failed: %v", err)
		}
		n.setRole(gr, Holder)
		n.emit(gr, EventMoved, false, "moved here at %s's request", r.From)
		return true, "online"
	}
	return false, fmt.Sprintf("unknown op %q", r.Op)
}

// Move moves a group to node to (this node or the peer) in order: the
// holder takes it offline first, then the other brings it online. It is
// the manual failback.
func (n *Node) Move(ctx context.Context, group, to string) error {
	gr, err := n.group(group)
	if err != nil {
		return err
	}
	if to != n.cfg.Node && to != n.cfg.Peer {
		return resource.ConfigError("to", to, "must be %q or %q", n.cfg.Node, n.cfg.Peer)
	}
	gr.op.Lock()
	defer gr.op.Unlock()
	peer := n.cfg.PeerAddr.String()
	if to == n.cfg.Node {
		if n.opt.Local.Holds(group) {
			return nil
		}
		rep, err := Call(ctx, peer, n.cfg.Key, OpRelease, group, n.cfg.Node, true)
		if err != nil {
			return fmt.Errorf("peer: move %s here: %w", group, err)
		}
		if !rep.OK {
			return fmt.Errorf("peer: move %s here: %s refused: %s", group, n.cfg.Peer, rep.Reason)
		}
		if err := n.opt.Local.Online(ctx, group); err != nil {
			return fmt.Errorf("peer: move %s here: %w", group, err)
		}
		n.setRole(gr, Holder)
		n.emit(gr, EventMoved, false, "moved here from %s", n.cfg.Peer)
		return nil
	}
	if !n.opt.Local.Holds(group) {
		return fmt.Errorf("peer: move %s to %s: not held here", group, to)
	}
	if err := n.opt.Local.Offline(ctx, group); err != nil {
		return fmt.Errorf("peer: move %s to %s: %w", group, to, err)
	}
	rep, err := Call(ctx, peer, n.cfg.Key, OpTake, group, n.cfg.Node, true)
	if err == nil && !rep.OK {
		err = errors.New(rep.Reason)
	}
	if err != nil {
		// Roll back: serve it here again.
		if oerr := n.opt.Local.Online(context.WithoutCancel(ctx), group); oerr != nil {
			n.setRole(gr, Watcher)
			return fmt.Errorf("peer: move %s to %s: %w; and back online here: %v", group, to, err, oerr)
		}
		return fmt.Errorf("peer: move %s to %s (still here): %w", group, to, err)
	}
	n.setRole(gr, Watcher)
	n.emit(gr, EventMoved, false, "moved to %s", to)
	return nil
}
