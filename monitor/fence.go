package monitor

import (
	"context"
	"fmt"
	"sync"

	"github.com/sftkit/sft/policy"
	"github.com/sftkit/sft/resource"
)

// The group operations the cluster layer asks for besides Online and
// Offline: fence, probe, live update.

// startFence terminates every resource at once, in parallel, whatever it
// is doing (Terminate may overlap any call): the fence of bug 5 and of
// Monitor.Fence.
func (g *group) startFence() {
	g.fencing = true
	for _, x := range g.res {
		g.stopPoller(x)
		if x.opCancel != nil {
			x.opCancel(fmt.Errorf("%w: fenced", ErrSuperseded))
		}
		x.epoch++ // what was in flight is stale: the fence decides
		x.busy = true
		x.retryStop = false
		if x.state != resource.StateOffline && x.state != resource.StateStopFailed {
			g.setState(x, resource.StateOfflinePending, "fencing")
		}
	}
	g.m.wg.Go(func() {
		errs := make([]error, len(g.res))
		var wg sync.WaitGroup
		for i, x := range g.res {
			wg.Go(func() { errs[i] = g.stopHard(x, "fence") })
		}
		wg.Wait()
		g.send(groupEvent{kind: evFenceDone, errs: errs})
	})
}

// startProbe asks every resource whether it already runs here
// (resource.Prober, else IsAlive), in parallel, each bounded by its call
// timeout.
func (g *group) startProbe() {
	g.probing = true
	for _, x := range g.res {
		x.busy = true
		x.epoch++
	}
	g.m.wg.Go(func() {
		errs := make([]error, len(g.res))
		running := make([]bool, len(g.res))
		var wg sync.WaitGroup
		for i, x := range g.res {
			wg.Go(func() {
				if p, ok := x.r.(resource.Prober); ok {
					errs[i] = g.invoke(context.Background(), x, MethodProbe, func(ctx context.Context) error {
						var err error
						running[i], err = p.Probe(ctx)
						return err
					})
					return
				}
				running[i] = g.invoke(context.Background(), x, MethodIsAlive, x.r.IsAlive) == nil
			})
		}
		wg.Wait()
		g.send(groupEvent{kind: evProbeDone, errs: errs, running: running})
	})
}

// update applies a spec change that keeps the resource set: restart
// policies and timing take effect at once; pollers restart with the new
// timing; a PollScheduler is told.
func (g *group) update(c command) {
	g.managed = c.managed || g.m.cfg.Managed
	for i, x := range g.res {
		rs := c.update[i]
		x.spec.Restart = rs.Restart
		x.spec.Timing = rs.Timing
		x.spec.TypeTiming = rs.TypeTiming
		t := policy.ResolveTiming(rs.Timing, rs.TypeTiming)
		if t == x.tm() {
			continue
		}
		x.timing.Store(&t)
		if ps, ok := x.r.(resource.PollScheduler); ok && x.scheduled {
			ps.SetPollSchedule(t)
		}
		if x.poller != nil {
			g.stopPoller(x)
			g.startPoller(x)
		}
	}
	if g.managed {
		g.cancelRetry()
		if g.failEv != nil {
			g.failEv.RetryAfter = 0
		}
	}
}

// schedulePolls gives a resource.PollScheduler its resolved timing before
// it first runs here (its first Online, or its adoption by Probe).
func (g *group) schedulePolls(x *res) {
	if ps, ok := x.r.(resource.PollScheduler); ok && !x.scheduled {
		x.scheduled = true
		ps.SetPollSchedule(x.tm())
	}
}
