package monitor

import (
	"context"
	"sync"
	"time"

	"github.com/sftkit/sft/resource"
)

// sweeper drives the LooksAlive schedule of a group's pollers: one ticker
// per distinct interval instead of one per resource. For a resource that is
// a resource.InstantChecker it calls LooksAlive inline, so a healthy poll
// wakes no per-resource goroutine at all; for any other resource it tells
// the resource's poller that a LooksAlive is due.
type sweeper struct {
	g       *group
	mu      sync.Mutex
	buckets map[time.Duration]*bucket
}

type bucket struct {
	entries map[*sweepEntry]struct{}
	stop    chan struct{}
	list    []*sweepEntry // reused between sweeps; owned by the bucket goroutine
}

// sweepEntry is one online resource's registration.
type sweepEntry struct {
	x       *res
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
		b = &bucket{entries: make(map[*sweepEntry]struct{}), stop: make(chan struct{})}
		s.buckets[every] = b
		s.g.m.wg.Go(func() { s.run(b, every) })
	}
	b.entries[e] = struct{}{}
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(b.entries, e)
		if len(b.entries) == 0 && s.buckets[every] == b {
			delete(s.buckets, every)
			close(b.stop)
		}
	}
}

func (s *sweeper) run(b *bucket, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
		}
		s.mu.Lock()
		b.list = b.list[:0]
		for e := range b.entries {
			b.list = append(b.list, e)
		}
		s.mu.Unlock()
		for _, e := range b.list {
			s.g.sweepOne(e)
		}
		clear(b.list)
	}
}

// sweepOne runs one due LooksAlive: inline for an instant resource whose
// slot is free, else by waking its poller.
func (g *group) sweepOne(e *sweepEntry) {
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
		if e.ctx.Err() != nil {
			<-x.sem
			return
		}
		var start time.Time
		o := g.m.cfg.Observer
		if o != nil {
			start = time.Now()
		}
		err := x.r.LooksAlive(e.ctx)
		<-x.sem
		if o != nil {
			o(CallInfo{Group: g.name, Resource: x.spec.Name, Type: x.spec.Type, Method: MethodLooksAlive, Duration: time.Since(start), Err: err})
		}
		if err != nil {
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
