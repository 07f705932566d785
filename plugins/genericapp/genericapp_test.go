package genericapp

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sftkit/sft/internal/proc"
	"github.com/sftkit/sft/internal/testenv"
	"github.com/sftkit/sft/resource"
)

func TestTypeName(t *testing.T) {
	t.Parallel()
	require.Equal(t, "genericapp", New().Name())
	reg, err := resource.NewRegistry(New())
	require.NoError(t, err)
	require.Equal(t, []string{"genericapp"}, reg.Names())
}

func TestValidate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	notExec := filepath.Join(dir, "data.txt")
	require.NoError(t, os.WriteFile(notExec, []byte("x"), 0o644))
	ok := func(extra resource.Properties) resource.Properties {
		p := resource.Properties{"argv": []any{"/bin/sleep", "1000"}}
		for k, v := range extra {
			p[k] = v
		}
		return p
	}
	tests := []struct {
		name  string
		props resource.Properties
		field string // "" means valid
		value any    // checked when not nil
	}{
		{"minimal", ok(nil), "", nil},
		{"path lookup", resource.Properties{"argv": []any{"sleep", "1"}}, "", nil},
		{"everything", ok(resource.Properties{
			"env": map[string]any{"A": "1"}, "clean_env": true, "dir": dir, "user": "root", "group": 0,
			"stdout": filepath.Join(dir, "out.log"), "stderr": "discard", "stop_signal": "INT",
			"stop_grace": "1.5s", "readiness": map[string]any{"tcp": "127.0.0.1:8080", "interval": "10ms"},
			"health": map[string]any{"http": "http://127.0.0.1:8080/", "expect_status": 204},
		}), "", nil},
		{"grace as seconds", ok(resource.Properties{"stop_grace": 2}), "", nil},
		{"grace zero", ok(resource.Properties{"stop_grace": "0s"}), "", nil},
		{"no argv", resource.Properties{}, "argv", nil},
		{"empty argv", resource.Properties{"argv": []any{}}, "argv", nil},
		{"missing executable", resource.Properties{"argv": []any{"/no/such/program"}}, "argv", "/no/such/program"},
		{"not in PATH", resource.Properties{"argv": []any{"no-such-program-xyz"}}, "argv", "no-such-program-xyz"},
		{"PATH from env", resource.Properties{"argv": []any{"sleep"}, "env": map[string]any{"PATH": dir}}, "argv", "sleep"},
		{"not executable", resource.Properties{"argv": []any{notExec}}, "argv", notExec},
		{"directory", resource.Properties{"argv": []any{dir}}, "argv", dir},
		{"argv wrong type", resource.Properties{"argv": "/bin/sleep 1"}, "argv", nil},
		{"unknown property", ok(resource.Properties{"restart": true}), "restart", nil},
		{"dir relative", ok(resource.Properties{"dir": "tmp"}), "dir", "tmp"},
		{"dir missing", ok(resource.Properties{"dir": "/no/such/dir"}), "dir", "/no/such/dir"},
		{"dir is a file", ok(resource.Properties{"dir": notExec}), "dir", notExec},
		{"env bad name", ok(resource.Properties{"env": map[string]any{"A=B": "1"}}), "env", "A=B"},
		{"unknown user", ok(resource.Properties{"user": "no-such-user-xyz"}), "user", "no-such-user-xyz"},
		{"unknown group", ok(resource.Properties{"group": "no-such-group-xyz"}), "group", "no-such-group-xyz"},
		{"negative uid", ok(resource.Properties{"user": -1}), "user", nil},
		{"stdout relative", ok(resource.Properties{"stdout": "out.log"}), "stdout", "out.log"},
		{"stderr dir missing", ok(resource.Properties{"stderr": "/no/such/dir/err.log"}), "stderr", "/no/such/dir/err.log"},
		{"stdout is dir", ok(resource.Properties{"stdout": dir}), "stdout", dir},
		{"bad signal", ok(resource.Properties{"stop_signal": "SIGNOPE"}), "stop_signal", "SIGNOPE"},
		{"signal number out of range", ok(resource.Properties{"stop_signal": "99"}), "stop_signal", "99"},
		{"negative grace", ok(resource.Properties{"stop_grace": "-1s"}), "stop_grace", "-1s"},
		{"readiness none", ok(resource.Properties{"readiness": map[string]any{"interval": "1s"}}), "readiness", nil},
		{"readiness bad tcp", ok(resource.Properties{"readiness": map[string]any{"tcp": "nope"}}), "readiness.tcp", "nope"},
		{"health bad status", ok(resource.Properties{"health": map[string]any{"http": "http://x/", "expect_status": 42}}), "health.expect_status", 42},
		{"health unknown field", ok(resource.Properties{"health": map[string]any{"udp": "x"}}), "udp", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := New().Validate(t.Context(), tc.props)
			r, oerr := New().Open(t.Context(), resource.OpenRequest{Name: "x", Properties: tc.props})
			if oerr == nil {
				require.NoError(t, r.(resource.Closer).Close())
			}
			if tc.field == "" {
				require.NoError(t, err)
				require.NoError(t, oerr)
				return
			}
			require.ErrorIs(t, err, resource.ErrConfiguration, "%v", err)
			require.ErrorIs(t, oerr, resource.ErrConfiguration, "%v", oerr)
			var re *resource.Error
			require.ErrorAs(t, err, &re)
			require.Equal(t, tc.field, re.Field, "error: %v", err)
			if tc.value != nil {
				require.Equal(t, tc.value, re.Value, "error: %v", err)
			}
		})
	}
}

// The "a missing executable is a configuration error", including
// an executable removed between Open and Online.
func TestMissingExecutable(t *testing.T) {
	t.Parallel()
	_, err := New().Open(t.Context(), resource.OpenRequest{Properties: resource.Properties{"argv": []any{"/no/such/app"}}})
	require.ErrorIs(t, err, resource.ErrConfiguration)
	require.Equal(t, resource.ClassConfiguration, resource.ClassOf(err))
	require.Contains(t, err.Error(), `argv "/no/such/app"`)

	bin := filepath.Join(t.TempDir(), "app")
	require.NoError(t, os.WriteFile(bin, []byte("#!/bin/sh\nexec sleep 1000\n"), 0o755))
	a := open(t, resource.Properties{"argv": []any{bin}}, nil)
	require.NoError(t, os.Remove(bin))
	err = a.Online(t.Context())
	require.ErrorIs(t, err, resource.ErrConfiguration)
	require.Error(t, a.LooksAlive(t.Context()))
}

// kill -9 of the application pushes a failure naming the signal, at once
// (the test waits for the push, it does not time it: see the benchmark).
func TestKill9PushesFailure(t *testing.T) {
	t.Parallel()
	a := open(t, helperProps("sleep", nil), nil)
	pushed := make(chan error, 4)
	a.SetFailureHandler(func(err error) { pushed <- err })
	require.NoError(t, a.Online(t.Context()))
	require.NoError(t, a.LooksAlive(t.Context()))
	require.NoError(t, a.IsAlive(t.Context()))
	pid := a.Pid()
	require.NotZero(t, pid)

	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
	var err error
	select {
	case err = <-pushed:
	case <-time.After(20 * time.Second):
		t.Fatal("no failure pushed after kill -9")
	}
	require.Contains(t, err.Error(), "SIGKILL")
	require.Contains(t, err.Error(), strconv.Itoa(pid))
	require.Equal(t, resource.ClassTransient, resource.ClassOf(err))
	lerr := a.LooksAlive(t.Context())
	require.Error(t, lerr)
	require.Contains(t, lerr.Error(), "SIGKILL")
	require.Error(t, a.IsAlive(t.Context()))

	require.NoError(t, a.Terminate(t.Context()))
	require.False(t, exists(pid), "leader reaped: no zombie")
	require.Len(t, pushed, 0, "exactly one failure")
}

func TestExitCodePushed(t *testing.T) {
	t.Parallel()
	ready := filepath.Join(t.TempDir(), "ready")
	a := open(t, helperProps("exit-on-usr1", map[string]any{"READYFILE": ready}), nil)
	pushed := make(chan error, 1)
	a.SetFailureHandler(func(err error) { pushed <- err })
	require.NoError(t, a.Online(t.Context()))
	pid := a.Pid()
	// The helper says when it listens for SIGUSR1.
	waitFile(t, ready, "")
	require.NoError(t, syscall.Kill(pid, syscall.SIGUSR1))
	var err error
	select {
	case err = <-pushed:
	case <-time.After(20 * time.Second):
		t.Fatal("no failure pushed after exit")
	}
	require.Contains(t, err.Error(), "exited with code 3")
	require.NoError(t, a.Offline(t.Context()), "Offline after a crash is fine")
}

// A child that spawned children and grandchildren (one ignoring SIGTERM)
// leaves nothing behind after Offline; no failure is pushed.
func TestOfflineKillsGrandchildren(t *testing.T) {
	t.Parallel()
	pidFile := filepath.Join(t.TempDir(), "pids")
	props := helperProps("spawn", map[string]any{"PIDFILE": pidFile})
	props["stop_grace"] = "300ms"
	a := open(t, props, nil)
	a.SetFailureHandler(func(err error) { t.Errorf("failure pushed during Offline: %v", err) })
	require.NoError(t, a.Online(t.Context()))
	leader := a.Pid()
	var pids []int
	for _, s := range strings.Fields(waitFile(t, pidFile, "") + " " + waitFile(t, pidFile+".child", "")) {
		p, err := strconv.Atoi(s)
		require.NoError(t, err)
		pids = append(pids, p)
	}
	require.Len(t, pids, 3)
	for _, p := range pids {
		require.True(t, proc.Alive(p), "pid %d alive before Offline", p)
	}
	members, err := proc.GroupMembers(leader, false)
	require.NoError(t, err)
	require.Len(t, members, 4, "leader, 2 children, 1 grandchild in one group")

	require.NoError(t, a.Offline(t.Context()))
	require.False(t, exists(leader), "leader reaped")
	for _, p := range pids {
		require.False(t, proc.Alive(p), "pid %d survived Offline", p)
	}
	require.Empty(t, liveGroupMembers(t, leader), "group gone (zombies awaiting a late init do not count)")
	require.Error(t, a.LooksAlive(t.Context()))
}

// A leader that ignores SIGTERM is killed with SIGKILL once the grace
// period is over.
func TestIgnoringSIGTERMKilledAfterGrace(t *testing.T) {
	t.Parallel()
	sink := &logSink{}
	props := helperProps("ignore-term", nil)
	props["stop_grace"] = "100ms"
	a := open(t, props, sink)
	require.NoError(t, a.Online(t.Context()))
	pid := a.Pid()
	// Wait until the helper ignores SIGTERM (its disposition is in
	// /proc/pid/status SigIgn, bit 15-1).
	waitSigMask(t, pid, "SigIgn:", syscall.SIGTERM)
	require.NoError(t, a.Offline(t.Context()))
	require.False(t, exists(pid))
	logs := strings.Join(sink.records(), "\n")
	require.Contains(t, logs, "stop grace period over")
	require.Contains(t, logs, "stopped pid="+strconv.Itoa(pid)+" exit=killed by signal SIGKILL (9)")
}

// A well-behaved application ends on the stop signal, without SIGKILL.
func TestGracefulOffline(t *testing.T) {
	t.Parallel()
	sink := &logSink{}
	props := helperProps("sleep", nil)
	props["stop_signal"] = "INT"
	a := open(t, props, sink)
	pushed := atomic.Int32{}
	a.SetFailureHandler(func(error) { pushed.Add(1) })
	require.NoError(t, a.Online(t.Context()))
	pid := a.Pid()
	require.NoError(t, a.Offline(t.Context()))
	require.Zero(t, pushed.Load())
	logs := strings.Join(sink.records(), "\n")
	require.Contains(t, logs, "stopped pid="+strconv.Itoa(pid)+" exit=killed by signal SIGINT (2)")
	require.NotContains(t, logs, "grace period over")
	require.NoError(t, a.Offline(t.Context()), "idempotent")
}

// The stop signal reaches every process of the tree, the leader (through
// its pidfd) and the others (through the cgroup), and a tree that obeys it
// is not killed.
func TestStopSignalReachesTheTree(t *testing.T) {
	t.Parallel()
	sink := &logSink{}
	dir := t.TempDir()
	out, ready := filepath.Join(dir, "out"), filepath.Join(dir, "ready")
	a := open(t, helperProps("term-child", map[string]any{"OUT": out, "READYFILE": ready}), sink)
	require.NoError(t, a.Online(t.Context()))
	pid := a.Pid()
	waitFile(t, ready, "")
	require.NoError(t, a.Offline(t.Context()))
	got, err := os.ReadFile(out)
	require.NoError(t, err)
	require.Equal(t, "term", string(got), "the child got the stop signal")
	logs := strings.Join(sink.records(), "\n")
	require.Contains(t, logs, "stopped pid="+strconv.Itoa(pid)+" exit=killed by signal SIGTERM (15)")
	require.NotContains(t, logs, "grace period over")
	// The group is empty and stays usable: the next start needs no
	// renewal and runs.
	require.NoError(t, a.Online(t.Context()))
	require.NotZero(t, a.Pid())
	require.NotEqual(t, pid, a.Pid())
	require.NoError(t, a.Offline(t.Context()))
}

// waitSigMask waits until the signal mask line of /proc/pid/status
// ("SigIgn:", "SigCgt:") contains sig.
func waitSigMask(t *testing.T, pid int, field string, sig syscall.Signal) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	for {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		require.NoError(t, err)
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, field); ok {
				mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
				require.NoError(t, err)
				if mask&(1<<(uint(sig)-1)) != 0 {
					return
				}
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("pid %d: %s lacks %v", pid, field, sig)
		case <-time.After(time.Millisecond):
		}
	}
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	require.NoError(t, ln.Close())
	return port
}

// Online does not return before the HTTP readiness check passes; every
// attempt reports progress.
func TestReadinessGatesOnline(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	ready := filepath.Join(t.TempDir(), "ready")
	props := helperProps("http", map[string]any{"PORT": port, "READYFILE": ready})
	props["readiness"] = map[string]any{"http": "http://127.0.0.1:" + port + "/healthz", "interval": "5ms"}
	a := open(t, props, nil)

	res := make(chan error, 1)
	var attempts atomic.Int32
	ctx := resource.WithProgress(t.Context(), func(msg string) {
		n := attempts.Add(1)
		if n == 3 {
			// Inside Online (progress is reported from it): it has
			// not returned after 3 failed attempts.
			require.Empty(t, res, "Online returned before the check passed")
			require.Contains(t, msg, "readiness attempt 3")
			require.NoError(t, os.WriteFile(ready, nil, 0o644))
		}
	})
	go func() { res <- a.Online(ctx) }()
	require.NoError(t, <-res)
	require.GreaterOrEqual(t, attempts.Load(), int32(4), "3 failures and a success")

	resp, err := http.Get("http://127.0.0.1:" + port + "/")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.NoError(t, a.IsAlive(t.Context()))

	// The health check (readiness reused) fails when the app says 503.
	require.NoError(t, os.Remove(ready))
	require.ErrorContains(t, a.IsAlive(t.Context()), "got status 503")
	require.NoError(t, a.LooksAlive(t.Context()), "LooksAlive is the process only")
}

// An application that exits while Online waits for readiness makes Online
// fail at once with the exit in the error, leaving nothing behind.
func TestExitDuringReadiness(t *testing.T) {
	t.Parallel()
	props := helperProps("exit", map[string]any{"CODE": "4"})
	props["readiness"] = map[string]any{"tcp": "127.0.0.1:" + freePort(t), "interval": "10ms"}
	a := open(t, props, nil)
	err := a.Online(t.Context()) // the test's ctx has no deadline: only the exit ends it
	require.Error(t, err)
	require.Contains(t, err.Error(), "exited with code 4")
	require.Equal(t, resource.ClassTransient, resource.ClassOf(err))
	require.Zero(t, a.Pid())
}

// Terminate during an Online that waits for readiness makes Online return
// an error, and kills the process.
func TestTerminateDuringOnline(t *testing.T) {
	t.Parallel()
	props := helperProps("sleep", nil)
	props["readiness"] = map[string]any{"tcp": "127.0.0.1:" + freePort(t), "interval": "10ms"}
	a := open(t, props, nil)
	res := make(chan error, 1)
	hanging := make(chan int, 1)
	ctx := resource.WithProgress(t.Context(), func(string) {
		select {
		case hanging <- a.Pid():
		default:
		}
	})
	go func() { res <- a.Online(ctx) }()
	pid := <-hanging
	require.NotZero(t, pid)
	require.NoError(t, a.Terminate(t.Context()))
	err := <-res
	require.Error(t, err)
	require.Contains(t, err.Error(), "terminated")
	require.False(t, exists(pid))
	require.NoError(t, a.Terminate(t.Context()), "idempotent")
}

// A ctx deadline ends a readiness wait with DeadlineExceeded.
func TestOnlineDeadline(t *testing.T) {
	t.Parallel()
	props := helperProps("sleep", nil)
	props["readiness"] = map[string]any{"tcp": "127.0.0.1:" + freePort(t), "interval": "10ms"}
	a := open(t, props, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	err := a.Online(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Zero(t, a.Pid(), "Online killed what it started")
}

func TestOutputToLog(t *testing.T) {
	t.Parallel()
	sink := &logSink{ch: make(chan string, 64)}
	a := open(t, helperProps("print", nil), sink)
	require.NoError(t, a.Online(t.Context()))
	want := map[string]bool{"hello stdout stream=stdout": false, "hello stderr stream=stderr": false}
	for seen := 0; seen < len(want); {
		rec := <-sink.ch
		for w, done := range want {
			if !done && strings.HasPrefix(rec, w) {
				want[w] = true
				seen++
			}
		}
	}
	require.NoError(t, a.Offline(t.Context()))
}

func TestOutputToFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	props := helperProps("print", nil)
	props["stdout"] = filepath.Join(dir, "out.log")
	props["stderr"] = "discard"
	a := open(t, props, nil)
	require.NoError(t, a.Online(t.Context()))
	require.Equal(t, "hello stdout\n", waitFile(t, filepath.Join(dir, "out.log"), "\n"))
	require.NoError(t, a.Offline(t.Context()))
}

// Environment, working directory and (as root) user and group reach the
// program.
func TestEnvDirUser(t *testing.T) {
	t.Parallel()
	testenv.RequireRoot(t)
	dir := t.TempDir()
	require.NoError(t, os.Chmod(dir, 0o777))
	require.NoError(t, os.Chmod(filepath.Dir(dir), 0o755)) // t.TempDir's parent is 0700
	out := filepath.Join(dir, "report")
	props := helperProps("report", map[string]any{"FOO": "bar baz", "OUT": out})
	props["dir"] = dir
	props["user"] = 65534 // nobody
	props["group"] = "65534"
	// The test binary lives in a directory "nobody" may not search; copy
	// it somewhere it can.
	bin := filepath.Join(dir, "app.test")
	copyFile(t, os.Args[0], bin)
	props["argv"] = []any{bin}
	a := open(t, props, nil)
	require.NoError(t, a.Online(t.Context()))
	got := strings.Split(waitFile(t, out, ""), "\n")
	require.Equal(t, []string{dir, "bar baz", "65534", "65534"}, got)
	require.NoError(t, a.Offline(t.Context()))
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(to, b, 0o755))
}

// Idempotence and order independence of the life-cycle calls.
func TestLifecycle(t *testing.T) {
	t.Parallel()
	a := open(t, helperProps("sleep", nil), nil)
	ctx := t.Context()
	require.NoError(t, a.Offline(ctx))
	require.NoError(t, a.Terminate(ctx))
	require.Error(t, a.LooksAlive(ctx))
	require.NoError(t, a.Online(ctx))
	first := a.Pid()
	require.NoError(t, a.Online(ctx), "Online of a running instance")
	require.Equal(t, first, a.Pid(), "no second process")
	require.NoError(t, a.Terminate(ctx))
	require.NoError(t, a.Terminate(ctx))
	require.NoError(t, a.Offline(ctx))
	require.False(t, exists(first))
	require.NoError(t, a.Online(ctx))
	second := a.Pid()
	require.NotEqual(t, first, second)
	require.NoError(t, a.Close())
	require.NoError(t, a.Close())
	require.False(t, exists(second))
	require.Error(t, a.Online(ctx), "Online after Close")
}

// A descendant that calls setsid() leaves the process group but not the
// cgroup: Offline kills it too, and does not wait for ever on the output
// pipe it kept open (the reader goroutine ends: goleak in TestMain checks
// it).
func TestSetsidEscapeGoneAfterOffline(t *testing.T) {
	t.Parallel()
	pidFile := filepath.Join(t.TempDir(), "pid")
	a := open(t, helperProps("escape", map[string]any{"PIDFILE": pidFile}), &logSink{})
	require.NoError(t, a.Online(t.Context()))
	leader := a.Pid()
	escaped, err := strconv.Atoi(waitFile(t, pidFile, ""))
	require.NoError(t, err)
	t.Cleanup(func() { _ = syscall.Kill(escaped, syscall.SIGKILL) }) // only if the test failed
	require.True(t, proc.Alive(escaped))
	require.NoError(t, a.Offline(t.Context()))
	require.False(t, exists(leader))
	require.False(t, proc.Alive(escaped), "setsid escape survived Offline (%s)", a.Containment())
}

// clean_env: the program sees only the env property.
func TestCleanEnv(t *testing.T) {
	t.Parallel()
	out := filepath.Join(t.TempDir(), "env")
	a := open(t, resource.Properties{
		"argv": []any{"/usr/bin/env"}, "clean_env": true, "env": map[string]any{"B": "2", "A": "1"},
		"stdout": out,
	}, nil)
	// env is a one-shot program: it may exit before Online returns, which
	// Online reports; what matters here is the environment it printed.
	if err := a.Online(t.Context()); err != nil {
		require.ErrorContains(t, err, "exited with code 0")
	}
	require.Equal(t, "A=1\nB=2\n", waitFile(t, out, "B=2\n"))
}

// Instances without env of their own share one copy of the inherited
// environment (issue 15); one with env gets its own, which leaves the
// shared copy as it was.
func TestInheritedEnvShared(t *testing.T) {
	a, err := Config{Argv: []string{"/bin/true"}}.resolve()
	if err != nil {
		t.Fatal(err)
	}
	b, err := Config{Argv: []string{"/bin/true"}}.resolve()
	if err != nil {
		t.Fatal(err)
	}
	if len(a.env) == 0 || &a.env[0] != &b.env[0] {
		t.Fatal("two instances without env hold two copies of the environment")
	}
	before := slices.Clone(a.env)
	c, err := Config{Argv: []string{"/bin/true"}, Env: map[string]string{"SFT_X": "1", "PATH": "/bin"}}.resolve()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(c.env, "SFT_X=1") || !slices.Contains(c.env, "PATH=/bin") {
		t.Fatalf("env of its own missing: %v", c.env)
	}
	if !slices.Equal(a.env, before) {
		t.Fatal("an instance's env changed the shared copy")
	}
}

// The instance's lines name it once: the caller's logger already has
// resource and type (resource.OpenRequest.Logger), the type adds none of
// them again (it did: every line carried "resource" twice).
func TestLogNamesInstanceOnce(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var buf bytes.Buffer
	w := writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return buf.Write(p) })
	log := slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug})).With("resource", "g/app", "type", TypeName)
	r, err := NewWithOptions(Options{Node: testNode(t)}).Open(t.Context(), resource.OpenRequest{Name: "g/app",
		Properties: resource.Properties{"argv": []any{"/bin/sleep", "100"}, "stabilize": "0s"}, Logger: log})
	require.NoError(t, err)
	a := r.(*App)
	defer a.Close()
	require.NoError(t, a.Online(t.Context()))
	require.NoError(t, a.Offline(t.Context()))
	mu.Lock()
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	mu.Unlock()
	require.GreaterOrEqual(t, len(lines), 2, "started and stopped")
	for _, l := range lines {
		require.Equal(t, 1, strings.Count(l, `"resource":`), l)
		require.Equal(t, 1, strings.Count(l, `"type":`), l)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// "log" outputs: every line once, in order, CR LF trimmed, an empty line
// kept, a line over 64 KiB in pieces, a last line without a newline at
// the end; no goroutine per output (issue 15), and nothing left watched
// after Offline.
func TestOutputLines(t *testing.T) {
	sink := &logSink{ch: make(chan string, 64)}
	// The marker tells the test that "four" is in the pipe (printf is a
	// builtin: its write is done when touch runs); stopping the shell
	// before that would cut the line off in the program, not in sft.
	marker := filepath.Join(t.TempDir(), "four-written")
	script := `printf 'one\r\ntwo\n\nthree'; printf '%*s\n' 70000 '' | tr ' ' x; printf 'four'; touch "$1"; sleep 100`
	a := open(t, resource.Properties{"argv": []any{"/bin/sh", "-c", script, "sh", marker}, "stabilize": "0s", "stderr": "discard"}, sink)
	watched := outputs.Watched()
	require.NoError(t, a.Online(t.Context()))
	require.Equal(t, watched+1, outputs.Watched(), "stdout watched")
	stacks := make([]byte, 1<<22)
	stacks = stacks[:runtime.Stack(stacks, true)]
	for _, g := range strings.Split(string(stacks), "\n\n") {
		if strings.Contains(g, "fdwatch.(*Set).run") { // the one shared goroutine, maybe reading now
			continue
		}
		if strings.Contains(g, "genericapp.(*child)") || strings.Contains(g, "genericapp.(*outPipe)") {
			t.Fatalf("a goroutine stands for the running program:\n%s", g)
		}
	}
	pid := a.Pid()
	waitFor := func(n int) []string {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			var lines []string
			for _, r := range sink.records() {
				if strings.Contains(r, "stream=stdout") {
					lines = append(lines, r)
				}
			}
			if len(lines) >= n {
				return lines
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d lines logged, want %d", len(lines), n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	lines := waitFor(5)
	msg := func(r string) string { return r[:strings.Index(r, " stream=stdout")] }
	require.Equal(t, "one", msg(lines[0]))
	require.Equal(t, "two", msg(lines[1]))
	require.Equal(t, "", msg(lines[2]))
	require.Equal(t, "three"+strings.Repeat("x", 64<<10-5), msg(lines[3]), "the first 64 KiB")
	require.Equal(t, strings.Repeat("x", 70000-(64<<10-5)), msg(lines[4]), "the rest of the long line")
	require.Contains(t, lines[0], fmt.Sprintf("pid=%d", pid))
	require.Eventually(t, func() bool { _, err := os.Stat(marker); return err == nil }, 20*time.Second, 5*time.Millisecond)
	require.NoError(t, a.Offline(t.Context()))
	lines = waitFor(6)
	require.Equal(t, "four", msg(lines[5]), "the last line, unterminated, at the end")
	require.Len(t, lines, 6)
	require.Equal(t, watched, outputs.Watched(), "nothing left watched")
}
