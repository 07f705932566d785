package proc

import (
	"io"
	"os"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// openMany opens n descriptors (of /dev/null) in the process's table,
// closed at the end of the test.
func openMany(tb testing.TB, n int) {
	tb.Helper()
	fds := make([]int, 0, n)
	for range n {
		fd, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		require.NoError(tb, err)
		fds = append(fds, fd)
	}
	tb.Cleanup(func() {
		for _, fd := range fds {
			_ = unix.Close(fd)
		}
	})
}

// threadFDs counts the calling thread's descriptors.
func threadFDs() (int, error) {
	ents, err := os.ReadDir("/proc/thread-self/fd")
	return len(ents) - 1, err // less the listing's own
}

// The StartProcess threads have small tables of their own, whatever the
// process holds: a start copies and closes a handful of descriptors, not
// one per program already running.
func TestStartProcessThreadTable(t *testing.T) {
	openMany(t, 500)
	s := Acquire()
	defer s.Release()
	main, err := threadFDs()
	require.NoError(t, err)
	require.Greater(t, main, 500)
	var own int
	var private bool
	require.NoError(t, s.run(true, func(ft *fdTable) error {
		private = ft != nil
		own, err = threadFDs()
		return err
	}))
	require.True(t, private, "this kernel (pidfd_getfd, Linux 5.6+) allows private tables")
	require.Less(t, own, 10, "the spawner thread's own table: stdio, its pidfd, the runtime's anonymous objects")

	// Start threads (exec.Cmd.Start) share the process's table: the
	// descriptors cmd.Start opens are used by its caller.
	var shared int
	require.NoError(t, s.run(false, func(ft *fdTable) error {
		require.Nil(t, ft)
		shared, err = threadFDs()
		return err
	}))
	require.Greater(t, shared, 500, "the process's table, with the 500 opened above")

	// The child gets exactly the descriptors named in Files.
	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer r.Close()
	c, err := s.StartProcess("/bin/sh", []string{"sh", "-c", "ls /proc/$$/fd"},
		&syscall.ProcAttr{Files: []uintptr{0, w.Fd(), 2}, Sys: SysProcAttr()})
	w.Close()
	require.NoError(t, err)
	out := make([]byte, 256)
	n, _ := r.Read(out)
	ex, err := c.Wait()
	require.NoError(t, err)
	require.Equal(t, 0, ex.Code)
	require.NoError(t, c.Reap())
	require.Equal(t, "0\n1\n2\n", string(out[:n]), "the shell's descriptors")
}

// A private table is a copy of the process's at the time the thread
// started: the copies of pipes (and sockets, and locked files) are closed
// at once, so that closing one in the process still reaches its peer.
func TestStartProcessThreadKeepsNoPeer(t *testing.T) {
	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer r.Close()
	s := Acquire() // the StartProcess threads start below, with w open
	defer s.Release()
	c, err := s.StartProcess("/bin/true", []string{"true"}, &syscall.ProcAttr{Files: []uintptr{0, 1, 2}, Sys: SysProcAttr()})
	require.NoError(t, err)
	require.NoError(t, c.Reap())
	require.NoError(t, w.Close())
	require.NoError(t, r.SetReadDeadline(time.Now().Add(10*time.Second)))
	n, err := r.Read(make([]byte, 1))
	require.Equal(t, 0, n)
	require.ErrorIs(t, err, io.EOF, "the write end's last copy is closed: EOF, not a deadline")
}

// The locked StartProcess threads run runtime code (a GC they trigger
// stops and restarts the world and polls the network) in their own table:
// the runtime's descriptors are kept there. Starts racing with GCs and
// timers must neither crash the process nor fail.
func TestStartProcessThreadsUnderGC(t *testing.T) {
	s := Acquire()
	defer s.Release()
	stop := make(chan struct{})
	var bg sync.WaitGroup
	bg.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
				runtime.GC()
			}
		}
	})
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for range 8 {
		wg.Go(func() {
			for range 25 {
				garbage := make([][]byte, 0, 64)
				for range 64 {
					garbage = append(garbage, make([]byte, 4096))
				}
				_ = garbage
				c, err := s.StartProcess("/bin/true", []string{"true"}, &syscall.ProcAttr{Files: []uintptr{0, 1, 2}, Sys: SysProcAttr()})
				if err != nil {
					errs <- err
					continue
				}
				if ex, err := c.Wait(); err != nil || ex.Code != 0 {
					errs <- err
				}
				_ = c.Reap()
			}
		})
	}
	wg.Wait()
	close(stop)
	bg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}

// Without private tables (a kernel without pidfd_getfd, or a seccomp
// filter that refuses it) StartProcess works in the process's table.
func TestStartProcessSharedFallback(t *testing.T) {
	privateTables = false
	defer func() { privateTables = true }()
	s := Acquire()
	defer s.Release()
	var private bool
	require.NoError(t, s.run(true, func(ft *fdTable) error { private = ft != nil; return nil }))
	require.False(t, private)
	before := openFDs(t)
	c, err := s.StartProcess("/bin/true", []string{"true"}, &syscall.ProcAttr{Files: []uintptr{0, 1, 2}, Sys: SysProcAttr()})
	require.NoError(t, err)
	require.GreaterOrEqual(t, c.fd, 0, "the clone's pidfd")
	require.Equal(t, before+1, openFDs(t))
	ex, err := c.Wait()
	require.NoError(t, err)
	require.Equal(t, 0, ex.Code)
	require.NoError(t, c.Reap())
}

// A StartProcess thread that finds itself on the main thread hands its
// loop to a goroutine locked to another thread: the main thread's table is
// the one pidfd_getfd copies from and every other thread shares. (The test
// binary keeps the main thread for its main goroutine, so the case is
// forced here; in a plugin it happened, and every start failed with EBADF
// once the main thread had a private table.)
func TestStartProcessThreadLeavesMainThread(t *testing.T) {
	var mu sync.Mutex
	calls, handed := 0, 0
	onMainThread = func() bool {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls%2 == 1 {
			handed++
			return true
		}
		return false
	}
	defer func() { onMainThread = func() bool { return unix.Gettid() == unix.Getpid() } }()
	openMany(t, 100)
	s := Acquire()
	defer s.Release()
	for range 2 * SpawnThreads {
		var own int
		var err error
		require.NoError(t, s.run(true, func(ft *fdTable) error {
			require.NotNil(t, ft)
			own, err = threadFDs()
			return err
		}))
		require.Less(t, own, 10)
		c, err := s.StartProcess("/bin/true", []string{"true"}, &syscall.ProcAttr{Files: []uintptr{0, 1, 2}, Sys: SysProcAttr()})
		require.NoError(t, err)
		require.NoError(t, c.Reap())
	}
	mu.Lock()
	defer mu.Unlock()
	require.Positive(t, handed, "the hand-off ran")
}
