package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/sftkit/sft/cluster/state"
	"github.com/sftkit/sft/monitor"
	"github.com/sftkit/sft/policy"
	"github.com/sftkit/sft/resource"
)

// owner is the owner loop's bookkeeping, per group.
type owner struct {
	mu    sync.Mutex
	wg    sync.WaitGroup
	lease bool
	// stale: from start and every lease loss until this node's copy of
	// the state holds every entry committed before it (re)gained its
	// lease (synced). Until then nothing comes online here: a takeover
	// committed while it had no lease may not have reached it yet. At the
	// sync, every group the state names this node the owner of is marked
	// fenced at its epoch: it comes back only at a new epoch of this
	// node's own (the reclaim).
	stale  bool
	gen    uint64                         // grows at every lease loss (a sync begun before counts for nothing)
	local  map[string]monitor.GroupStatus // latest from the monitor's Watch
	op     map[string]string              // "online", "offline", "fence" in flight
	fenced map[string]uint64              // epochs at or below this are not acted on
	online map[string]uint64              // the epoch the group last came online at
	failed map[string]uint64              // the epoch a failure was reported at
	sent   map[string]uint64              // the epoch a Release or reclaim was sent at
	held   map[string]held                // Online refused: held elsewhere
	seq    map[string]uint64              // the local status Seq the last op started at
	last   map[string]string              // the last op's kind
	// adopt: untouched since this node started. What a previous run left
	// behind may still run; it is adopted (monitor Probe) if this node
	// still owns the group once it holds its lease, and fenced otherwise.
	adopt map[string]bool
	start time.Time // when the owner loop started
}

type held struct {
	epoch  uint64
	retry  time.Time
	hooked bool // Config.FenceHook was called for this epoch
}

func (o *owner) init() {
	o.local, o.op, o.fenced, o.online = map[string]monitor.GroupStatus{}, map[string]string{}, map[string]uint64{}, map[string]uint64{}
	o.failed, o.sent, o.held, o.seq = map[string]uint64{}, map[string]uint64{}, map[string]held{}, map[string]uint64{}
	o.last, o.adopt = map[string]string{}, map[string]bool{}
	o.stale = true
}

// leaseGained: the lease runs again; sync the state (see owner.stale).
func (n *Node) leaseGained() {
	o := &n.own
	o.mu.Lock()
	o.lease = true
	gen, stale := o.gen, o.stale
	o.mu.Unlock()
	if !stale || n.cfg.Local == nil {
		return
	}
	o.wg.Go(func() {
		for n.ctx.Err() == nil {
			ctx, cancel := context.WithTimeout(n.ctx, 5*time.Second)
			err := n.sync(ctx)
			cancel()
			o.mu.Lock()
			if o.gen != gen {
				o.mu.Unlock()
				return // lost again meanwhile: the next gain syncs
			}
			if err == nil {
				st := n.snapshot()
				for _, name := range n.groups {
					if g := st.Groups[name]; g != nil && g.Owner == n.cfg.Name {
						o.fenced[name] = max(o.fenced[name], g.Epoch)
					}
				}
				o.stale = false
				o.mu.Unlock()
				n.poke()
				return
			}
			o.mu.Unlock()
			n.log.Debug("cluster: state sync after the lease returned failed; retrying", "err", err)
		}
	})
}

// sync returns once this node's copy of the state holds every command
// committed before the call: the leader's barrier, then the leader's
// applied index reached here.
func (n *Node) sync(ctx context.Context) error {
	idx, err := n.leaderIndex(ctx)
	if err != nil {
		return err
	}
	return n.waitState(ctx, func(s *state.State) (bool, error) { return s.Index >= idx, nil })
}

func (o *owner) wait() { o.wg.Wait() }

// watchLocal keeps the monitor's latest status of every group.
func (n *Node) watchLocal(w *monitor.Watch) {
	defer w.Close()
	stop := context.AfterFunc(n.ctx, w.Close)
	defer stop()
	for {
		sts, err := w.Next(n.ctx)
		if err != nil {
			return
		}
		n.own.mu.Lock()
		for _, s := range sts {
			if !s.Managed && !s.Removed {
				n.log.Warn("cluster: group is not in managed mode: the monitor would retry it here on its own", "group", s.Name)
			}
			n.own.local[s.Name] = s
		}
		n.own.mu.Unlock()
		n.poke()
	}
}

// ownerLoop brings this node's groups online and offline, reconciling on
// every change. At start it touches nothing: a group the state still
// names this node the owner of is reclaimed with a new epoch once the node
// holds its lease, and what a previous run left running is then adopted
// (monitor Probe); a group owned elsewhere or by nobody is fenced at once,
// and every untouched group is fenced if the node holds no lease within
// the adoption grace (see adoptGrace).
func (n *Node) ownerLoop() {
	o := &n.own
	o.mu.Lock()
	o.start = time.Now()
	for _, g := range n.groups {
		o.adopt[g] = true
	}
	o.mu.Unlock()
	time.AfterFunc(n.adoptGrace(), n.poke)
	t := time.NewTicker(n.timing.Window / 2)
	defer t.Stop()
	for {
		n.reconcile()
		select {
		case <-n.ctx.Done():
			return
		case <-n.okick:
		case <-t.C:
		}
	}
}

// adoptGrace is how long a starting node waits for its lease before it
// fences what it has not adopted: the echo holdoff (2W, the longest the
// others wait before they echo a node they had lost) plus W.
func (n *Node) adoptGrace() time.Duration { return n.holdoff + n.timing.Window }

func localDown(s monitor.GroupStatus, ok bool) bool {
	return !ok || s.Removed || (s.Target == resource.StateOffline && s.State == resource.StateOffline) || s.FailedAndStopped()
}

// reconcile is one pass of the owner loop over every group.
func (n *Node) reconcile() {
	st := n.snapshot()
	_, leaseNow := n.det.Lease()
	self := st.Nodes[n.cfg.Name]
	o := &n.own
	o.mu.Lock()
	defer o.mu.Unlock()
	if n.ctx.Err() != nil {
		return
	}
	lease := o.lease && leaseNow
	for _, name := range n.groups {
		g := st.Groups[name]
		if g == nil {
			g = &state.Group{Name: name}
		}
		loc, ok := o.local[name]
		owned := g.Owner == n.cfg.Name && !g.Stopped && !g.Failed
		fresh := g.Epoch > o.fenced[name] && !o.stale
		draining := owned && g.MoveTo != ""
		h := o.held[name]
		if owned && ok && loc.FailedAndStopped() && h.epoch != g.Epoch && o.online[name] == g.Epoch && o.failed[name] != g.Epoch {
			// It failed here after it came online: report it (the
			// leader moves it); never restart it here on our own.
			o.failed[name] = g.Epoch
			n.reportFailure(name, g.Epoch, classOf(loc.Class), loc.Reason)
		}
		want := owned && !draining && lease && fresh && o.failed[name] != g.Epoch && n.onlineCtx.Err() == nil &&
			!(h.epoch == g.Epoch && time.Now().Before(h.retry))
		op := o.op[name]
		if o.adopt[name] && op == "" {
			late := time.Since(o.start) >= n.adoptGrace()
			switch {
			case g.Epoch > 0 && (g.Owner != n.cfg.Name || g.Stopped || g.Failed):
				n.startOp(name, "fence", g, fmt.Sprintf("start: owned by %q at epoch %d", g.Owner, g.Epoch))
				continue
			case late && !(owned && lease && self != nil && self.State == policy.NodeUp):
				n.startOp(name, "fence", g, fmt.Sprintf("start: not the owner with a lease within %s", n.adoptGrace()))
				continue
			}
		}
		// The last op's outcome may not have reached the watch yet: do
		// not repeat an op until the local status has changed since.
		again := func(kind string) bool { return o.last[name] != kind || !ok || loc.Seq > o.seq[name] }
		// A group that failed here is still being stopped by the monitor
		// (OfflinePending, Target Offline): never bring it online again
		// now; once it is FailedAndStopped it is reported above (or, if
		// it failed at an older epoch, brought online at this one).
		stopping := ok && loc.Failed && !loc.FailedAndStopped() && loc.State != resource.StateStopFailed
		switch {
		case want && op == "" && !stopping && again("online") && (!ok || loc.Target != resource.StateOnline || loc.FailedAndStopped()):
			n.startOp(name, "online", g, "")
		case !want && !lease && !localDown(loc, ok) && op != "fence" && again("fence"):
			n.startOp(name, "fence", g, fmt.Sprintf("no lease (here %s, target %s)", loc.State, loc.Target)) // down at once
		case !want && lease && !localDown(loc, ok) && (op == "" || op == "online") && loc.Target == resource.StateOnline && again("offline"):
			n.startOp(name, "offline", g, "")
		case !want && lease && ok && loc.Target == resource.StateOffline && loc.State == resource.StateStopFailed && op == "" && again("offline"):
			n.startOp(name, "offline", g, "") // try the stop again
		}
		switch {
		case draining && !g.Released && localDown(loc, ok) && op == "" && o.sent[name] != g.Epoch:
			o.sent[name] = g.Epoch
			n.send(state.Release{Group: name, Node: n.cfg.Name, Epoch: g.Epoch})
		case owned && !draining && !fresh && !o.stale && lease && self != nil && self.State == policy.NodeUp && o.sent[name] != g.Epoch && g.Epoch > 0:
			// This node lost its lease (or started) since it last
			// acted on this group: it may host it again only at a new
			// epoch of its own, which also defeats any decision still
			// in flight that was made while it was cut off. Not while
			// it is being drained: it releases it instead (above).
			o.sent[name] = g.Epoch
			n.send(state.SetOwner{Group: name, Owner: n.cfg.Name, PrevEpoch: g.Epoch, Kind: state.KindPlace,
				Reason: "reclaimed by its owner after a restart or a lost lease"})
		}
	}
}

// send proposes a command in the background.
func (n *Node) send(c state.Command) {
	n.own.wg.Go(func() {
		ctx, cancel := context.WithTimeout(n.ctx, 10*time.Second)
		defer cancel()
		if _, err := n.propose(ctx, c); err != nil && n.ctx.Err() == nil {
			n.log.Debug("cluster: request not applied", "cmd", c.Type(), "err", err)
		}
		n.poke()
	})
}

func (n *Node) reportFailure(group string, epoch uint64, class resource.Class, reason string) {
	n.send(state.RecordFailure{Group: group, Node: n.cfg.Name, Class: class, Reason: reason})
}

// startOp runs Online, Offline or Fence (for why) of one group in the
// background (o.mu held). The first op after start on a group ends its
// adoption: an Online adopts (Probe first), anything else does not.
func (n *Node) startOp(name, op string, g *state.Group, why string) {
	o := &n.own
	adopt := o.adopt[name]
	delete(o.adopt, name)
	o.op[name] = op
	o.seq[name], o.last[name] = o.local[name].Seq, op
	epoch := g.Epoch
	o.wg.Go(func() {
		defer func() {
			o.mu.Lock()
			if o.op[name] == op {
				delete(o.op, name)
			}
			o.mu.Unlock()
			n.poke()
		}()
		switch op {
		case "online":
			n.online(name, epoch, adopt)
		case "offline":
			if err := n.cfg.Local.Offline(n.ctx, name); err != nil && n.ctx.Err() == nil && !errors.Is(err, monitor.ErrSuperseded) {
				n.emit(Event{Kind: EventError, Group: name, Detail: "offline: " + err.Error()})
			} else if err == nil {
				n.emit(Event{Kind: EventOffline, Group: name, Node: n.cfg.Name, Epoch: epoch})
			}
		case "fence":
			n.fence([]string{name}, why)
		}
	})
}

func (n *Node) online(name string, epoch uint64, adopt bool) {
	if adopt {
		// This node owned the group before it (re)started: keep what
		// still runs rather than restart it. The monitor's Probe
		// terminates what it cannot tell; Online brings up the rest.
		r, err := n.cfg.Local.Probe(n.onlineCtx, name)
		switch {
		case err != nil && n.onlineCtx.Err() == nil:
			n.log.Warn("cluster: probe before adoption failed", "group", name, "err", err)
		case r.Adopted:
			n.emit(Event{Kind: EventAdopted, Group: name, Node: n.cfg.Name, Epoch: epoch,
				Detail: fmt.Sprintf("found running: %v; not running: %v; unknown (terminated): %v", r.Running, r.NotRunning, r.Unknown)})
		}
	}
	err := n.cfg.Local.Online(n.onlineCtx, name)
	o := &n.own
	switch {
	case n.onlineCtx.Err() != nil: // closing: Close takes it offline
	case err == nil:
		o.mu.Lock()
		o.online[name] = epoch
		delete(o.held, name)
		o.mu.Unlock()
		n.emit(Event{Kind: EventOnline, Group: name, Node: n.cfg.Name, Epoch: epoch})
	case n.ctx.Err() != nil || errors.Is(err, monitor.ErrSuperseded) || errors.Is(err, context.Canceled):
	case n.cfg.HeldElsewhere(err):
		// The hook is called once per epoch, and only with a suspect: the
		// state this Online acted on can be applied before stateChanged
		// recorded the previous owner, and a hook told to fence nobody
		// would be spent (TestFenceNeeded under stress); the retry one W
		// later knows it.
		suspect := n.previousOwner(name)
		o.mu.Lock()
		h := o.held[name]
		hook := n.cfg.FenceHook != nil && suspect != "" && (h.epoch != epoch || !h.hooked)
		o.held[name] = held{epoch: epoch, retry: time.Now().Add(n.timing.Window), hooked: hook || (h.epoch == epoch && h.hooked)}
		o.mu.Unlock()
		time.AfterFunc(n.timing.Window, n.poke)
		n.emit(Event{Kind: EventFenceNeeded, Group: name, Node: suspect, Epoch: epoch,
			Detail: fmt.Sprintf("waiting: %v", err)})
		if hook {
			o.wg.Go(func() {
				ctx, cancel := context.WithTimeout(n.ctx, time.Minute)
				defer cancel()
				if herr := n.cfg.FenceHook(ctx, FenceRequest{Group: name, Epoch: epoch, Suspect: suspect, Err: err}); herr != nil {
					n.emit(Event{Kind: EventError, Group: name, Node: suspect, Epoch: epoch, Detail: "fence hook: " + herr.Error()})
				}
			})
		}
	default:
		o.mu.Lock()
		report := o.failed[name] != epoch
		o.failed[name] = epoch
		o.mu.Unlock()
		if report {
			n.reportFailure(name, epoch, resource.ClassOf(err), err.Error())
		}
	}
}

// previousOwner is the fence suspect of the group (suspectAfter), as far
// as this node saw it ("" if unknown).
func (n *Node) previousOwner(group string) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.lastOwner[group]
}

// leaseLost fences every group that is not surely down here, at once and
// in parallel, bounded by Timing.Drop; from now on only a newer epoch of
// this node's own (a reclaim) brings a group online here. It runs on the
// detector's goroutine, so the fence runs on its own: heartbeats keep
// going out meanwhile (a fence that held them back would make the others
// find this node silent, and move its groups, after a mere lease loss).
// While it runs, the group's op is "fence": nothing else is started.
func (n *Node) leaseLost(detail string) {
	st := n.snapshot()
	o := &n.own
	o.mu.Lock()
	o.lease = false
	o.gen++
	o.stale = true
	var groups []string
	for _, name := range n.groups {
		if g := st.Groups[name]; g != nil {
			o.fenced[name] = max(o.fenced[name], g.Epoch)
		}
		if loc, ok := o.local[name]; !localDown(loc, ok) || o.op[name] == "online" || o.adopt[name] {
			groups = append(groups, name)
			delete(o.adopt, name)
			o.op[name] = "fence"
		}
	}
	o.mu.Unlock()
	n.emit(Event{Kind: EventLeaseLost, Node: n.cfg.Name, Detail: detail})
	if n.cfg.Local == nil || len(groups) == 0 {
		return
	}
	o.wg.Go(func() {
		n.fence(groups, "lease lost")
		o.mu.Lock()
		for _, g := range groups {
			if o.op[g] == "fence" {
				delete(o.op, g)
			}
		}
		o.mu.Unlock()
		n.poke()
	})
}

// fence fences groups in parallel within Timing.Drop.
func (n *Node) fence(groups []string, why string) {
	ctx, cancel := context.WithTimeout(context.Background(), n.timing.Drop)
	defer cancel()
	var wg sync.WaitGroup
	for _, g := range groups {
		wg.Go(func() {
			r, err := n.cfg.Local.Fence(ctx, g)
			detail := why + ": surely down"
			if err != nil || !r.Down {
				detail = fmt.Sprintf("%s: NOT surely down (stop failed: %v): %v", why, r.StopFailed, err)
			}
			n.emit(Event{Kind: EventFenced, Group: g, Node: n.cfg.Name, Detail: detail})
		})
	}
	wg.Wait()
}

func classOf(s string) resource.Class {
	c, err := resource.ParseClass(s)
	if err != nil {
		return resource.ClassTransient
	}
	return c
}
