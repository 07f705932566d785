package genericapp

import (
	"context"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/sftkit/sft/resource"
)

// reportLatencies reports the p50, p99 and max of d in microseconds.
func reportLatencies(b *testing.B, name string, d []time.Duration) {
	if len(d) == 0 {
		return
	}
	slices.Sort(d)
	us := func(x time.Duration) float64 { return float64(x.Nanoseconds()) / 1e3 }
	b.ReportMetric(us(d[len(d)/2]), name+"-p50-us")
	b.ReportMetric(us(d[len(d)*99/100]), name+"-p99-us")
	b.ReportMetric(us(d[len(d)-1]), name+"-max-us")
}

func benchApp(b *testing.B) *App {
	b.Helper()
	// /bin/sleep stands for the application: the figures are the
	// framework's, not a big binary's exec time.
	return open(b, resource.Properties{"argv": []any{"/bin/sleep", "100000"}, "stdout": "discard", "stderr": "discard"}, nil)
}

// BenchmarkCrashToFailurePushed: kill -9 of the application to the failure
// handler being called.
func BenchmarkCrashToFailurePushed(b *testing.B) {
	a := benchApp(b)
	pushed := make(chan time.Time, 1)
	a.SetFailureHandler(func(error) { pushed <- time.Now() })
	ctx := context.Background()
	var lat []time.Duration
	for b.Loop() {
		if err := a.Online(ctx); err != nil {
			b.Fatal(err)
		}
		pid := a.Pid()
		t0 := time.Now()
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			b.Fatal(err)
		}
		t1 := <-pushed
		lat = append(lat, t1.Sub(t0))
		if err := a.Terminate(ctx); err != nil {
			b.Fatal(err)
		}
	}
	reportLatencies(b, "crash-to-push", lat)
}

// BenchmarkCrashToRestart: kill -9 of the application to a new process
// started, when the failure handler restarts at once (Terminate, then
// Online; the monitor's restart delay is excluded). Also reports the parts.
func BenchmarkCrashToRestart(b *testing.B) {
	a := benchApp(b)
	ctx := context.Background()
	type result struct {
		push, term, online time.Time
		err                error
	}
	res := make(chan result, 1)
	a.SetFailureHandler(func(error) {
		r := result{push: time.Now()}
		// A handler must not block: restart from a goroutine, as the
		// monitor does.
		go func() {
			if r.err = a.Terminate(ctx); r.err == nil {
				r.term = time.Now()
				r.err = a.Online(ctx)
				r.online = time.Now()
			}
			res <- r
		}()
	})
	if err := a.Online(ctx); err != nil {
		b.Fatal(err)
	}
	var total, toPush, terminate, online []time.Duration
	for b.Loop() {
		pid := a.Pid()
		t0 := time.Now()
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			b.Fatal(err)
		}
		r := <-res
		if r.err != nil {
			b.Fatal(r.err)
		}
		if a.Pid() == 0 || a.Pid() == pid {
			b.Fatal("no new process")
		}
		total = append(total, r.online.Sub(t0))
		toPush = append(toPush, r.push.Sub(t0))
		terminate = append(terminate, r.term.Sub(r.push))
		online = append(online, r.online.Sub(r.term))
	}
	reportLatencies(b, "crash-to-restarted", total)
	reportLatencies(b, "crash-to-push", toPush)
	reportLatencies(b, "terminate", terminate)
	reportLatencies(b, "online", online)
}

// BenchmarkLooksAlive: the cheap check's cost.
func BenchmarkLooksAlive(b *testing.B) {
	a := benchApp(b)
	ctx := context.Background()
	if err := a.Online(ctx); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := a.LooksAlive(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
