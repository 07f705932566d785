package plugins

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/sftkit/sft/resource"
)

// lineage is one line of plugin processes (the shared one, or an isolated
// instance's): the current process (a gen) and the relaunch policy.
//
// Relaunch policy. A process that died within BackoffReset of its start, or
// a start that failed, counts as a failure in a row; the next launch waits
// for backoff(failures) = MinBackoff x 2^(failures-1), at most MaxBackoff,
// counted from that death, so the wait decays with time and a launch
// BackoffReset after the last death starts at once and forgets the count.
// A cleanup launch (Terminate, which must remove what the dead process left
// behind within the monitor's call timeout) never waits. Close interrupts
// a wait. When a process dies while instances are open on the lineage, a
// background relaunch starts it again after the backoff without waiting for
// a call, retrying (with growing backoff) until a process runs, the
// instances are closed or the Pool is, and then reopens the dead process's
// instances in it (proxy.preopen): so after a crash loop a process is
// ready when the monitor retries the resources (its restart policy, or
// RetryPeriod for a failed group), and Config.OnProcess reports the
// relaunch to whoever wants to retry sooner.
type lineage struct {
	h      *Pool
	launch chan struct{} // one launch at a time

	mu          sync.Mutex
	cur         *gen
	forks       int       // processes forked so far: the first is "started", later ones "relaunched"
	failures    int       // consecutive processes that died young or failed to start
	lastDeath   time.Time // of the last death or failed start
	users       int       // open instances
	relaunching bool      // a background relaunch runs
	closed      bool
	prev        *gen // the dead process whose instances the background relaunch reopens
}

func (l *lineage) current() *gen {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cur == nil || l.cur.isDead() {
		return nil
	}
	return l.cur
}

// forked counts a new process and returns its kind of ProcessEvent.
func (l *lineage) forked() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.forks++
	if l.forks == 1 {
		return ProcessStarted
	}
	return ProcessRelaunched
}

// backoffLocked is how long a launch at now still has to wait.
func (l *lineage) backoffLocked(now time.Time) time.Duration {
	if l.failures == 0 {
		return 0
	}
	since := now.Sub(l.lastDeath)
	if since >= l.h.cfg.BackoffReset {
		l.failures = 0
		return 0
	}
	d := min(l.h.cfg.MinBackoff<<min(l.failures-1, 30), l.h.cfg.MaxBackoff)
	return max(d-since, 0)
}

// ensure returns the live process, launching one if there is none: after
// the backoff, unless cleanup is set. The backoff is waited without holding
// the launch slot, so a cleanup launch is never stuck behind a background
// relaunch (or a call) that waits for it.
func (l *lineage) ensure(ctx context.Context, cleanup bool) (*gen, error) {
	for {
		g, delay, err := l.tryLaunch(ctx, cleanup)
		if g != nil || err != nil {
			return g, err
		}
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			if l.h.ctx.Err() != nil { // ctx may be the Pool's own
				return nil, errPoolClosed
			}
			return nil, fmt.Errorf("plugins: relaunch backoff (%s): %w", delay, context.Cause(ctx))
		case <-l.h.ctx.Done():
			t.Stop()
			return nil, errPoolClosed
		}
	}
}

// tryLaunch returns the live process, or launches one, or says how long
// the backoff still is.
func (l *lineage) tryLaunch(ctx context.Context, cleanup bool) (*gen, time.Duration, error) {
	select {
	case l.launch <- struct{}{}:
	case <-ctx.Done():
		if l.h.ctx.Err() != nil { // ctx may be the Pool's own
			return nil, 0, errPoolClosed
		}
		return nil, 0, fmt.Errorf("plugins: waiting for plugin start: %w", context.Cause(ctx))
	case <-l.h.ctx.Done():
		return nil, 0, errPoolClosed
	}
	defer func() { <-l.launch }()
	if !l.h.beginLaunch() {
		return nil, 0, errPoolClosed
	}
	defer l.h.launches.Done()
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil, 0, errPoolClosed
	}
	if g := l.cur; g != nil && !g.isDead() {
		l.mu.Unlock()
		return g, 0, nil
	}
	if !cleanup {
		if delay := l.backoffLocked(time.Now()); delay > 0 {
			l.mu.Unlock()
			return nil, delay, nil
		}
	}
	l.mu.Unlock()
	g, err := l.h.start(ctx, l)
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.failures++
		l.lastDeath = time.Now()
		l.relaunchLocked()
		return nil, 0, err
	}
	if l.closed {
		l.h.bg.Go(func() { g.shutdown(l.h.cfg.StopTimeout) })
		return nil, 0, errPoolClosed
	}
	l.cur = g
	return g, 0, nil
}

// died records the death of g for the backoff and starts the background
// relaunch when instances are open.
func (l *lineage) died(g *gen) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if now.Sub(g.started) < l.h.cfg.BackoffReset {
		l.failures++
	} else {
		l.failures = 0
	}
	l.lastDeath = now
	l.prev = g
	l.relaunchLocked()
}

func (l *lineage) relaunchLocked() {
	if l.closed || l.users == 0 || l.relaunching || l.h.ctx.Err() != nil {
		return
	}
	l.relaunching = true
	l.h.bg.Go(l.relaunchLoop)
}

// relaunchLoop launches a process in the background (see lineage).
func (l *lineage) relaunchLoop() {
	for {
		_, err := l.ensure(l.h.ctx, false)
		l.mu.Lock()
		if err == nil && l.prev != nil {
			// Reopen the instances of the dead process at once (bounded
			// by maxOpens), so that their restarts find them open.
			prev := l.prev
			l.prev = nil
			l.mu.Unlock()
			prev.mu.Lock()
			members := make([]*proxy, 0, len(prev.members))
			for _, p := range prev.members {
				members = append(members, p)
			}
			prev.mu.Unlock()
			for _, p := range members {
				p.preopen(prev)
			}
			l.mu.Lock()
		}
		// A plugin that cannot be relaunched (in-process) or a refused
		// binary (a pin mismatch) will not start by retrying: the next call
		// reports it.
		permanent := errors.Is(err, errNotRelaunched) || errors.Is(err, resource.ErrConfiguration)
		if err == nil || permanent || l.closed || l.users == 0 || l.h.ctx.Err() != nil {
			l.relaunching = false
			l.mu.Unlock()
			return
		}
		l.mu.Unlock()
		l.h.logger.Warn("background relaunch of the plugin failed; retrying after the backoff", "error", err)
	}
}

// use counts an instance opened on l (+1) or closed (-1).
func (l *lineage) use(delta int) {
	l.mu.Lock()
	l.users += delta
	l.mu.Unlock()
}

func (l *lineage) shutdown() {
	l.mu.Lock()
	l.closed = true
	g := l.cur
	l.mu.Unlock()
	if g != nil {
		g.shutdown(l.h.cfg.StopTimeout)
	}
}
