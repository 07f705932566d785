package ipaddress

import (
	"bytes"
	"testing"
	"time"

	"github.com/sftkit/sft/internal/netns/netnstest"
)

func hostWire(t *testing.T, h *netnstest.Host, l *lab) *wire {
	t.Helper()
	w, err := openWire(h.Path, link{Name: h.Link, Index: h.Index, MAC: h.MAC}, l.vip.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

// TestDrainSeesQueuedClaims: a claim that is already queued on the socket
// when the probe window ends is still found (the end-of-window drain reads
// without waiting; Go's poller would report the deadline instead).
func TestDrainSeesQueuedClaims(t *testing.T) {
	families(t, func(t *testing.T, v6 bool) {
		l := newLab(t, v6)
		w := hostWire(t, l.a, l)
		witness := hostWire(t, l.a, l)
		b := hostWire(t, l.b, l)
		if err := b.announce(); err != nil {
			t.Fatal(err)
		}
		// Once the witness socket has the frame, w has it queued too:
		// the kernel hands a frame to every packet socket in one pass.
		witness.conn.SetReadDeadline(time.Now().Add(guard))
		buf := make([]byte, 1600)
		for {
			n, _, err := witness.conn.ReadFrom(buf)
			if err != nil {
				t.Fatalf("witness never saw B's announcement: %v", err)
			}
			if mac, ok := witness.conflict(buf[:n], true); ok && bytes.Equal(mac, l.b.MAC) {
				break
			}
		}
		mac, err := w.drain(buf, true, false)
		if err != nil || !bytes.Equal(mac, l.b.MAC) {
			t.Fatalf("drain = %v, %v; want B's MAC %v", mac, err, l.b.MAC)
		}
		if mac, err := w.drain(buf, true, false); err != nil || mac != nil {
			t.Fatalf("second drain = %v, %v; want nothing left", mac, err)
		}
	})
}
