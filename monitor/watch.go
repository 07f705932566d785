package monitor

import (
	"context"
	"maps"
	"slices"
	"sync"
)

// Watch is a lossless, level-triggered view of every group: Next always
// returns the latest status of each group that changed since the previous
// Next. Intermediate states may be skipped (coalesced), the latest never
// is, and nothing a slow reader does blocks the monitor. Events stay lossy
// (for logs); placement decisions should read a Watch.
type Watch struct {
	m       *Monitor
	mu      sync.Mutex
	pending map[string]pendingStatus
	notify  chan struct{} // buffered 1
	ended   bool
}

// pendingStatus is a group's change not yet returned by Next: a final
// status (the first view, a removal), or the group itself, whose latest
// snapshot Next reads (so that a group changing a thousand times between
// two Nexts is copied once, not a thousand times).
type pendingStatus struct {
	seq   uint64
	g     *group
	final GroupStatus
}

func (p pendingStatus) status() GroupStatus {
	if p.g != nil {
		return p.g.snapshot()
	}
	return p.final
}

// Watch starts a watch. Its first Next returns the current status of every
// group.
func (m *Monitor) Watch() *Watch {
	w := &Watch{m: m, pending: make(map[string]pendingStatus), notify: make(chan struct{}, 1)}
	m.watchMu.Lock()
	if m.watchEnd {
		w.ended = true
	} else {
		if m.watchers == nil {
			m.watchers = make(map[*Watch]struct{})
		}
		m.watchers[w] = struct{}{}
	}
	m.watchMu.Unlock()
	for _, g := range m.Status().Groups {
		w.offer(g.Name, pendingStatus{seq: g.Seq, final: g})
	}
	return w
}

// Next waits until at least one group changed since the last Next (or the
// watch began) and returns the latest status of each changed group, by
// name. A removed group's last status has Removed set. After the monitor
// closes (or Close), Next returns what is still pending, then ErrClosed.
func (w *Watch) Next(ctx context.Context) ([]GroupStatus, error) {
	for {
		w.mu.Lock()
		if len(w.pending) > 0 {
			names := slices.Sorted(maps.Keys(w.pending))
			out := make([]GroupStatus, len(names))
			for i, n := range names {
				out[i] = w.pending[n].status()
			}
			clear(w.pending)
			w.mu.Unlock()
			return out, nil
		}
		ended := w.ended
		w.mu.Unlock()
		if ended {
			return nil, ErrClosed
		}
		select {
		case <-w.notify:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Close ends the watch.
func (w *Watch) Close() {
	w.m.watchMu.Lock()
	delete(w.m.watchers, w)
	w.m.watchMu.Unlock()
	w.end()
}

func (w *Watch) end() {
	w.mu.Lock()
	w.ended = true
	w.mu.Unlock()
	w.wake()
}

func (w *Watch) wake() {
	select {
	case w.notify <- struct{}{}:
	default:
	}
}

// offer keeps p if it is newer than what is pending for the group.
func (w *Watch) offer(name string, p pendingStatus) {
	w.mu.Lock()
	if old, ok := w.pending[name]; ok && old.seq > p.seq {
		w.mu.Unlock()
		return
	}
	w.pending[name] = p
	w.mu.Unlock()
	w.wake()
}

func (m *Monitor) watchOffer(name string, p pendingStatus) {
	m.watchMu.Lock()
	defer m.watchMu.Unlock()
	for w := range m.watchers {
		w.offer(name, p)
	}
}

// watchChanged tells every watch that g published snapshot seq.
func (m *Monitor) watchChanged(g *group, seq uint64) {
	m.watchOffer(g.name, pendingStatus{seq: seq, g: g})
}

// watchRemoved tells every watch that the group is gone.
func (m *Monitor) watchRemoved(name string) {
	seq := m.seq.Add(1)
	m.watchOffer(name, pendingStatus{seq: seq, final: GroupStatus{Name: name, Seq: seq, Removed: true}})
}

func (m *Monitor) endWatches() {
	m.watchMu.Lock()
	defer m.watchMu.Unlock()
	m.watchEnd = true
	for w := range m.watchers {
		w.end()
	}
	m.watchers = nil
}
