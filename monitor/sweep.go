package monitor

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sftkit/sft/resource"
)

// sweeper drives the LooksAlive schedule of the monitor's pollers: one
// ticker per distinct interval for the whole monitor, instead of one per
// resource or per group (an idle monitor's cost then does not grow with
// the number of groups). For a resource that is
// a resource.InstantChecker it calls LooksAlive inline, so a healthy poll
// wakes no per-resource goroutine at all; for any other resource it tells
// the resource's poller that a LooksAlive is due.
type sweeper struct {
	m       *Monitor
	mu      sync.Mutex
	buckets map[time.Duration]*bucket
}

type bucket struct {
	every   time.Duration
	entries map[*sweepEntry]struct{}
	stop    chan struct{}
	runner  atomic.Int64 // which goroutine sweeps; changed under sweeper.mu
	stopped bool
}

// sweepEntry is one online resource's registration.
type sweepEntry struct {
	g       *group
	x       *res
	w       *watchdog       // the poller's: bounds the inline call too
	ctx     context.Context // the poller's: ends when polling stops
	instant resource.InstantChecker
	due     chan struct{} // a LooksAlive is due (non-instant); buffered 1
	failed  chan error    // an inline LooksAlive failed; buffered 1
}

func (s *sweeper) add(e *sweepEntry, every time.Duration) (remove func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.buckets == nil {
		s.buckets = make(map[time.Duration]*bucket)
	}
	b := s.buckets[every]
	if b == nil {
		b = &bucket{every: every, entries: make(map[*sweepEntry]struct{}), stop: make(chan struct{})}
		s.buckets[every] = b
		s.m.wg.Go(func() { s.run(b, 0) })
	}
	b.entries[e] = struct{}{}
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(b.entries, e)
		if len(b.entries) == 0 && s.buckets[every] == b {
			delete(s.buckets, every)
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
			e.g.sweepOne(e, func() { s.respawn(b, runner) })
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

// sweepOne runs one due LooksAlive: inline for an instant resource whose
// slot is free, under the poller's watchdog, else by waking its poller.
// stuck is called if the inline call outlives its timeout.
func (g *group) sweepOne(e *sweepEntry, stuck func()) {
	if e.ctx.Err() != nil {
		return
	}
	x := e.x
	if e.instant != nil && e.instant.LooksAliveInstant() {
		select {
		case x.sem <- struct{}{}:
		default:
			return // a check or an operation is running: skip this round
		}
		err, abandoned := e.w.run(e.ctx, MethodLooksAlive, x.r.LooksAlive, stuck)
		if err != nil && !abandoned && e.ctx.Err() == nil {
			select {
			case e.failed <- err:
			default:
			}
		}
		return
	}
	select {
	case e.due <- struct{}{}:
	default: // the poller is still busy with the previous one
	}
}
