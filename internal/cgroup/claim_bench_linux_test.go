package cgroup

import (
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// BenchmarkClaimSiblings claims 1,000 groups under one parent, as a
// relaunched plugin reopens its instances after a crash, and removes them
// again; it reports the CPU (user + system, getrusage) and the wall time
// per Claim, the removals left out.
func BenchmarkClaimSiblings(b *testing.B) {
	l, own, parent := claimParent(b)
	const n = 1000
	var cpu, wall time.Duration
	claims := 0
	for b.Loop() {
		gs := make([]*Group, 0, n)
		c0, t0 := cpuTime(), time.Now()
		for i := range n {
			g, _, err := Claim(b.Context(), l, own, parent, "r"+strconv.Itoa(i))
			require.NoError(b, err)
			gs = append(gs, g)
		}
		cpu += cpuTime() - c0
		wall += time.Since(t0)
		claims += n
		for _, g := range gs {
			require.NoError(b, g.Remove())
		}
	}
	b.ReportMetric(float64(cpu.Microseconds())/float64(claims), "cpu-us/claim")
	b.ReportMetric(float64(wall.Microseconds())/float64(claims), "wall-us/claim")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
