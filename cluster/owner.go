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
	mu     sync.Mutex
	wg     sync.WaitGroup
	lease  bool
	gained bool                           // the lease was held at least once
	local  map[string]monitor.GroupStatus // latest from the monitor's Watch
	op     map[string]string              // "online", "offline", "fence" in flight
	fenced map[string]uint64              // epochs at or below this are not acted on
	online map[string]uint64              // the epoch the group last came online at
	failed map[string]uint64              // the epoch a failure was reported at
	sent   map[string]uint64              // the epoch a Release or reclaim was sent at
	held   map[string]held                // Online refused: held elsewhere
	seq    map[string]uint64              // the local status Seq the last op started at
	last   map[string]string              // the last op's kind
}

type held struct {
	epoch uint64
	retry time.Time
}

func (o *owner) init() {
	o.local, o.op, o.fenced, o.online = map[string]monitor.GroupStatus{}, map[string]string{}, map[string]uint64{}, map[string]uint64{}
	o.failed, o.sent, o.held, o.seq = map[string]uint64{}, map[string]uint64{}, map[string]held{}, map[string]uint64{}
	o.last = map[string]string{}
}

func (o *owner) setLease(v bool) {
	o.mu.Lock()
	o.lease = v
	if v {
		o.gained = true
	}
	o.mu.Unlock()
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

// ownerLoop brings this node's groups online and offline. At start it
// fences every group: this node holds no lease yet, so whatever a previous
// run left behind must go (see the package doc: no adoption in cluster
// mode); groups it still owns come back with a new epoch once it holds
// its lease. Then it reconciles on every change.
func (n *Node) ownerLoop() {
	n.fence(n.groups, "start without a lease")
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
		if !o.gained {
			o.fenced[name] = max(o.fenced[name], g.Epoch) // seen before the first lease: old
		}
		loc, ok := o.local[name]
		owned := g.Owner == n.cfg.Name && !g.Stopped && !g.Failed
		fresh := g.Epoch > o.fenced[name]
		draining := owned && g.MoveTo != ""
		h := o.held[name]
		if owned && ok && loc.FailedAndStopped() && h.epoch != g.Epoch && o.online[name] == g.Epoch && o.failed[name] != g.Epoch {
			// It failed here after it came online: report it (the
			// leader moves it); never restart it here on our own.
			o.failed[name] = g.Epoch
			n.reportFailure(name, g.Epoch, classOf(loc.Class), loc.Reason)
		}
		want := owned && !draining && lease && fresh && o.failed[name] != g.Epoch &&
			!(h.epoch == g.Epoch && time.Now().Before(h.retry))
		op := o.op[name]
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
			n.startOp(name, "online", g)
		case !want && !lease && !localDown(loc, ok) && op != "fence" && again("fence"):
			n.startOp(name, "fence", g) // no lease: down at once
		case !want && lease && !localDown(loc, ok) && (op == "" || op == "online") && loc.Target == resource.StateOnline && again("offline"):
			n.startOp(name, "offline", g)
		case !want && lease && ok && loc.Target == resource.StateOffline && loc.State == resource.StateStopFailed && op == "" && again("offline"):
			n.startOp(name, "offline", g) // try the stop again
		}
		switch {
		case draining && !g.Released && localDown(loc, ok) && op == "" && o.sent[name] != g.Epoch:
			o.sent[name] = g.Epoch
			n.send(state.Release{Group: name, Node: n.cfg.Name, Epoch: g.Epoch})
		case owned && !fresh && lease && self != nil && self.State == policy.NodeUp && o.sent[name] != g.Epoch && g.Epoch > 0:
			// This node owned the group when it lost its lease (or
			// before it started): it may host it again only with a new
			// epoch, which also defeats any decision still in flight
			// that was made while it was cut off.
			o.sent[name] = g.Epoch
			n.send(state.SetOwner{Group: name, Owner: n.cfg.Name, PrevEpoch: g.Epoch, Kind: state.KindPlace,
				Reason: "reclaimed by its owner after its lease returned"})
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

// startOp runs Online, Offline or Fence of one group in the background
// (o.mu held).
func (n *Node) startOp(name, op string, g *state.Group) {
	o := &n.own
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
			n.online(name, epoch)
		case "offline":
			if err := n.cfg.Local.Offline(n.ctx, name); err != nil && n.ctx.Err() == nil && !errors.Is(err, monitor.ErrSuperseded) {
				n.emit(Event{Kind: EventError, Group: name, Detail: "offline: " + err.Error()})
			} else if err == nil {
				n.emit(Event{Kind: EventOffline, Group: name, Node: n.cfg.Name, Epoch: epoch})
			}
		case "fence":
			o.mu.Lock()
			loc := o.local[name]
			o.mu.Unlock()
			n.fence([]string{name}, fmt.Sprintf("no lease (here %s, target %s)", loc.State, loc.Target))
		}
	})
}

func (n *Node) online(name string, epoch uint64) {
	err := n.cfg.Local.Online(n.ctx, name)
	o := &n.own
	switch {
	case err == nil:
		o.mu.Lock()
		o.online[name] = epoch
		delete(o.held, name)
		o.mu.Unlock()
		n.emit(Event{Kind: EventOnline, Group: name, Node: n.cfg.Name, Epoch: epoch})
	case n.ctx.Err() != nil || errors.Is(err, monitor.ErrSuperseded) || errors.Is(err, context.Canceled):
	case n.cfg.HeldElsewhere(err):
		o.mu.Lock()
		first := o.held[name].epoch != epoch
		o.held[name] = held{epoch: epoch, retry: time.Now().Add(n.timing.Window)}
		o.mu.Unlock()
		time.AfterFunc(n.timing.Window, n.poke)
		suspect := n.previousOwner(name)
		n.emit(Event{Kind: EventFenceNeeded, Group: name, Node: suspect, Epoch: epoch,
			Detail: fmt.Sprintf("waiting: %v", err)})
		if first && n.cfg.FenceHook != nil {
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

// previousOwner is the node the group last failed over from, as far as
// this node saw it ("" if unknown).
func (n *Node) previousOwner(group string) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.lastOwner[group]
}

// leaseLost fences every group that is not surely down here, at once and
// in parallel, bounded by Timing.Drop; from now on only a newer epoch
// brings a group online here.
func (n *Node) leaseLost(detail string) {
	st := n.snapshot()
	o := &n.own
	o.mu.Lock()
	o.lease = false
	var groups []string
	for _, name := range n.groups {
		if g := st.Groups[name]; g != nil {
			o.fenced[name] = max(o.fenced[name], g.Epoch)
		}
		if loc, ok := o.local[name]; !localDown(loc, ok) || o.op[name] == "online" {
			groups = append(groups, name)
		}
	}
	o.mu.Unlock()
	n.emit(Event{Kind: EventLeaseLost, Node: n.cfg.Name, Detail: detail})
	if n.cfg.Local != nil && len(groups) > 0 {
		n.fence(groups, "lease lost")
	}
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
