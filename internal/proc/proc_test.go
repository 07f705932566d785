package proc

import (
	"context"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// The main goroutine keeps the main thread: the Go runtime never exits the
// main thread (it wedges it), so TestSpawnerSurvivesThreadExit needs its
// locked goroutine on another thread.
func init() { runtime.LockOSThread() }

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestParseSignal(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]syscall.Signal{
		"SIGTERM": syscall.SIGTERM, "TERM": syscall.SIGTERM, "sigint": syscall.SIGINT,
		"hup": syscall.SIGHUP, "9": syscall.SIGKILL, "SIGUSR2": syscall.SIGUSR2,
	} {
		got, err := ParseSignal(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for _, in := range []string{"", "SIGNOPE", "0", "65", "-1", "TERMX"} {
		_, err := ParseSignal(in)
		require.Error(t, err, in)
	}
}

func TestExitString(t *testing.T) {
	t.Parallel()
	require.Equal(t, "exited with code 3", Exit{Code: 3}.String())
	require.Equal(t, "killed by signal SIGKILL (9)", Exit{Code: -1, Signal: syscall.SIGKILL}.String())
	require.Equal(t, "killed by signal SIGSEGV (11), core dumped",
		Exit{Code: -1, Signal: syscall.SIGSEGV, CoreDumped: true}.String())
	require.Equal(t, "signal 99", SignalName(99))
}

func start(t *testing.T, s *Spawner, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(args[0], args[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	require.NoError(t, s.Start(cmd))
	return cmd
}

// WaitExit reports the exit without reaping: the zombie keeps the group id
// reserved until cmd.Wait.
func TestWaitExitDoesNotReap(t *testing.T) {
	t.Parallel()
	s := Acquire()
	defer s.Release()
	cmd := start(t, s, "/bin/sh", "-c", "exit 7")
	ex, err := WaitExit(cmd.Process.Pid)
	require.NoError(t, err)
	require.Equal(t, Exit{Code: 7}, ex)
	require.True(t, GroupExists(cmd.Process.Pid), "zombie leader must still hold the group")
	require.False(t, Alive(cmd.Process.Pid), "a zombie is not alive")
	require.Error(t, cmd.Wait()) // exit status 7, reaped now
	require.False(t, GroupExists(cmd.Process.Pid))
}

// Both wait paths (pidfd through the poller, blocking waitid) report
// exit codes and signals the same way.
func TestWaitPaths(t *testing.T) {
	t.Parallel()
	s := Acquire()
	defer s.Release()
	for name, wait := range map[string]func(int) (Exit, error){
		"pidfd": func(pid int) (Exit, error) {
			ex, err, ok := waitExitPidfd(pid)
			if !ok {
				t.Skip("no pollable pidfd on this kernel")
			}
			return ex, err
		},
		"blocking": waitExitBlocking,
	} {
		t.Run(name, func(t *testing.T) {
			cmd := start(t, s, "/bin/sh", "-c", "exit 5")
			ex, err := wait(cmd.Process.Pid)
			require.NoError(t, err)
			require.Equal(t, Exit{Code: 5}, ex)
			_ = cmd.Wait()

			cmd = start(t, s, "/bin/sleep", "1000")
			require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
			ex, err = wait(cmd.Process.Pid)
			require.NoError(t, err)
			require.Equal(t, syscall.SIGTERM, ex.Signal)
			require.Equal(t, "killed by signal SIGTERM (15)", ex.String())
			_ = cmd.Wait()
		})
	}
}

func TestGroupKill(t *testing.T) {
	t.Parallel()
	s := Acquire()
	defer s.Release()
	// The shell's background sleeps share its process group.
	cmd := start(t, s, "/bin/sh", "-c", "sleep 1000 & sleep 1000 & wait")
	pgid := cmd.Process.Pid
	var members []int
	require.Eventually(t, func() bool {
		members, _ = GroupMembers(pgid, false)
		return len(members) == 3
	}, 10*time.Second, time.Millisecond, "shell and two sleeps")

	require.NoError(t, SignalGroup(pgid, syscall.SIGKILL))
	ex, err := WaitExit(pgid)
	require.NoError(t, err)
	require.Equal(t, syscall.SIGKILL, ex.Signal)
	_ = cmd.Wait()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	require.NoError(t, WaitGroupGone(ctx, pgid))
	for _, pid := range members {
		require.False(t, Alive(pid), "pid %d", pid)
	}
	require.NoError(t, SignalGroup(pgid, syscall.SIGKILL), "a gone group is not an error")
	require.Error(t, SignalGroup(1, syscall.SIGKILL), "never signal group 1")
}

func TestSpawnerRefcount(t *testing.T) {
	a := Acquire()
	b := Acquire()
	a.Release()
	a.Release() // idempotent
	require.Error(t, a.Start(exec.Command("/bin/true")))
	cmd := exec.Command("/bin/true")
	require.NoError(t, b.Start(cmd))
	require.NoError(t, cmd.Wait())
	b.Release()
	// goleak in TestMain proves the spawner goroutine ended.
}

// The hazard the spawner exists for: a goroutine that locks its thread and
// exits without unlocking takes the thread down, and Pdeathsig kills every
// child forked from that thread although the process lives on. The same
// goroutine's child started through the spawner survives.
func TestSpawnerSurvivesThreadExit(t *testing.T) {
	s := Acquire()
	defer s.Release()
	mk := func() *exec.Cmd {
		cmd := exec.Command("/bin/sleep", "1000")
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		return cmd
	}
	direct, spawned := mk(), mk()
	errs := make(chan error, 2)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with us
		errs <- direct.Start()
		errs <- s.Start(spawned)
	}()
	require.NoError(t, <-errs)
	require.NoError(t, <-errs)
	t.Cleanup(func() {
		_ = SignalGroup(spawned.Process.Pid, syscall.SIGKILL)
		_ = spawned.Wait()
	})

	exited := make(chan Exit, 1)
	go func() {
		ex, _ := WaitExit(direct.Process.Pid) // the locked thread died
		exited <- ex
	}()
	var ex Exit
	select {
	case ex = <-exited:
	case <-time.After(20 * time.Second):
		_ = direct.Process.Kill()
		<-exited
		t.Fatal("the locked thread did not exit (or Pdeathsig did not fire)")
	}
	require.Equal(t, syscall.SIGKILL, ex.Signal, "Pdeathsig fired on thread exit")
	_ = direct.Wait()
	require.True(t, Alive(spawned.Process.Pid), "child of the spawner thread survives")
}

func TestParseStat(t *testing.T) {
	st, err := parseStat([]byte("42 (a (b) c) S 7 42 42 0 -1"))
	require.NoError(t, err)
	require.Equal(t, Stat{PID: 42, State: 'S', PPID: 7, PGID: 42}, st)
	_, err = parseStat([]byte("garbage"))
	require.Error(t, err)
	_, err = parseStat([]byte("1 (x) Z"))
	require.Error(t, err)
}

// TestChildrenAndGroupMembers: a child leading its own group (SysProcAttr)
// with a grandchild in it is listed by Children and GroupMembers, and
// SignalGroup before the reap kills both.
func TestChildrenAndGroupMembers(t *testing.T) {
	cmd := exec.Command("/bin/sh", "-c", "sleep 300 & echo $!; wait")
	cmd.SysProcAttr = SysProcAttr()
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	buf := make([]byte, 32)
	n, err := out.Read(buf)
	require.NoError(t, err)
	require.Positive(t, n)
	pid := cmd.Process.Pid

	kids, err := Children(os.Getpid())
	require.NoError(t, err)
	require.True(t, slices.ContainsFunc(kids, func(s Stat) bool { return s.PID == pid }), "child not listed by Children")
	members, err := GroupMembers(pid, false)
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(members), 2, "sh and sleep in the group")

	require.NoError(t, SignalGroup(pid, syscall.SIGKILL))
	_, err = WaitExit(pid)
	require.NoError(t, err)
	_ = cmd.Wait()
	require.NoError(t, WaitGroupGone(t.Context(), pid))
	require.False(t, Alive(pid))
}

// openFDs counts this process's open descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	return len(ents)
}

// StartProcess: one pidfd per child, the only handle (os/exec keeps one
// more); Wait does not reap, Signal reaches the child, Reap reaps and
// closes the pidfd, Signal after Reap hits nothing.
func TestStartProcessChild(t *testing.T) {
	s := Acquire()
	defer s.Release()
	attr := func() *syscall.ProcAttr {
		return &syscall.ProcAttr{Env: []string{}, Files: []uintptr{0, 1, 2}, Sys: SysProcAttr()}
	}
	before := openFDs(t)
	c, err := s.StartProcess("/bin/sleep", []string{"sleep", "1000"}, attr())
	require.NoError(t, err)
	if c.fd < 0 {
		t.Skip("no pidfd from clone on this kernel")
	}
	require.Equal(t, before+1, openFDs(t), "one descriptor per child")
	require.True(t, Alive(c.Pid))
	require.NoError(t, c.Signal(syscall.SIGTERM))
	ex, err := c.Wait()
	require.NoError(t, err)
	require.Equal(t, syscall.SIGTERM, ex.Signal)
	require.True(t, GroupExists(c.Pid), "a zombie leader still holds the group")
	require.NoError(t, c.Signal(syscall.SIGTERM), "signalling a zombie is no error")
	require.NoError(t, c.Reap())
	require.False(t, GroupExists(c.Pid), "reaped")
	require.Equal(t, before, openFDs(t), "the pidfd is closed")
	require.ErrorIs(t, c.Signal(syscall.SIGTERM), os.ErrProcessDone)
	require.Error(t, c.Reap(), "twice")

	// The spawner threads account for their starts.
	n0, cpu0 := SpawnStats()
	c, err = s.StartProcess("/bin/true", []string{"true"}, attr())
	require.NoError(t, err)
	require.NoError(t, c.Reap())
	n1, cpu1 := SpawnStats()
	require.Equal(t, n0+1, n1)
	require.Greater(t, cpu1, cpu0, "a fork costs its thread some CPU")

	// Reap before the exit waits for it.
	c, err = s.StartProcess("/bin/sh", []string{"sh", "-c", "sleep 0.05"}, attr())
	require.NoError(t, err)
	require.NoError(t, c.Reap())
	require.False(t, GroupExists(c.Pid))

	// A start that fails says so as exec.Cmd does.
	_, err = s.StartProcess("/nonexistent/x", []string{"x"}, attr())
	var pe *os.PathError
	require.ErrorAs(t, err, &pe)
	require.Equal(t, "fork/exec", pe.Op)
	require.ErrorIs(t, err, syscall.ENOENT)
	require.Equal(t, before, openFDs(t), "nothing left open")
}
