package proc

import (
	"fmt"
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

// BenchmarkStartProcessManyFDs: StartProcess and Reap of /bin/true in a
// process holding many descriptors (a plugin running a thousand programs
// holds about four thousand), from the spawner threads' own tables and, as
// before them, from the process's table. Besides ns/op it reports the
// spawner thread's CPU per start (the parent side of the clone) and the
// children's CPU per start (the exec, which closes every copied
// descriptor).
func BenchmarkStartProcessManyFDs(b *testing.B) {
	for _, fds := range []int{0, 4000} {
		for _, own := range []bool{true, false} {
			name := map[bool]string{true: "own-table", false: "shared-table"}[own]
			b.Run(fmt.Sprintf("fds=%d/%s", fds, name), func(b *testing.B) {
				privateTables = own
				defer func() { privateTables = true }()
				openMany(b, fds)
				s := Acquire()
				defer s.Release()
				attr := &syscall.ProcAttr{Files: []uintptr{0, 1, 2}, Sys: SysProcAttr()}
				n0, spawn0 := SpawnStats()
				kids0 := childrenCPU()
				for b.Loop() {
					c, err := s.StartProcess("/bin/true", []string{"true"}, attr)
					if err != nil {
						b.Fatal(err)
					}
					if err := c.Reap(); err != nil {
						b.Fatal(err)
					}
				}
				n1, spawn1 := SpawnStats()
				b.ReportMetric(float64(spawn1-spawn0)/float64(n1-n0)/1e3, "spawn-us/op")
				b.ReportMetric(float64(childrenCPU()-kids0)/float64(n1-n0)/1e3, "child-us/op")
			})
		}
	}
}

// childrenCPU is the CPU time of this process's reaped children.
func childrenCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
