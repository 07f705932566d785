package plugins

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc/health/grpc_health_v1"

	"github.com/sftkit/sft/resource"
)

// latencies records one duration per iteration and reports p50 and p99.
type latencies []time.Duration

func (l latencies) report(b *testing.B, prefix string) {
	if len(l) == 0 {
		return
	}
	s := slices.Clone(l)
	slices.Sort(s)
	q := func(p float64) float64 { return float64(s[int(p*float64(len(s)-1))].Nanoseconds()) / 1e3 }
	b.ReportMetric(q(0.50), prefix+"p50-us")
	b.ReportMetric(q(0.99), prefix+"p99-us")
}

func benchHost(b *testing.B, mutate func(*Config)) *Pool {
	cfg := Config{Env: []string{roleEnv + "=plugin"}}
	if mutate != nil {
		mutate(&cfg)
	}
	h, err := Launch(b.Context(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = h.Close() })
	return h
}

func benchOpen(b *testing.B, h *Pool, name string) resource.Resource {
	typ, _ := h.Type("scripted")
	r, err := typ.Open(b.Context(), resource.OpenRequest{Name: name})
	if err != nil {
		b.Fatal(err)
	}
	if err := r.Online(b.Context()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = r.Terminate(context.Background()); _ = r.(resource.Closer).Close() })
	return r
}

func timeCalls(b *testing.B, prefix string, call func(context.Context) error) {
	ctx := b.Context()
	l := make(latencies, 0, b.N)
	b.ResetTimer()
	for b.Loop() {
		t0 := time.Now()
		if err := call(ctx); err != nil {
			b.Fatal(err)
		}
		l = append(l, time.Since(t0))
	}
	b.StopTimer()
	l.report(b, prefix)
}

// BenchmarkRoundTrip measures, in one run against one plugin process (AutoMTLS
// on, the default): the bare go-plugin call (gRPC health check on go-plugin's
// own connection), LooksAlive as the monitor sees it (answered from the
// plugin-side loop), LooksAlive and IsAlive as calls (RemoteChecks).
func BenchmarkRoundTrip(b *testing.B) {
	h := benchHost(b, nil)
	local := benchOpen(b, h, "local")
	hr := benchHost(b, func(c *Config) { c.RemoteChecks = true })
	remote := benchOpen(b, hr, "remote")
	health := grpc_health_v1.NewHealthClient(h.shared.current().conn)
	b.Run("bare-echo", func(b *testing.B) {
		timeCalls(b, "", func(ctx context.Context) error {
			_, err := health.Check(ctx, &grpc_health_v1.HealthCheckRequest{Service: "plugin"})
			return err
		})
	})
	b.Run("LooksAlive-local", func(b *testing.B) { timeCalls(b, "", local.LooksAlive) })
	b.Run("LooksAlive-rpc", func(b *testing.B) { timeCalls(b, "", remote.LooksAlive) })
	b.Run("IsAlive-rpc", func(b *testing.B) { timeCalls(b, "", remote.IsAlive) })
}

// BenchmarkCrashToFailed measures the time from SIGKILL of the plugin
// process to the moment every online instance's failure handler has run,
// for 1 and 100 instances. Each iteration relaunches the plugin.
//
// Paired with it, in the same samples: exit-p50-us, the time from the
// SIGKILL until the process is gone (its pidfd turns readable): about the
// kernel's share. A killed process's sockets close only after its memory
// has been torn down (and a little before the pidfd turns readable),
// which on the reference VM costs about 1.6 ms for a bare Go process and
// 0.2 ms more per MB of RSS, so the host cannot learn of the death sooner.
func BenchmarkCrashToFailed(b *testing.B) {
	for _, n := range []int{1, 100} {
		b.Run("instances="+strconv.Itoa(n), func(b *testing.B) {
			h := benchHost(b, func(c *Config) {
				c.DisableAutoMTLS = true
				c.MinBackoff = time.Millisecond
				c.MaxBackoff = time.Millisecond
			})
			rs := make([]resource.Resource, n)
			var (
				mu    sync.Mutex
				left  int
				allIn = make(chan time.Time, 1)
			)
			for i := range rs {
				rs[i] = benchOpen(b, h, "r"+strconv.Itoa(i))
				rs[i].(resource.FailureReporter).SetFailureHandler(func(error) {
					now := time.Now()
					mu.Lock()
					left--
					if left == 0 {
						allIn <- now
					}
					mu.Unlock()
				})
			}
			l := make(latencies, 0, b.N)
			gone := make(latencies, 0, b.N)
			b.ResetTimer()
			for b.Loop() {
				b.StopTimer()
				for _, r := range rs {
					_ = r.Terminate(b.Context())
					if err := r.Online(b.Context()); err != nil {
						b.Fatal(err)
					}
				}
				mu.Lock()
				left = n
				mu.Unlock()
				pid := h.Pid()
				pidfd, err := unix.PidfdOpen(pid, 0)
				if err != nil {
					b.Fatal(err)
				}
				exited := make(chan time.Time, 1)
				b.StartTimer()
				t0 := time.Now()
				go func() {
					pfd := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
					for {
						if _, err := unix.Poll(pfd, -1); err != unix.EINTR {
							break
						}
					}
					exited <- time.Now()
				}()
				if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
					b.Fatal(err)
				}
				l = append(l, (<-allIn).Sub(t0))
				gone = append(gone, (<-exited).Sub(t0))
				_ = unix.Close(pidfd)
			}
			b.StopTimer()
			l.report(b, "")
			gone.report(b, "exit-")
		})
	}
}
