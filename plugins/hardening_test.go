package plugins

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sftkit/sft/internal/proc"
	"github.com/sftkit/sft/resource"
)

// TestTerminateAfterCrashSkipsBackoff: issue 8 bug 16. After a plugin
// crash, Terminate (which must let the type clean up what the dead process
// left) used to wait behind the relaunch backoff, up to 10 s, while the
// monitor gives it 2 s. A cleanup relaunch does not wait.
func TestTerminateAfterCrashSkipsBackoff(t *testing.T) {
	t.Parallel()
	h, _ := launch(t, func(c *Config) { c.DisableAutoMTLS = true; c.MinBackoff = time.Hour; c.MaxBackoff = time.Hour })
	pid := h.Pid()
	r := open(t, h, "r", nil)
	var f failures
	r.(resource.FailureReporter).SetFailureHandler(f.handler)
	require.NoError(t, r.Online(t.Context()))
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
	waitFor(t, "the crash noticed", func() bool { return len(f.get()) == 1 })
	// Died young: the backoff is an hour. The monitor's Terminate budget
	// is far less; a ctx error here means Terminate waited for it.
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	require.NoError(t, r.Terminate(ctx), "Terminate relaunches for the cleanup at once")
	require.NotEqual(t, pid, h.Pid())
	require.NotZero(t, h.Pid())
}

// TestRunnerKillsGroupBeforeReaping: issue 8 bug 17. The process group used
// to be killed after go-plugin had reaped the leader, when its pgid may
// already belong to someone else. The runner now waits for the leader's
// exit without reaping it, kills the group while the zombie leader still
// reserves the id, and only then reaps; killGroup after the reap does
// nothing.
func TestRunnerKillsGroupBeforeReaping(t *testing.T) {
	t.Parallel()
	sp := proc.Acquire()
	defer sp.Release()
	cmd := exec.Command("/bin/sh", "-c", "sleep 300 & echo $!; wait")
	cmd.SysProcAttr = proc.SysProcAttr()
	sockDir := t.TempDir()
	r, err := newPluginRunner(sp, cmd, filepath.Join(sockDir, "p"))
	require.NoError(t, err)
	require.NoError(t, os.Mkdir(filepath.Join(sockDir, "p"), 0o700))
	require.NoError(t, r.Start(t.Context()))
	var buf [32]byte
	n, err := r.Stdout().Read(buf[:])
	require.NoError(t, err)
	child, err := strconv.Atoi(strings.TrimSpace(string(buf[:n])))
	require.NoError(t, err)
	require.True(t, proc.Alive(child))

	require.NoError(t, syscall.Kill(r.pid, syscall.SIGKILL)) // the leader alone dies
	<-r.exited
	st, err := proc.ReadStat(r.pid)
	require.NoError(t, err)
	require.True(t, st.Zombie(), "the leader is not reaped yet")
	waitFor(t, "the group member killed while the leader is unreaped", func() bool { return !proc.Alive(child) })

	require.Error(t, r.Wait(t.Context()))
	_, err = proc.ReadStat(r.pid)
	require.Error(t, err, "reaped")
	r.mu.Lock()
	require.True(t, r.reaped)
	r.mu.Unlock()
	r.killGroup() // a no-op now: the id may be reused
	_, err = os.Stat(filepath.Join(sockDir, "p"))
	require.ErrorIs(t, err, os.ErrNotExist, "the process's socket directory is removed at the reap")
}

// TestCollateralFailures: issue 8 bug 18. When the host kills a shared
// plugin process for one instance (KillProcess at the monitor's deadlock
// timeout, or a deadlock the plugin reported), the failures pushed to the
// other instances are marked resource.Collateral, so they do not count
// against their own restart thresholds; the culprit's own is not.
func TestCollateralFailures(t *testing.T) {
	t.Parallel()
	h, _ := launch(t, func(c *Config) {
		c.DisableAutoMTLS = true
		c.MinBackoff = time.Millisecond
		c.DeadlockGrace = 50 * time.Millisecond
	})
	var fs [3]failures
	var rs [3]resource.Resource
	hang := filepath.Join(t.TempDir(), "hang")
	for i := range rs {
		props := resource.Properties{}
		if i == 0 {
			props["hang_file"] = hang
		}
		rs[i] = open(t, h, "r"+strconv.Itoa(i), props)
		rs[i].(resource.FailureReporter).SetFailureHandler(fs[i].handler)
		require.NoError(t, rs[i].Online(t.Context()))
	}
	require.NoError(t, rs[0].(resource.ProcessKiller).KillProcess("r0 deadlocked"))
	for i := range rs {
		waitFor(t, "failure "+strconv.Itoa(i), func() bool { return len(fs[i].get()) == 1 })
		require.ErrorIs(t, fs[i].get()[0], ErrPluginExited)
		require.Equal(t, i != 0, resource.IsCollateral(fs[i].get()[0]), "instance %d: %v", i, fs[i].get()[0])
	}

	// A deadlock the plugin reports: r0's Online ignores its ctx.
	for i := range rs {
		require.NoError(t, rs[i].Terminate(t.Context()))
		if i > 0 {
			require.NoError(t, rs[i].Online(t.Context()))
		}
	}
	require.NoError(t, os.WriteFile(hang, nil, 0o600))
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	require.Error(t, rs[0].Online(ctx))
	for i := 1; i < len(rs); i++ {
		waitFor(t, "collateral failure "+strconv.Itoa(i), func() bool { return len(fs[i].get()) == 2 })
		require.True(t, resource.IsCollateral(fs[i].get()[1]), "%v", fs[i].get()[1])
		require.ErrorContains(t, fs[i].get()[1], `resource "r0" deadlocked`)
	}
	require.NoError(t, os.Remove(hang))
}

// TestPollScheduleReachesThePlugin: issue 8 bug 20. Plugin-side polling
// used Config or the type's defaults, never the resource's own timing: a
// resource configured for is_alive_interval 5s was checked every 10 s. The
// proxy is a resource.PollScheduler; the schedule travels with Online.
func TestPollScheduleReachesThePlugin(t *testing.T) {
	t.Parallel()
	h, _ := launch(t, func(c *Config) {
		c.DisableAutoMTLS = true
		c.LooksAliveInterval, c.IsAliveInterval = time.Hour, time.Hour
	})
	file := filepath.Join(t.TempDir(), "fail")
	r := open(t, h, "a", resource.Properties{"fail_looks_file": file})
	ps, ok := r.(resource.PollScheduler)
	require.True(t, ok, "the proxy is a resource.PollScheduler")
	ps.SetPollSchedule(resource.Timing{LooksAliveInterval: time.Hour, IsAliveInterval: 20 * time.Millisecond,
		CallTimeout: time.Second, DeadlockTimeout: 3 * time.Second, PendingTimeout: time.Minute})
	var f failures
	r.(resource.FailureReporter).SetFailureHandler(f.handler)
	require.NoError(t, r.Online(t.Context()))
	p := r.(*proxy)
	sched := p.schedule(p.g)
	require.Equal(t, int64(20*time.Millisecond), sched.GetIsAliveIntervalNs())
	require.Equal(t, int64(time.Second), sched.GetCheckTimeoutNs())
	require.Equal(t, int64(2*time.Second), sched.GetDeadlockGraceNs(), "DeadlockTimeout - CallTimeout")
	require.NoError(t, os.WriteFile(file, nil, 0o600))
	// With Config's 1 h interval this would never come.
	waitFor(t, "the failure from the 20 ms plugin-side IsAlive", func() bool { return len(f.get()) == 1 })
	require.ErrorContains(t, f.get()[0], "fail_looks_file exists")
	require.NoError(t, r.Terminate(t.Context()))

	// A schedule changed while the instance is online applies at once.
	require.NoError(t, os.Remove(file))
	ps.SetPollSchedule(resource.Timing{LooksAliveInterval: time.Hour, IsAliveInterval: time.Hour, CallTimeout: time.Second})
	require.NoError(t, r.Online(t.Context()))
	require.NoError(t, os.WriteFile(file, nil, 0o600))
	ps.SetPollSchedule(resource.Timing{LooksAliveInterval: time.Hour, IsAliveInterval: 20 * time.Millisecond, CallTimeout: time.Second})
	waitFor(t, "the failure from the rescheduled plugin-side IsAlive", func() bool { return len(f.get()) == 2 })
	require.NoError(t, r.Terminate(t.Context()))
}

// TestHandshakeDeathCountedAndExplained: issue 8 bug 23. A plugin killed
// before its handshake was not counted in the process events, and the error
// blamed the architecture ("Unrecognized remote plugin message ... not
// compiled for this architecture").
func TestHandshakeDeathCountedAndExplained(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var events []ProcessEvent
	_, err := Launch(t.Context(), Config{Env: []string{roleEnv + "=diehandshake"}, DisableAutoMTLS: true,
		OnProcess: func(e ProcessEvent) {
			mu.Lock()
			events = append(events, e)
			mu.Unlock()
		}})
	require.Error(t, err)
	require.ErrorContains(t, err, "killed by signal SIGKILL (9) during its handshake")
	require.NotContains(t, err.Error(), "architecture")
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, events, 2, "%+v", events)
	require.Equal(t, ProcessStarted, events[0].Kind)
	require.Positive(t, events[0].Pid)
	require.Equal(t, ProcessEvent{Kind: ProcessExited, Pid: events[0].Pid, Err: events[1].Err}, events[1])
	require.ErrorContains(t, events[1].Err, "SIGKILL")
}

// TestPluginProcessName: issue 11. Host and plugin processes looked the
// same in ps. A plugin runs with argv[0] "sft-plugin: NAME" and comm
// "sft-plugin".
func TestPluginProcessName(t *testing.T) {
	t.Parallel()
	h, _ := launch(t, func(c *Config) { c.DisableAutoMTLS = true; c.Name = "bundled" })
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(h.Pid()) + "/cmdline")
	require.NoError(t, err)
	argv := bytes.Split(bytes.TrimSuffix(cmdline, []byte{0}), []byte{0})
	require.Equal(t, "sft-plugin: bundled", string(argv[0]))
	comm, err := os.ReadFile("/proc/" + strconv.Itoa(h.Pid()) + "/comm")
	require.NoError(t, err)
	require.Equal(t, "sft-plugin", strings.TrimSpace(string(comm)))
	self, err := os.ReadFile("/proc/self/comm")
	require.NoError(t, err)
	require.NotEqual(t, "sft-plugin", strings.TrimSpace(string(self)), "the host keeps its name")

	h2, _ := launch(t, func(c *Config) { c.DisableAutoMTLS = true })
	cmdline, err = os.ReadFile("/proc/" + strconv.Itoa(h2.Pid()) + "/cmdline")
	require.NoError(t, err)
	require.True(t, bytes.HasPrefix(cmdline, []byte("sft-plugin: plugins.test\x00")), "default name: the binary's base name; got %q", cmdline)
}

// TestStaleSocketDirsRemoved: issue 10. A killed host cannot remove its
// socket directory; the next Launch removes those whose owner pid is dead
// and keeps those of live hosts.
func TestStaleSocketDirsRemoved(t *testing.T) {
	tmp, err := os.MkdirTemp("", "sd")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(tmp) })
	t.Setenv("TMPDIR", tmp)
	dead := exec.Command("/bin/true")
	require.NoError(t, dead.Run())
	live := exec.Command("sleep", "300")
	require.NoError(t, live.Start())
	t.Cleanup(func() { _ = live.Process.Kill(); _ = live.Wait() })
	deadDir := filepath.Join(tmp, socketDirPrefix+strconv.Itoa(dead.Process.Pid)+"-1")
	liveDir := filepath.Join(tmp, socketDirPrefix+strconv.Itoa(live.Process.Pid)+"-2")
	other := filepath.Join(tmp, "sft-pluginsx")
	for _, d := range []string{deadDir, liveDir, other} {
		require.NoError(t, os.MkdirAll(filepath.Join(d, "plugin-dir1"), 0o700))
	}
	h, _ := launch(t, func(c *Config) { c.DisableAutoMTLS = true })
	_, err = os.Stat(deadDir)
	require.ErrorIs(t, err, os.ErrNotExist, "a dead host's directory is removed")
	for _, d := range []string{liveDir, other} {
		_, err = os.Stat(d)
		require.NoError(t, err, "kept: %s", d)
	}
	require.True(t, strings.HasPrefix(h.sockDir, filepath.Join(tmp, socketDirPrefix+strconv.Itoa(os.Getpid())+"-")), h.sockDir)
}
