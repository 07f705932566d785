package genericservice

import (
	"sort"
	"syscall"
	"testing"
	"time"

	"github.com/sftkit/sft/resource"
)

func report(b *testing.B, name string, d []time.Duration) {
	if len(d) == 0 {
		return
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	var sum time.Duration
	for _, x := range d {
		sum += x
	}
	b.ReportMetric(float64(sum.Microseconds())/float64(len(d))/1000, "ms/"+name)
	b.ReportMetric(float64(d[len(d)*99/100].Microseconds())/1000, "p99-ms/"+name)
}

// BenchmarkStartStop: Online (start job done + active seen by the watch)
// and Offline (stop job done) of a simple unit, through the sandbox's
// D-Bus proxy.
func BenchmarkStartStop(b *testing.B) {
	e := newEnv(b, map[string]string{"sleeper.service": sleeperUnit})
	r := e.open(b, resource.Properties{"service": "sleeper"})
	ctx := guardCtx(b)
	var starts, stops []time.Duration
	for b.Loop() {
		t0 := time.Now()
		if err := r.Online(ctx); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if err := r.Offline(ctx); err != nil {
			b.Fatal(err)
		}
		starts = append(starts, t1.Sub(t0))
		stops = append(stops, time.Since(t1))
	}
	report(b, "start", starts)
	report(b, "stop", stops)
}

// BenchmarkKillToFailurePushed: SIGKILL of the unit's process to the
// failure handler being called (systemd notices SIGCHLD, emits
// PropertiesChanged, our watch pushes).
func BenchmarkKillToFailurePushed(b *testing.B) {
	e := newEnv(b, map[string]string{"sleeper.service": sleeperUnit})
	r := e.open(b, resource.Properties{"service": "sleeper"})
	pushed := make(chan time.Time, 1)
	r.SetFailureHandler(func(error) {
		select {
		case pushed <- time.Now():
		default:
		}
	})
	ctx := guardCtx(b)
	var lat []time.Duration
	for b.Loop() {
		if err := r.Online(ctx); err != nil {
			b.Fatal(err)
		}
		pids := e.pids(b, "sleeper.service")
		if len(pids) != 1 {
			b.Fatalf("pids %v", pids)
		}
		t0 := time.Now()
		if err := syscall.Kill(pids[0], syscall.SIGKILL); err != nil {
			b.Fatal(err)
		}
		select {
		case t1 := <-pushed:
			lat = append(lat, t1.Sub(t0))
		case <-time.After(30 * time.Second):
			_, w := r.conn()
			r.mu.Lock()
			on, pu := r.online, r.pushed
			r.mu.Unlock()
			b.Fatalf("no failure pushed after killing %d: watch %s, systemd %s, online %v pushed %v, pids now %v",
				pids[0], w.Status(), e.status(b, "sleeper.service"), on, pu, e.pids(b, "sleeper.service"))
		}
		if err := r.Terminate(ctx); err != nil {
			b.Fatal(err)
		}
	}
	report(b, "kill-to-push", lat)
}

// BenchmarkLooksAlive: the in-memory check (no D-Bus round trip).
func BenchmarkLooksAlive(b *testing.B) {
	e := newEnv(b, map[string]string{"sleeper.service": sleeperUnit})
	r := e.open(b, resource.Properties{"service": "sleeper"})
	ctx := guardCtx(b)
	if err := r.Online(ctx); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := r.LooksAlive(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkIsAlive: one GetAll round trip to systemd (through the proxy).
func BenchmarkIsAlive(b *testing.B) {
	e := newEnv(b, map[string]string{"sleeper.service": sleeperUnit})
	r := e.open(b, resource.Properties{"service": "sleeper"})
	ctx := guardCtx(b)
	if err := r.Online(ctx); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := r.IsAlive(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStartStopBaseline: bare go-systemd StartUnit and StopUnit
// waiting for their jobs, on the same sandbox and proxy: what
// BenchmarkStartStop adds on top is the resource's overhead.
func BenchmarkStartStopBaseline(b *testing.B) {
	e := newEnv(b, map[string]string{"sleeper.service": sleeperUnit})
	ctx := guardCtx(b)
	var starts, stops []time.Duration
	ch := make(chan string, 1)
	for b.Loop() {
		t0 := time.Now()
		if _, err := e.sd.StartUnitContext(ctx, "sleeper.service", "replace", ch); err != nil {
			b.Fatal(err)
		}
		if r := <-ch; r != "done" {
			b.Fatal(r)
		}
		t1 := time.Now()
		if _, err := e.sd.StopUnitContext(ctx, "sleeper.service", "replace", ch); err != nil {
			b.Fatal(err)
		}
		if r := <-ch; r != "done" {
			b.Fatal(r)
		}
		starts = append(starts, t1.Sub(t0))
		stops = append(stops, time.Since(t1))
	}
	report(b, "start", starts)
	report(b, "stop", stops)
}
