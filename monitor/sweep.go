package monitor

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/sftkit/sft/resource"
)

// sweeper drives the LooksAlive and IsAlive schedules of the monitor's
// pollers: one ticker per distinct interval and check for the whole
// monitor, instead of one per resource or per group (an idle monitor's
// cost then does not grow with the number of groups or resources). For a
// resource that answers from memory (resource.InstantChecker,
// resource.InstantIsAliveChecker) it calls the check inline, so a healthy
// poll wakes no per-resource goroutine and arms no per-resource timer; for
// any other resource it posts the check to the resource's poller, which
// runs it on a goroutine started for it.
type sweeper struct {
	m       *Monitor
	mu      sync.Mutex
	buckets map[bucketKey]*bucket
}

// bucketKey names a bucket: its interval, and whether it runs IsAlive.
type bucketKey struct {
	every time.Duration
	deep  bool
}

type bucket struct {
	every   time.Duration
	entries map[*sweepEntry]struct{}
	stop    chan struct{}
	runner  atomic.Int64 // which goroutine sweeps; changed under sweeper.mu
	stopped bool
}

// sweepEntry is one online resource's registration for one check, part
// of its poller.
type sweepEntry struct {
	p        *poller
	deep     bool // IsAlive, not LooksAlive
	instant  resource.InstantChecker
	thorough resource.InstantIsAliveChecker
	remove   func() // unregisters it; set under p.mu
}

func (s *sweeper) add(e *sweepEntry, every time.Duration) (remove func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.buckets == nil {
		s.buckets = make(map[bucketKey]*bucket)
	}
	k := bucketKey{every, e.deep}
	b := s.buckets[k]
	if b == nil {
		b = &bucket{every: every, entries: make(map[*sweepEntry]struct{}), stop: make(chan struct{})}
		s.buckets[k] = b
		s.m.wg.Go(func() { s.run(b, 0) })
	}
	b.entries[e] = struct{}{}
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(b.entries, e)
		if len(b.entries) == 0 && s.buckets[k] == b {
			delete(s.buckets, k)
			b.stopped = true
			close(b.stop)
		}
	}
}

// run sweeps b every b.every while it is b's runner. A runner stuck in an
// inline call is replaced (respawn) and exits when the call returns.
func (s *sweeper) run(b *bucket, runner int64) {
	t := time.NewTicker(b.every)
	defer t.Stop()
	var list []*sweepEntry
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
		}
		s.mu.Lock()
		if b.runner.Load() != runner {
			s.mu.Unlock()
			return
		}
		list = list[:0]
		for e := range b.entries {
			list = append(list, e)
		}
		s.mu.Unlock()
		for _, e := range list {
			e.p.g.sweepOne(e, func() { s.respawn(b, runner) })
			if b.runner.Load() != runner { // replaced while stuck in that call
				return
			}
		}
		clear(list)
	}
}

// respawn hands b's sweep to a new goroutine because runner is stuck in a
// call that outlived its timeout.
func (s *sweeper) respawn(b *bucket, runner int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b.runner.Load() != runner || b.stopped {
		return
	}
	next := b.runner.Add(1)
	s.m.wg.Go(func() { s.run(b, next) })
}

// sweepOne runs one due check: inline for an instant resource whose slot
// is free, under the poller's watchdog, else by posting it to the poller
// (whose worker waits for the slot). stuck is called if the inline call
// outlives its timeout.
func (g *group) sweepOne(e *sweepEntry, stuck func()) {
	p := e.p
	if p.ctx.Err() != nil {
		return
	}
	x := p.x
	method, fn, due, failed := MethodLooksAlive, x.r.LooksAlive, wLooks, wConfirm
	instant := e.instant != nil && e.instant.LooksAliveInstant()
	if e.deep {
		method, fn, due, failed = MethodIsAlive, x.r.IsAlive, wDeep, wFailed
		instant = e.thorough != nil && e.thorough.IsAliveInstant()
	}
	if instant {
		select {
		case x.sem <- struct{}{}:
			err, abandoned := p.w.run(p.ctx, method, fn, stuck)
			if err != nil && !abandoned && p.ctx.Err() == nil {
				p.kick(failed, err)
			}
			return
		default:
			// The other check (the LooksAlive and IsAlive sweeps coincide
			// every IsAliveInterval) or an operation holds the slot: defer
			// the check to the poller, which waits for the slot, rather than
			// skip it for a whole interval.
		}
	}
	p.kick(due, nil) // coalesced with one still pending
}
