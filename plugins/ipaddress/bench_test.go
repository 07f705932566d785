package ipaddress

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/sftkit/sft/resource"
)

// report adds mean, p50 and p99 of ds (in microseconds) to b's output.
func report(b *testing.B, ds []time.Duration, what string) {
	if len(ds) == 0 {
		return
	}
	slices.Sort(ds)
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	b.ReportMetric(us(sum/time.Duration(len(ds))), "us-mean/"+what)
	b.ReportMetric(us(ds[len(ds)/2]), "us-p50/"+what)
	b.ReportMetric(us(ds[(len(ds)*99)/100]), "us-p99/"+what)
}

func benchFamilies(b *testing.B, fn func(b *testing.B, v6 bool)) {
	b.Run("IPv4", func(b *testing.B) { fn(b, false) })
	b.Run("IPv6", func(b *testing.B) { fn(b, true) })
}

// BenchmarkOnlineToNeighbour measures from the start of Online to the
// moment the client's neighbour entry for the address (stale, pointing at
// another MAC, as after the previous owner died) shows the new owner's MAC,
// seen through a netlink neighbour subscription in the client's namespace.
// "probe-default" includes the 200 ms duplicate-address probe; "probe-off"
// is bind plus the first announcement.
func BenchmarkOnlineToNeighbour(b *testing.B) {
	benchFamilies(b, func(b *testing.B, v6 bool) {
		for _, probe := range []struct {
			name  string
			props resource.Properties
		}{{"probe-default", nil}, {"probe-off", resource.Properties{"probe_count": 0}}} {
			b.Run(probe.name, func(b *testing.B) {
				l := newLab(b, v6)
				ctx := context.Background()
				w := watchNeigh(b, l.client, l.vip.Addr())
				r := l.open(b, l.a, probe.props)
				var ds []time.Duration
				b.ResetTimer()
				for range b.N {
					b.StopTimer()
					if err := l.client.SetNeigh(l.vip.Addr(), l.bogusMAC); err != nil {
						b.Fatal(err)
					}
					w.drain()
					wctx, cancel := context.WithTimeout(ctx, guard)
					b.StartTimer()
					t0 := time.Now()
					if err := r.Online(wctx); err != nil {
						b.Fatal(err)
					}
					w.wait(b, wctx, l.a.MAC)
					ds = append(ds, time.Since(t0))
					b.StopTimer()
					cancel()
					if err := r.Offline(ctx); err != nil {
						b.Fatal(err)
					}
				}
				report(b, ds, "online-to-neigh")
			})
		}
	})
}

// BenchmarkRemovalToFailure measures from an external address removal
// (netlink AddrDel from the test, as `ip addr del` does) to the failure
// reaching the handler set with SetFailureHandler: from before the AddrDel
// call ("remove-to-failure") and from its return ("removed-to-failure", 0
// when the push came first).
func BenchmarkRemovalToFailure(b *testing.B) {
	benchFamilies(b, func(b *testing.B, v6 bool) {
		l := newLab(b, v6)
		ctx := context.Background()
		r := l.open(b, l.a, resource.Properties{"probe_count": 0, "announce": []any{}})
		failed := make(chan time.Time, 4)
		r.SetFailureHandler(func(error) { failed <- time.Now() })
		var ds, after []time.Duration
		b.ResetTimer()
		for range b.N {
			b.StopTimer()
			if err := r.Online(ctx); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			t0 := time.Now()
			l.delAddr(b, l.a)
			t1 := time.Now()
			select {
			case at := <-failed:
				ds = append(ds, at.Sub(t0))
				after = append(after, max(0, at.Sub(t1)))
			case <-time.After(guard):
				b.Fatal("no failure pushed")
			}
			b.StopTimer()
			if err := r.Offline(ctx); err != nil {
				b.Fatal(err)
			}
		}
		report(b, ds, "remove-to-failure")
		// From AddrDel's return: IPv6 removal itself can take milliseconds
		// in the kernel (route and neighbour cleanup).
		report(b, after, "removed-to-failure")
	})
}

// BenchmarkLooksAlive is the cheap check's cost while online.
func BenchmarkLooksAlive(b *testing.B) {
	l := newLab(b, false)
	ctx := context.Background()
	r := l.open(b, l.a, resource.Properties{"probe_count": 0})
	if err := r.Online(ctx); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		if err := r.LooksAlive(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRefusal measures how long a second host's Online takes to fail
// node-local when another host holds the address (default probe timing:
// the first probe's answer decides).
func BenchmarkRefusal(b *testing.B) {
	benchFamilies(b, func(b *testing.B, v6 bool) {
		l := newLab(b, v6)
		ctx := context.Background()
		ra, rb := l.open(b, l.a, nil), l.open(b, l.b, nil)
		if err := ra.Online(ctx); err != nil {
			b.Fatal(err)
		}
		var ds []time.Duration
		b.ResetTimer()
		for range b.N {
			t0 := time.Now()
			err := rb.Online(ctx)
			ds = append(ds, time.Since(t0))
			if !errors.Is(err, resource.ErrNodeLocal) {
				b.Fatalf("B Online: %v, want node-local", err)
			}
		}
		report(b, ds, "refusal")
	})
}
