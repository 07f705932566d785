package proc

import (
	"os/exec"
	"slices"
	"syscall"
	"testing"
	"time"
)

// BenchmarkKillToWaitExit: SIGKILL of a child to WaitExit returning, for
// the pidfd (poller) path and the blocking waitid path.
func BenchmarkKillToWaitExit(b *testing.B) {
	for _, tc := range []struct {
		name string
		wait func(int) (Exit, error)
	}{
		{"pidfd", func(pid int) (Exit, error) { ex, err, _ := waitExitPidfd(pid); return ex, err }},
		{"blocking", waitExitBlocking},
	} {
		b.Run(tc.name, func(b *testing.B) {
			s := Acquire()
			defer s.Release()
			var lat []time.Duration
			for b.Loop() {
				cmd := exec.Command("/bin/sleep", "1000")
				cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
				if err := s.Start(cmd); err != nil {
					b.Fatal(err)
				}
				got := make(chan time.Time, 1)
				ready := make(chan struct{})
				go func() {
					close(ready)
					if _, err := tc.wait(cmd.Process.Pid); err != nil {
						b.Error(err)
					}
					got <- time.Now()
				}()
				<-ready
				time.Sleep(time.Millisecond) // let the waiter block
				t0 := time.Now()
				_ = syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
				lat = append(lat, (<-got).Sub(t0))
				_ = cmd.Wait()
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-us")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-us")
		})
	}
}
