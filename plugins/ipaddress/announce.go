package ipaddress

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// announcer sends the announcements of one online session: those due at
// offset 0 at once (before Online returns), the later ones and the periodic
// refresh from a goroutine that Stop ends and waits for.
type announcer struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	done   chan struct{} // closed once nothing more will be sent
}

func startAnnouncer(w *wire, offsets []time.Duration, refresh time.Duration, log *slog.Logger) *announcer {
	a := &announcer{done: make(chan struct{})}
	send := func() {
		if err := w.announce(); err != nil {
			log.Warn("ipaddress: announcement failed", "err", err)
		}
	}
	start := time.Now()
	i := 0
	for ; i < len(offsets) && offsets[i] <= 0; i++ {
		send()
	}
	ctx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	rest := offsets[i:]
	if len(rest) == 0 && refresh <= 0 {
		close(a.done)
		return a
	}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		defer close(a.done)
		runSchedule(ctx, start, rest, refresh, send)
	}()
	return a
}

// Stop cancels the schedule and waits for the goroutine. The socket belongs
// to the instance.
func (a *announcer) Stop() {
	a.cancel()
	a.wg.Wait()
}

// runSchedule calls send at start+offsets[i] for each (sorted) offset, then
// every refresh (if > 0) after the last one, until ctx ends.
func runSchedule(ctx context.Context, start time.Time, offsets []time.Duration, refresh time.Duration, send func()) {
	t := time.NewTimer(0)
	defer t.Stop()
	<-t.C
	last := start
	for _, off := range offsets {
		at := start.Add(off)
		t.Reset(time.Until(at))
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		send()
		last = at
	}
	if refresh <= 0 {
		return
	}
	for {
		last = last.Add(refresh)
		t.Reset(time.Until(last))
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		send()
		if now := time.Now(); now.Sub(last) > refresh {
			last = now // fell behind (suspended?): no burst of catch-up sends
		}
	}
}
