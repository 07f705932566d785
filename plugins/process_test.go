package plugins

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
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

func open(t *testing.T, h *Pool, name string, props resource.Properties) resource.Resource {
	t.Helper()
	typ, ok := h.Type("scripted")
	require.True(t, ok)
	r, err := typ.Open(t.Context(), resource.OpenRequest{Name: name, Properties: props})
	require.NoError(t, err)
	t.Cleanup(func() { _ = r.(resource.Closer).Close() })
	return r
}

// failures collects what a proxy's failure handler receives.
type failures struct {
	mu   sync.Mutex
	errs []error
}

func (f *failures) handler(err error) {
	f.mu.Lock()
	f.errs = append(f.errs, err)
	f.mu.Unlock()
}

func (f *failures) get() []error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]error(nil), f.errs...)
}

func TestLifecycleThroughPluginProcess(t *testing.T) {
	t.Parallel()
	h, logs := launch(t, nil)
	require.Positive(t, h.Pid())
	require.Len(t, h.Types(), 1)
	typ, ok := h.Type("scripted")
	require.True(t, ok)
	require.Equal(t, 42*time.Second, typ.(resource.TimingProvider).DefaultTiming().PendingTimeout, "timing crosses the wire")
	reg := &resource.Registry{}
	require.NoError(t, h.Register(reg))
	require.Equal(t, []string{"scripted"}, reg.Names())

	r := open(t, h, "web/app", resource.Properties{"progress": 3, "print": "hello from stdout"})
	ctx, progress := recordProgress(t.Context())
	require.NoError(t, r.Online(ctx))
	require.Equal(t, []string{"step 1", "step 2", "step 3"}, progress(), "progress reaches the host ctx")
	require.NoError(t, r.LooksAlive(t.Context()))
	require.NoError(t, r.IsAlive(t.Context()))
	require.NoError(t, r.Offline(t.Context()))
	require.Error(t, r.LooksAlive(t.Context()), "not online after Offline")
	require.Error(t, r.IsAlive(t.Context()))
	require.NoError(t, r.Offline(t.Context()), "Offline is idempotent")
	require.NoError(t, r.Terminate(t.Context()))
	require.NoError(t, r.(resource.Closer).Close())

	waitFor(t, "the plugin's warning in the host log", func() bool {
		rec, ok := logs.find("scripted online")
		return ok && rec.Level == slog.LevelWarn
	})
	waitFor(t, "the plugin's stdout in the host log", func() bool {
		_, ok := logs.find("hello from stdout")
		return ok
	})
}

func TestErrorClassesCrossTheWire(t *testing.T) {
	t.Parallel()
	h, _ := launch(t, nil)
	typ, _ := h.Type("scripted")
	for _, tc := range []struct {
		name string
		call func() error
	}{
		{"Validate", func() error { return typ.Validate(t.Context(), resource.Properties{"bad": "10.0.0.300/24"}) }},
		{"Open", func() error {
			_, err := typ.Open(t.Context(), resource.OpenRequest{Name: "x", Properties: resource.Properties{"bad": "10.0.0.300/24"}})
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			require.ErrorIs(t, err, resource.ErrConfiguration)
			require.Equal(t, resource.ClassConfiguration, resource.ClassOf(err))
			var re *resource.Error
			require.ErrorAs(t, err, &re)
			require.Equal(t, "bad", re.Field)
			require.Equal(t, "10.0.0.300/24", re.Value)
			require.Equal(t, `bad "10.0.0.300/24": is always wrong`, err.Error())
		})
	}
	err := typ.Validate(t.Context(), resource.Properties{"nonsense": 1})
	require.ErrorIs(t, err, resource.ErrConfiguration, "Decode's unknown-property error keeps its class")
	require.Contains(t, err.Error(), "nonsense")
	require.NoError(t, typ.Validate(t.Context(), resource.Properties{"progress": 1}))
}

func TestPushedFailure(t *testing.T) {
	t.Parallel()
	h, _ := launch(t, nil)
	r := open(t, h, "a", resource.Properties{"push_after": "20ms"})
	var f failures
	r.(resource.FailureReporter).SetFailureHandler(f.handler)
	require.NoError(t, r.Online(t.Context()))
	waitFor(t, "the pushed failure", func() bool { return len(f.get()) == 1 })
	require.ErrorIs(t, f.get()[0], resource.ErrNodeLocal, "class survives the push")
	require.ErrorIs(t, r.LooksAlive(t.Context()), resource.ErrNodeLocal, "the polls see a known failure too")
	require.ErrorIs(t, r.IsAlive(t.Context()), resource.ErrNodeLocal)

	// The monitor's restart clears it.
	require.NoError(t, r.Terminate(t.Context()))
	require.NoError(t, r.Online(t.Context()))
	require.NoError(t, r.LooksAlive(t.Context()))
	require.NoError(t, r.Terminate(t.Context()))
}

// After a pushed failure the plugin terminates the instance itself, and
// the host's Terminate (the monitor's next call) waits for that instead
// of calling again: the type's Terminate runs once. A Terminate of the
// plugin's that fails leaves the call to the host; without a failure the
// host calls as before.
func TestTerminateAfterPushedFailure(t *testing.T) {
	t.Parallel()
	h, _ := launch(t, nil)
	dir := t.TempDir()
	log, failTerm := filepath.Join(dir, "terminates"), filepath.Join(dir, "fail-terminate")
	terminates := func() int {
		b, _ := os.ReadFile(log)
		return strings.Count(string(b), "terminate\n")
	}
	r := open(t, h, "a", resource.Properties{"push_after": "20ms", "terminate_log": log, "fail_terminate_file": failTerm})
	var f failures
	r.(resource.FailureReporter).SetFailureHandler(f.handler)
	for cycle := 1; cycle <= 3; cycle++ {
		require.NoError(t, r.Online(t.Context()))
		waitFor(t, "the pushed failure", func() bool { return len(f.get()) == cycle })
		waitFor(t, "the plugin's own Terminate", func() bool { return terminates() == cycle })
		require.NoError(t, r.Terminate(t.Context()))
		require.Equal(t, cycle, terminates(), "cycle %d: the type's Terminate ran once, in the plugin", cycle)
	}

	// The plugin's Terminate fails: the host calls it again (and it
	// fails there too, which the caller sees).
	require.NoError(t, os.WriteFile(failTerm, nil, 0o600))
	require.NoError(t, r.Online(t.Context()))
	waitFor(t, "the pushed failure", func() bool { return len(f.get()) == 4 })
	require.ErrorContains(t, r.Terminate(t.Context()), "fail_terminate_file exists")
	require.Equal(t, 5, terminates(), "the plugin's Terminate, then the host's")
	require.NoError(t, os.Remove(failTerm))
	require.NoError(t, r.Terminate(t.Context()))
	require.Equal(t, 6, terminates())
}

func TestPluginSideLooksAlive(t *testing.T) {
	t.Parallel()
	h, _ := launch(t, func(c *Config) { c.LooksAliveInterval = 10 * time.Millisecond; c.IsAliveInterval = time.Hour })
	dir := t.TempDir()
	looksFile, mark := filepath.Join(dir, "fail"), filepath.Join(dir, "is-alive-ran")
	r := open(t, h, "a", resource.Properties{"fail_looks_file": looksFile, "is_alive_mark": mark})
	var f failures
	r.(resource.FailureReporter).SetFailureHandler(f.handler)
	require.NoError(t, r.Online(t.Context()))
	require.NoError(t, r.LooksAlive(t.Context()))
	// The start runs one plugin-side IsAlive at once, on a goroutine of its
	// own: let it answer before LooksAlive is made to fail, or (on a
	// loaded machine) it fails too and, with IsAlive hourly, stays failed.
	waitFor(t, "the plugin-side IsAlive of the start", func() bool { _, err := os.Stat(mark); return err == nil })
	require.NoError(t, os.WriteFile(looksFile, nil, 0o600))
	waitFor(t, "LooksAlive to fail from the plugin-side sweep", func() bool { return r.LooksAlive(t.Context()) != nil })
	require.ErrorIs(t, r.LooksAlive(t.Context()), resource.ErrTransient, "class survives")
	require.ErrorContains(t, r.IsAlive(t.Context()), "fail_looks_file exists", "LooksAlive failing: IsAlive is a real call")
	require.NoError(t, os.Remove(looksFile))
	waitFor(t, "LooksAlive to pass again", func() bool { return r.LooksAlive(t.Context()) == nil })
	require.Empty(t, f.get(), "a LooksAlive failure is for the monitor to confirm, not a pushed failure")
	require.NoError(t, r.Terminate(t.Context()))
}

func TestTerminateCancelsInFlightCall(t *testing.T) {
	t.Parallel()
	h, _ := launch(t, nil)
	r := open(t, h, "blocky", resource.Properties{"block_online": true})
	errc := make(chan error, 1)
	go func() { errc <- r.Online(context.Background()) }()
	// Terminate until the Online has been cancelled by one of them: the
	// first Terminate may overtake the Online on its way to the plugin.
	var err error
	for done := false; !done; {
		require.NoError(t, r.Terminate(t.Context()))
		select {
		case err = <-errc:
			done = true
		case <-time.After(10 * time.Millisecond):
		}
	}
	require.Error(t, err)
	require.NotErrorIs(t, err, ErrPluginExited, "the process lives on")
	require.Contains(t, err.Error(), "terminated")
}

func TestPluginKilledMidCall(t *testing.T) {
	t.Parallel()
	var evMu sync.Mutex
	var events []ProcessEvent
	h, _ := launch(t, func(c *Config) {
		c.MinBackoff = time.Millisecond
		c.OnProcess = func(e ProcessEvent) {
			evMu.Lock()
			defer evMu.Unlock()
			events = append(events, e)
		}
	})
	pid := h.Pid()
	var fs [3]failures
	var rs [3]resource.Resource
	for i := range rs {
		rs[i] = open(t, h, "r"+strconv.Itoa(i), nil)
		rs[i].(resource.FailureReporter).SetFailureHandler(fs[i].handler)
		require.NoError(t, rs[i].Online(t.Context()))
	}
	blocked := open(t, h, "blocked", resource.Properties{"block_online": true})
	errc := make(chan error, 1)
	go func() { errc <- blocked.Online(context.Background()) }()

	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
	require.ErrorIs(t, <-errc, ErrPluginExited, "the call in flight fails, it does not hang")
	for i := range rs {
		waitFor(t, "failure handler "+strconv.Itoa(i), func() bool { return len(fs[i].get()) > 0 })
		require.ErrorIs(t, fs[i].get()[0], ErrPluginExited)
		require.ErrorIs(t, rs[i].LooksAlive(t.Context()), ErrPluginExited)
	}
	waitFor(t, "the killed plugin to be reaped (no zombie)", func() bool {
		_, err := proc.ReadStat(pid)
		return err != nil
	})
	// The monitor's restart: Terminate, then Online again, relaunch included.
	for i := range rs {
		require.NoError(t, rs[i].Terminate(t.Context()))
		require.NoError(t, rs[i].Online(t.Context()))
		require.NoError(t, rs[i].LooksAlive(t.Context()))
		require.NoError(t, rs[i].IsAlive(t.Context()))
		require.Len(t, fs[i].get(), 1, "no spurious failures after the restart")
	}
	require.NotEqual(t, pid, h.Pid(), "a new process")
	// Config.OnProcess saw the start, the death and the relaunch.
	evMu.Lock()
	defer evMu.Unlock()
	require.Len(t, events, 3)
	require.Equal(t, ProcessEvent{Kind: ProcessStarted, Pid: pid}, events[0])
	require.Equal(t, ProcessExited, events[1].Kind)
	require.Equal(t, pid, events[1].Pid)
	require.ErrorIs(t, events[1].Err, ErrPluginExited)
	require.Equal(t, ProcessEvent{Kind: ProcessRelaunched, Pid: h.Pid()}, events[2])
}

func TestKillProcessKillsProcessGroup(t *testing.T) {
	t.Parallel()
	h, _ := launch(t, func(c *Config) { c.MinBackoff = time.Millisecond })
	pid := h.Pid()
	dir := t.TempDir()
	hang, pidFile := filepath.Join(dir, "hang"), filepath.Join(dir, "child.pid")
	require.NoError(t, os.WriteFile(hang, nil, 0o600))
	r := open(t, h, "hung", resource.Properties{"hang_file": hang, "spawn_pid_file": pidFile})
	other := open(t, h, "neighbour", nil)
	var f failures
	other.(resource.FailureReporter).SetFailureHandler(f.handler)
	require.NoError(t, other.Online(t.Context()))

	// The monitor abandons the hung call (here: once it has spawned its
	// grandchild; a fixed 100 ms deadline ran out before the plugin got
	// that far at load 80).
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- r.Online(ctx) }()
	var child int
	waitFor(t, "the hung Online to spawn its grandchild", func() bool {
		b, err := os.ReadFile(pidFile)
		if err != nil {
			return false
		}
		child, err = strconv.Atoi(string(b))
		return err == nil
	})
	cancel()
	require.ErrorIs(t, <-done, context.Canceled, "the host's cancellation holds though the plugin ignores it")
	require.True(t, proc.Alive(child))

	require.NoError(t, r.(resource.ProcessKiller).KillProcess("deadlock timeout"))
	waitFor(t, "the grandchild to die with the group", func() bool { return !proc.Alive(child) })
	waitFor(t, "the plugin to die", func() bool { return !proc.Alive(pid) })
	waitFor(t, "the neighbour's failure", func() bool { return len(f.get()) == 1 })
	require.ErrorIs(t, f.get()[0], ErrPluginExited)

	require.NoError(t, os.Remove(hang))
	require.NoError(t, r.Terminate(t.Context()))
	require.NoError(t, r.Online(t.Context()), "relaunched")
	require.NoError(t, r.IsAlive(t.Context()))
	require.NotEqual(t, pid, h.Pid())
	require.NoError(t, r.Offline(t.Context()))
}

func TestIsolatedInstanceHasItsOwnProcess(t *testing.T) {
	t.Parallel()
	h, _ := launch(t, func(c *Config) { c.DisableAutoMTLS = true })
	iso := open(t, h, "iso", resource.Properties{PropIsolate: true})
	shared := open(t, h, "shared", nil)
	var fi, fsh failures
	iso.(resource.FailureReporter).SetFailureHandler(fi.handler)
	shared.(resource.FailureReporter).SetFailureHandler(fsh.handler)
	require.NoError(t, iso.Online(t.Context()))
	require.NoError(t, shared.Online(t.Context()))
	require.NoError(t, iso.(resource.ProcessKiller).KillProcess("test"))
	waitFor(t, "the isolated instance's failure", func() bool { return len(fi.get()) == 1 })
	require.NoError(t, shared.IsAlive(t.Context()), "the shared process is untouched")
	require.NoError(t, shared.LooksAlive(t.Context()))
	require.Empty(t, fsh.get())
	require.NotNil(t, open(t, h, "x", nil), "the pool still opens instances")
	typ, _ := h.Type("scripted")
	_, err := typ.Open(t.Context(), resource.OpenRequest{Name: "bad", Properties: resource.Properties{PropIsolate: "yes"}})
	require.ErrorIs(t, err, resource.ErrConfiguration)
}

func TestRefusedPlugins(t *testing.T) {
	t.Parallel()
	zeros := strings.Repeat("00", 32)
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"wrong protocol version", Config{Env: []string{roleEnv + "=badhandshake"}}, "speaks protocol version 99, this host speaks version 1"},
		{"wrong checksum", Config{Env: []string{roleEnv + "=plugin"}, SHA256: zeros}, "refusing to run a binary that does not match the pin"},
		{"not a plugin", Config{Path: "/bin/echo", Args: []string{"hello"}}, "hello"},
		{"exits at once", Config{Path: "/bin/true"}, "exited with code 0 during its handshake"},
		{"bad pin", Config{SHA256: "xyz"}, `SHA256 "xyz"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.cfg.StartTimeout = 20 * time.Second
			h, err := Launch(t.Context(), tc.cfg)
			require.Error(t, err)
			require.Nil(t, h)
			require.Contains(t, err.Error(), tc.want)
			t.Log(err)
		})
	}
	// The right pin is accepted.
	exe, err := os.Executable()
	require.NoError(t, err)
	h, _ := launch(t, func(c *Config) { c.SHA256 = fileSHA256(exe) })
	require.Positive(t, h.Pid())
}

func TestHostDeathKillsPlugin(t *testing.T) {
	t.Parallel()
	exe, err := os.Executable()
	require.NoError(t, err)
	cmd := exec.Command(exe)
	// TMPDIR: the killed host cannot remove its socket directory; keep it
	// in a directory of the test's own (short: a unix socket path has at
	// most 107 bytes).
	tmp, err := os.MkdirTemp("", "hd")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(tmp) })
	cmd.Env = append(os.Environ(), roleEnv+"=host", "TMPDIR="+tmp)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err)
	pluginPid, err := strconv.Atoi(strings.TrimSpace(line))
	require.NoError(t, err, "helper host said %q", line)
	require.True(t, proc.Alive(pluginPid))
	t.Cleanup(func() { _ = proc.SignalGroup(pluginPid, syscall.SIGKILL) })

	require.NoError(t, cmd.Process.Kill())
	_ = cmd.Wait()
	waitFor(t, "the orphaned plugin to exit", func() bool { return !proc.Alive(pluginPid) })
}

var _ = errors.New

func TestPluginSideIsAliveFailureIsPushed(t *testing.T) {
	t.Parallel()
	h, _ := launch(t, func(c *Config) { c.IsAliveInterval = 10 * time.Millisecond; c.LooksAliveInterval = time.Hour })
	file := filepath.Join(t.TempDir(), "fail")
	r := open(t, h, "a", resource.Properties{"fail_looks_file": file})
	var f failures
	r.(resource.FailureReporter).SetFailureHandler(f.handler)
	require.NoError(t, r.Online(t.Context()))
	require.NoError(t, r.IsAlive(t.Context()))
	require.NoError(t, os.WriteFile(file, nil, 0o600))
	waitFor(t, "the plugin-side IsAlive failure", func() bool { return len(f.get()) == 1 })
	require.ErrorIs(t, f.get()[0], resource.ErrTransient)
	require.ErrorContains(t, r.IsAlive(t.Context()), "fail_looks_file exists")
	require.ErrorContains(t, r.LooksAlive(t.Context()), "fail_looks_file exists", "a known IsAlive failure answers LooksAlive too")
	require.NoError(t, r.Terminate(t.Context()))
}

func TestFrozenPluginIsKilledByHeartbeat(t *testing.T) {
	t.Parallel()
	h, _ := launch(t, func(c *Config) {
		c.DisableAutoMTLS = true
		c.HeartbeatInterval = 20 * time.Millisecond
		c.HeartbeatTimeout = 200 * time.Millisecond
		c.MinBackoff = time.Millisecond
	})
	pid := h.Pid()
	r := open(t, h, "a", nil)
	var f failures
	r.(resource.FailureReporter).SetFailureHandler(f.handler)
	require.NoError(t, r.Online(t.Context()))
	require.NoError(t, syscall.Kill(pid, syscall.SIGSTOP))
	t.Cleanup(func() { _ = proc.SignalGroup(pid, syscall.SIGKILL) })
	waitFor(t, "the frozen plugin's failure", func() bool { return len(f.get()) == 1 })
	require.ErrorIs(t, f.get()[0], ErrPluginExited)
	require.ErrorContains(t, f.get()[0], "heartbeat")
	waitFor(t, "the frozen plugin to be killed", func() bool { return !proc.Alive(pid) })
	require.NoError(t, r.Terminate(t.Context()))
	require.NoError(t, r.Online(t.Context()), "relaunched")
}

func TestCloseWithFrozenPluginDoesNotHang(t *testing.T) {
	t.Parallel()
	h, err := Launch(t.Context(), Config{Env: []string{roleEnv + "=plugin"}, DisableAutoMTLS: true,
		StopTimeout: 100 * time.Millisecond, HeartbeatInterval: time.Hour})
	require.NoError(t, err)
	pid := h.Pid()
	require.NoError(t, syscall.Kill(pid, syscall.SIGSTOP))
	t.Cleanup(func() { _ = proc.SignalGroup(pid, syscall.SIGKILL) })
	require.NoError(t, h.Close(), "returns: go-plugin's Kill alone would block forever")
	require.False(t, proc.Alive(pid))
}

// TestPluginSurvivesRetiredThreads: a goroutine that exits while locked to
// its OS thread makes the runtime end that thread, and Pdeathsig fires when
// the forking thread ends (go.dev/issue/27505). The launch below runs on such
// a thread; the Pool forks from a thread of its own, so the plugin lives on.
// (With Go 1.26 on the reference machine a minimal reproduction did not lose
// its child either way, so this guards the property rather than proving the
// spawner thread necessary.)
func TestPluginSurvivesRetiredThreads(t *testing.T) {
	t.Parallel()
	type launched struct {
		h   *Pool
		err error
	}
	res := make(chan launched, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		h, err := Launch(context.Background(), Config{Env: []string{roleEnv + "=plugin"}, DisableAutoMTLS: true})
		res <- launched{h, err}
	}()
	l := <-res
	require.NoError(t, l.err)
	h := l.h
	t.Cleanup(func() { require.NoError(t, h.Close()) })
	pid := h.Pid()
	r := open(t, h, "a", nil)
	require.NoError(t, r.Online(t.Context()))
	time.Sleep(50 * time.Millisecond) // let a wrongly delivered Pdeathsig land
	require.NoError(t, r.IsAlive(t.Context()))
	require.Equal(t, pid, h.Pid(), "the same plugin process")
	require.True(t, proc.Alive(pid))
}

func TestIsolateConfig(t *testing.T) {
	t.Parallel()
	h, _ := launch(t, func(c *Config) { c.DisableAutoMTLS = true; c.Isolate = []string{"scripted"} })
	a, b := open(t, h, "a", nil), open(t, h, "b", nil)
	var fa, fb failures
	a.(resource.FailureReporter).SetFailureHandler(fa.handler)
	b.(resource.FailureReporter).SetFailureHandler(fb.handler)
	require.NoError(t, a.Online(t.Context()))
	require.NoError(t, b.Online(t.Context()))
	require.NoError(t, a.(resource.ProcessKiller).KillProcess("test"))
	waitFor(t, "a's failure", func() bool { return len(fa.get()) == 1 })
	require.NoError(t, b.IsAlive(t.Context()))
	require.Empty(t, fb.get(), "b runs in another process")

	_, err := Launch(t.Context(), Config{Env: []string{roleEnv + "=plugin"}, DisableAutoMTLS: true, Isolate: []string{"nope"}})
	require.ErrorIs(t, err, resource.ErrConfiguration)
	require.ErrorContains(t, err, `Isolate "nope"`)
}

// TestSocketsRemovedAfterKill: a killed plugin cannot remove its unix
// socket. The host keeps the sockets in a private 0700 directory with a
// subdirectory per process, removes a process's subdirectory when it reaps
// the process, and Close removes the directory (issue 10 item 5).
func TestSocketsRemovedAfterKill(t *testing.T) {
	t.Parallel()
	rec := &logRecorder{}
	h, err := Launch(t.Context(), Config{Env: []string{roleEnv + "=plugin"}, Logger: slog.New(rec), MinBackoff: time.Millisecond})
	require.NoError(t, err)
	sockDir := func(pid int) string {
		env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		require.NoError(t, err)
		dir := ""
		for kv := range strings.SplitSeq(string(env), "\x00") {
			if d, ok := strings.CutPrefix(kv, "PLUGIN_UNIX_SOCKET_DIR="); ok {
				dir = d // the last one counts
			}
		}
		require.NotEmpty(t, dir, "plugin %d has no PLUGIN_UNIX_SOCKET_DIR", pid)
		return dir
	}
	pid := h.Pid()
	dir := sockDir(pid)
	parent := filepath.Dir(dir)
	for _, d := range []string{dir, parent} {
		st, err := os.Stat(d)
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o700), st.Mode().Perm(), d)
	}
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1, "the plugin's socket")

	r := open(t, h, "r", nil)
	var f failures
	r.(resource.FailureReporter).SetFailureHandler(f.handler)
	require.NoError(t, r.Online(t.Context()))
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
	waitFor(t, "the failure pushed", func() bool { return len(f.get()) > 0 })
	waitFor(t, "the dead plugin's socket directory to be removed at its reaping", func() bool {
		_, err := os.Stat(dir)
		return errors.Is(err, os.ErrNotExist)
	})
	require.NoError(t, r.Terminate(t.Context()))
	require.NoError(t, r.Online(t.Context()), "relaunched")
	require.Equal(t, parent, filepath.Dir(sockDir(h.Pid())), "the relaunched plugin uses the same host directory")
	require.NoError(t, r.Offline(t.Context()))
	require.NoError(t, r.(resource.Closer).Close())
	require.NoError(t, h.Close())
	_, err = os.Stat(parent)
	require.ErrorIs(t, err, os.ErrNotExist, "Close removes the directory")
}

// A plugin process collects garbage at DefaultGCPercent, unless GOGC is
// set for it (here through Config.Env).
func TestPluginGCPercent(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		env  []string
		want string
	}{{nil, strconv.Itoa(DefaultGCPercent)}, {[]string{"GOGC=130"}, "130"}} {
		h, _ := launch(t, func(c *Config) { c.Env = append(c.Env, tc.env...) })
		file := filepath.Join(t.TempDir(), "gc")
		r := open(t, h, "a", resource.Properties{"gc_percent_file": file})
		require.NoError(t, r.Online(t.Context()))
		b, err := os.ReadFile(file)
		require.NoError(t, err)
		require.Equal(t, tc.want, string(b), "env %v", tc.env)
		require.NoError(t, r.Terminate(t.Context()))
	}
}
