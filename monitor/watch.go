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
	pending map[string]GroupStatus
	notify  chan struct{} // buffered 1
	ended   bool
}

// Watch starts a watch. Its first Next returns the current status of every
// group.
func (m *Monitor) Watch() *Watch {
	w := &Watch{m: m, pending: make(map[string]GroupStatus), notify: make(chan struct{}, 1)}
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
		w.offer(g)
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
			out := slices.SortedFunc(maps.Values(w.pending), func(a, b GroupStatus) int { return compareStrings(a.Name, b.Name) })
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

// offer keeps s if it is newer than what is pending for its group.
func (w *Watch) offer(s GroupStatus) {
	w.mu.Lock()
	if old, ok := w.pending[s.Name]; ok && old.Seq > s.Seq {
		w.mu.Unlock()
		return
	}
	w.pending[s.Name] = s
	w.mu.Unlock()
	w.wake()
}

func (m *Monitor) watchUpdate(s GroupStatus) {
	m.watchMu.Lock()
	defer m.watchMu.Unlock()
	for w := range m.watchers {
		w.offer(s)
	}
}

// watchRemoved tells every watch that the group is gone.
func (m *Monitor) watchRemoved(name string) {
	m.watchUpdate(GroupStatus{Name: name, Seq: m.seq.Add(1), Removed: true})
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
