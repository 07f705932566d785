package proc

import (
	"os"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// OnExit: fifty sleeping children cost no goroutine each; every exit is
// reported once with its code or signal, without reaping; the watcher's
// goroutine ends with the last exit; Reap before the exit cancels the
// report, and a pidfd number used again belongs to the new child.
func TestOnExit(t *testing.T) {
	s := Acquire()
	defer s.Release()
	attr := func() *syscall.ProcAttr {
		return &syscall.ProcAttr{Env: []string{}, Files: []uintptr{0, 1, 2}, Sys: SysProcAttr()}
	}
	probe, err := s.StartProcess("/bin/true", []string{"true"}, attr())
	require.NoError(t, err)
	if probe.fd < 0 {
		require.NoError(t, probe.Reap())
		t.Skip("no pidfd from clone on this kernel")
	}
	require.NoError(t, probe.Reap())

	const n = 50
	type report struct {
		i  int
		ex Exit
		er error
	}
	reports := make(chan report, 2*n)
	// Each child waits for EOF on its stdin: i even is killed before,
	// i odd then exits with i.
	pr, pw, err := os.Pipe()
	require.NoError(t, err)
	defer pr.Close()
	defer pw.Close()
	g0 := runtime.NumGoroutine()
	var kids []*Child
	for i := range n {
		a := attr()
		a.Files[0] = pr.Fd()
		c, err := s.StartProcess("/bin/sh", []string{"sh", "-c", "read x; exit $0", strconv.Itoa(i)}, a)
		require.NoError(t, err)
		c.OnExit(func(ex Exit, err error) { reports <- report{i, ex, err} })
		kids = append(kids, c)
	}
	require.Equal(t, n, exitSet.Watched())
	require.Less(t, runtime.NumGoroutine()-g0, 5, "a goroutine per waiting child")
	for i, c := range kids {
		if i%2 == 0 {
			require.NoError(t, c.Signal(syscall.SIGKILL))
		}
	}
	require.NoError(t, pw.Close())
	seen := map[int]bool{}
	for range n {
		r := <-reports
		require.NoError(t, r.er)
		require.False(t, seen[r.i], "child %d reported twice", r.i)
		seen[r.i] = true
		if r.i%2 == 0 {
			require.Equal(t, syscall.SIGKILL, r.ex.Signal, "child %d", r.i)
		} else {
			require.Equal(t, Exit{Code: r.i}, r.ex, "child %d", r.i)
		}
		require.True(t, GroupExists(kids[r.i].Pid), "child %d reaped by the watcher", r.i)
	}
	for _, c := range kids {
		require.NoError(t, c.Reap())
	}
	require.Equal(t, 0, exitSet.Watched())
	require.Eventually(t, func() bool { return !exitSet.Running() }, 10*time.Second, time.Millisecond,
		"the watcher goroutine outlived the last child")

	// Reap before the exit: never reported; the pidfd's number, free
	// again, serves the next child, whose exit is its own.
	c, err := s.StartProcess("/bin/sh", []string{"sh", "-c", "sleep 0.05"}, attr())
	require.NoError(t, err)
	c.OnExit(func(ex Exit, err error) { reports <- report{-1, ex, err} })
	fd := c.fd
	require.NoError(t, c.Reap())
	require.Equal(t, 0, exitSet.Watched())
	c2, err := s.StartProcess("/bin/sh", []string{"sh", "-c", "exit 7"}, attr())
	require.NoError(t, err)
	c2.OnExit(func(ex Exit, err error) { reports <- report{-2, ex, err} })
	r := <-reports
	require.Equal(t, -2, r.i, "the reaped child was reported (pidfd %d, new %d)", fd, c2.fd)
	require.Equal(t, Exit{Code: 7}, r.ex)
	require.NoError(t, c2.Reap())
	select {
	case r := <-reports:
		t.Fatalf("report after Reap: %+v", r)
	case <-time.After(100 * time.Millisecond):
	}
}
