package detector_test

import (
	"testing"
	"time"

	"github.com/sftkit/sft/cluster/detector"
)

// BenchmarkRound is one node's work per heartbeat round in a three-node
// cluster with two paths: check, make and sign the four heartbeats out,
// verify and take the four in. At 10 ms a node does 100 rounds a second;
// the figure does not include the socket calls.
func BenchmarkRound(b *testing.B) {
	c := detector.Config{Self: "a", Paths: 2, Interval: 10 * time.Millisecond, Window: 500 * time.Millisecond, Lease: 300 * time.Millisecond}
	d, err := detector.New(c, 1)
	if err != nil {
		b.Fatal(err)
	}
	now := time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC)
	for _, p := range []string{"b", "c"} {
		if err := d.AddPeer(p, now); err != nil {
			b.Fatal(err)
		}
	}
	var seq uint64
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(10 * time.Millisecond)
		seq++
		d.Check(now)
		for _, o := range d.Tick(now) {
			if _, err := detector.Marshal(o.Msg, key); err != nil {
				b.Fatal(err)
			}
		}
		for _, from := range []string{"b", "c"} {
			in, _ := detector.Marshal(detector.Heartbeat{From: from, To: "a", Incarnation: 1, Seq: seq, EchoIncarnation: 1, Echo: seq}, key)
			for path := range 2 {
				hb, err := detector.Unmarshal(in, key)
				if err != nil {
					b.Fatal(err)
				}
				if err := d.Receive(now, path, hb); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
}
