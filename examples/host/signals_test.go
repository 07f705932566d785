package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sftkit/sft/examples/host/api"
)

// gone reports whether pid no longer runs (absent or a zombie).
func gone(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	i := strings.LastIndexByte(string(stat), ')')
	return i > 0 && len(stat) > i+2 && stat[i+2] == 'Z'
}

// waitGone waits until pid is gone; the deadline only keeps a broken test
// from hanging.
func waitGone(t *testing.T, pid int, what string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !gone(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("%s (pid %d) still runs", what, pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stubbornConfig is a config whose app ignores SIGTERM (so a graceful
// stop waits out its long stop_grace) and writes its pid to pidFile.
func stubbornConfig(t *testing.T, dir, pidFile string) string {
	t.Helper()
	cfg := fmt.Sprintf(`metrics: {listen: ""}
groups:
  - name: stubborn
    resources:
      - name: app
        type: genericapp
        properties:
          argv: [/bin/sh, -c, "trap '' TERM; echo $$ > %[1]s; exec sleep 1000"]
          stop_grace: 60s
          readiness: {command: [/bin/sh, -c, "test -s %[1]s"], interval: 20ms}
`, pidFile)
	p := filepath.Join(dir, "stubborn.yaml")
	require.NoError(t, os.WriteFile(p, []byte(cfg), 0o600))
	return p
}

func readPid(t *testing.T, file string) int {
	t.Helper()
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	require.NoError(t, err)
	return pid
}

// TestSecondSignalTerminatesEverything: the first SIGTERM starts the
// graceful stop, which waits for an app that ignores SIGTERM; the second
// terminates it at once, stops the plugin process, removes the socket and
// exits 128+15.
func TestSecondSignalTerminatesEverything(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the host")
	}
	bin := buildHost(t)
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "app.pid")
	sock := filepath.Join(dir, "host.sock")
	host, exited, _, errOut := startHost(t, bin, "run", "-config", stubbornConfig(t, dir, pidFile), "-socket", sock)
	c := api.NewUnixClient(sock)
	defer c.Close()
	waitEvent(t, c, 0, func(e api.Event) bool { return e.Kind == "group_state_changed" && e.To == "Online" })
	app := readPid(t, pidFile)
	// The host exits right after killing the app's cgroup, leaving it
	// empty but in place (a next start renews it): the test removes it.
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", app)); err == nil {
		if _, rel, ok := strings.Cut(strings.TrimSpace(string(b)), "::"); ok && strings.Contains(rel, "/sft/") {
			t.Cleanup(func() {
				// The app's group, then its node's and sft's if now empty
				// (a Remove of a non-empty one fails and changes nothing).
				for d := filepath.Join(cgroupRoot(), rel); strings.Contains(d, "/sft"); d = filepath.Dir(d) {
					_ = os.Remove(d)
				}
			})
		}
	}

	require.NoError(t, host.Process.Signal(syscall.SIGTERM))
	// The graceful stop is under way once the app was asked to stop.
	waitEvent(t, c, 0, func(e api.Event) bool { return e.Kind == "state_changed" && e.To == "OfflinePending" })
	require.False(t, gone(app), "the app ignores SIGTERM and waits for its stop_grace")
	start := time.Now()
	require.NoError(t, host.Process.Signal(syscall.SIGTERM))
	err := <-exited
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee)
	require.Equal(t, 128+int(syscall.SIGTERM), ee.ExitCode())
	t.Logf("second signal to exit: %v", time.Since(start).Round(time.Millisecond))
	require.Contains(t, errOut.String(), "second signal (terminated): terminating every resource and plugin process, then exiting")
	waitGone(t, app, "the app")
	require.Empty(t, procsOf(t, bin), "processes of the host binary left running")
	_, err = os.Stat(sock)
	require.True(t, os.IsNotExist(err), "socket removed")
}

// TestGoRunDeathStopsTheHost: under `go run`, a SIGTERM kills the go
// command, which does not pass it on; the host notices that its parent,
// a process named "go", is gone and stops gracefully. A shell named "go"
// (a symbolic link) plays the go command.
func TestGoRunDeathStopsTheHost(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the host")
	}
	bin := buildHost(t)
	dir := t.TempDir()
	goCmd := filepath.Join(dir, "go")
	require.NoError(t, os.Symlink("/bin/sh", goCmd))
	sock := filepath.Join(dir, "host.sock")
	hostPid := filepath.Join(dir, "host.pid")
	stderr := filepath.Join(dir, "host.err")
	cfg := filepath.Join(dir, "c.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte("metrics: {listen: \"\"}\ngroups: [{name: g, resources: [{name: r, type: genericapp, properties: {argv: [/bin/sleep, '1000']}}]}]\n"), 0o600))
	fakeGo := exec.Command(goCmd, "-c", fmt.Sprintf("%s run -config %s -socket %s >/dev/null 2>%s & echo $! > %s; wait", bin, cfg, sock, stderr, hostPid))
	require.NoError(t, fakeGo.Start())
	t.Cleanup(func() {
		if b, err := os.ReadFile(hostPid); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && !gone(pid) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	c := api.NewUnixClient(sock)
	defer c.Close()
	deadline := time.Now().Add(30 * time.Second)
	// The socket file appears at bind, before listen: wait until a
	// connection is accepted, not until the file exists.
	for {
		if conn, err := net.Dial("unix", sock); err == nil {
			conn.Close()
			break
		}
		require.False(t, time.Now().After(deadline), "the host did not come up")
		time.Sleep(20 * time.Millisecond)
	}
	waitEvent(t, c, 0, func(e api.Event) bool { return e.Kind == "group_state_changed" && e.To == "Online" })
	pid := readPid(t, hostPid)

	require.NoError(t, fakeGo.Process.Kill())
	_ = fakeGo.Wait()
	waitGone(t, pid, "the orphaned host")
	b, err := os.ReadFile(stderr)
	require.NoError(t, err)
	require.Contains(t, string(b), fmt.Sprintf("the go run process (pid %d) is gone: stopping", fakeGo.Process.Pid))
	require.Contains(t, string(b), "every group is offline")
	require.Empty(t, procsOf(t, bin), "processes of the host binary left running")
	_, err = os.Stat(sock)
	require.True(t, os.IsNotExist(err), "socket removed")
}

// cgroupRoot is where the cgroup v2 hierarchy is mounted.
func cgroupRoot() string {
	if _, err := os.Stat("/sys/fs/cgroup/unified/cgroup.procs"); err == nil {
		return "/sys/fs/cgroup/unified"
	}
	return "/sys/fs/cgroup"
}
