package qemuvm_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sftkit/sft/examples/qemuvm/testguest"
)

// BenchmarkGuest measures, over b.N guests each, what the README's figures
// say: boot to Online (QEMU start to the first heartbeat), guest panic to
// failure pushed, Offline of a cooperative guest (ACPI power-down to QEMU
// exit) and of a stubborn one (shutdown_grace 3 s, then quit). It reports
// the median and the maximum in ms; ns/op is a whole iteration, boot
// included, and means little. Run it on an otherwise idle machine:
//
//	go test -run '^$' -bench Guest -benchtime 5x ./examples/qemuvm
func BenchmarkGuest(b *testing.B) {
	g := testguest.Require(b)
	report := func(b *testing.B, ds []time.Duration) {
		slices.Sort(ds)
		ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
		b.ReportMetric(ms(ds[len(ds)/2]), "p50-ms")
		b.ReportMetric(ms(ds[len(ds)-1]), "max-ms")
		b.ReportMetric(float64(len(ds)), "samples")
	}
	b.Run("BootToOnline", func(b *testing.B) {
		var ds []time.Duration
		for b.Loop() {
			p, dir := props(b, g, "")
			s := online(b, p, dir)
			ds = append(ds, s.booting)
			require.NoError(b, s.vm.Terminate(context.Background()))
		}
		report(b, ds)
	})
	b.Run("PanicToPushed", func(b *testing.B) {
		var ds []time.Duration
		for b.Loop() {
			p, dir := props(b, g, "")
			s := online(b, p, dir)
			start := time.Now()
			s.console(b, "panic")
			took, err := s.pushed(b, start)
			require.ErrorContains(b, err, "GUEST_PANICKED")
			ds = append(ds, took)
			require.NoError(b, s.vm.Terminate(context.Background()))
		}
		report(b, ds)
	})
	for _, tc := range []struct{ name, mode, grace string }{
		{"OfflineCooperative", "", "30s"},
		{"OfflineStubborn3s", "noacpi", "3s"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var ds []time.Duration
			for b.Loop() {
				p, dir := props(b, g, tc.mode)
				p["shutdown_grace"] = tc.grace
				s := online(b, p, dir)
				start := time.Now()
				require.NoError(b, s.vm.Offline(b.Context()))
				ds = append(ds, time.Since(start))
				require.Zero(b, qemuPID(p), "QEMU survived Offline")
			}
			report(b, ds)
		})
	}
}
