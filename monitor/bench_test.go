package monitor_test

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sftkit/sft/monitor"
	"github.com/sftkit/sft/resource"
)

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkPolling1000 measures the monitor's own cost of polling 1,000
// in-process resources (LooksAlive every 1 s, IsAlive every 10 s) for 60 s of
// fake time, and reports it as % of one core at real-time rate: the CPU the
// monitor would burn per second of wall clock. Plugin-backed resources add
// the plugin's cost on top (see package plugins).
func BenchmarkPolling1000(b *testing.B) {
	b.Run("call", func(b *testing.B) { benchPolling(b, nop{}) })
	b.Run("instant", func(b *testing.B) { benchPolling(b, nopInstant{}) })
	b.Run("instant-both", func(b *testing.B) { benchPolling(b, nopInstantBoth{}) })
}

func benchPolling(b *testing.B, r resource.Resource) {
	const n, span = 1000, 60 * time.Second
	for range b.N {
		var cpu time.Duration
		synctest.Test(&testing.T{}, func(t *testing.T) {
			m := monitor.New(monitor.Config{})
			spec := monitor.GroupSpec{Name: "g"}
			for i := range n {
				name := fmt.Sprint("r", i)
				spec.Resources = append(spec.Resources, monitor.ResourceSpec{Name: name, Resource: r})
			}
			if err := m.AddGroup(spec); err != nil {
				b.Fatal(err)
			}
			if err := m.Online(context.Background(), "g"); err != nil {
				b.Fatal(err)
			}
			synctest.Wait()
			start := cpuTime()
			time.Sleep(span)
			synctest.Wait()
			cpu = cpuTime() - start
			_ = m.Close(context.Background())
		})
		b.ReportMetric(100*float64(cpu)/float64(span), "%core")
		b.ReportMetric(float64(cpu.Microseconds())/float64(n*66), "us/poll")
	}
}

// nop is the cheapest possible resource, so the benchmark shows the
// monitor's own cost.
type nop struct{}

func (nop) Online(context.Context) error     { return nil }
func (nop) Offline(context.Context) error    { return nil }
func (nop) LooksAlive(context.Context) error { return nil }
func (nop) IsAlive(context.Context) error    { return nil }
func (nop) Terminate(context.Context) error  { return nil }

// nopInstant answers LooksAlive from memory (resource.InstantChecker), as
// the plugin proxies and the bundled types do.
type nopInstant struct{ nop }

func (nopInstant) LooksAliveInstant() bool { return true }

// nopInstantBoth answers IsAlive from memory too
// (resource.InstantIsAliveChecker), as the plugin proxies and a genericapp
// without a health check do.
type nopInstantBoth struct{ nopInstant }

func (nopInstantBoth) IsAliveInstant() bool { return true }
