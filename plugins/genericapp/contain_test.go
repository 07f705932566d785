package genericapp

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sftkit/sft/internal/cgroup"
	"github.com/sftkit/sft/internal/proc"
	"github.com/sftkit/sft/internal/testenv"
	"github.com/sftkit/sft/plugins"
	"github.com/sftkit/sft/resource"
)

// requireCgroups skips (or fails with SFT_REQUIRE_ROOT_TESTS=1) without
// root, and checks that the test's cgroups are gone when it ends.
func requireCgroups(t *testing.T, node string) {
	t.Helper()
	testenv.RequireRoot(t)
	l, err := cgroup.Discover()
	require.NoError(t, err)
	if l.V2 == "" {
		t.Skip("no cgroup2 hierarchy")
	}
	dir := filepath.Join(l.V2, cgroupParent, cgroup.EscapeName(node))
	t.Cleanup(func() {
		_, err := os.Stat(dir)
		if os.IsNotExist(err) {
			return
		}
		t.Errorf("cgroup %s left behind", dir)
		// Clean up after the failure all the same.
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			g, err := cgroup.New(l, nil, cgroupParent, cgroup.EscapeName(node), e.Name())
			if err != nil {
				continue
			}
			_ = g.Kill()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_ = g.WaitEmpty(ctx)
			cancel()
			own, _ := cgroup.Self()
			g, _ = cgroup.New(l, own, cgroupParent, cgroup.EscapeName(node), e.Name())
			_ = g.Remove()
		}
	})
}

func slogOf(s *logSink) *slog.Logger { return slog.New(s) }

// pidsOf reads the pids a helper wrote.
func pidsOf(t *testing.T, file string) []int {
	t.Helper()
	var out []int
	for _, f := range strings.Fields(waitFile(t, file, "")) {
		n, err := strconv.Atoi(f)
		require.NoError(t, err)
		out = append(out, n)
	}
	return out
}

// killAtEnd SIGKILLs pids when the test ends (only matters on failure).
func killAtEnd(t *testing.T, pids ...int) {
	t.Cleanup(func() {
		for _, p := range pids {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
	})
}

// Plugin SIGKILL while an app with a child and a listening grandchild is
// online: the relaunched plugin's Open kills the old tree (no orphan keeps
// the port) and Online succeeds on the same port.
func TestPluginSIGKILLLeavesNoOrphan(t *testing.T) {
	t.Parallel()
	node := testNode(t)
	requireCgroups(t, node)
	h, err := plugins.Launch(t.Context(), plugins.Config{DisableAutoMTLS: true, Env: []string{NodeEnv + "=" + node}})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, h.Close()) })
	typ, ok := h.Type(TypeName)
	require.True(t, ok)

	port := freePort(t)
	dir := t.TempDir()
	props := func(pidFile string) resource.Properties {
		p := helperProps("tree", map[string]any{"PORT": port, "PIDFILE": pidFile, "READYFILE": filepath.Join(dir, "ready")})
		p["readiness"] = map[string]any{"tcp": "127.0.0.1:" + port, "interval": "10ms"}
		return p
	}
	open := func(pidFile string) resource.Resource {
		// Right after the SIGKILL the host may not have noticed the
		// death yet: the Open that fails on the dead process is retried
		// (bounded) on the relaunched one.
		for i := 0; ; i++ {
			r, err := typ.Open(t.Context(), resource.OpenRequest{Name: "web", Properties: props(pidFile)})
			if err == nil {
				return r
			}
			require.ErrorContains(t, err, "plugin process exited")
			require.Less(t, i, 500, "plugin not relaunched")
			time.Sleep(10 * time.Millisecond)
		}
	}
	r := open(filepath.Join(dir, "pids1"))
	// Still open after the crash, r is reopened in the relaunched plugin
	// (in the background), so it must be closed too.
	t.Cleanup(func() { _ = r.(resource.Closer).Close() })
	require.NoError(t, r.Online(t.Context()))
	old := pidsOf(t, filepath.Join(dir, "pids1"))
	require.Len(t, old, 2)
	killAtEnd(t, old...)

	require.NoError(t, syscall.Kill(h.Pid(), syscall.SIGKILL))
	// The plugin's death kills the leader (Pdeathsig); the child and the
	// listening grandchild live on in the cgroup until the next Open.
	r2 := open(filepath.Join(dir, "pids2"))
	t.Cleanup(func() {
		if c, ok := r2.(resource.Closer); ok {
			require.NoError(t, c.Close())
		}
	})
	for _, p := range old {
		require.False(t, proc.Alive(p), "old pid %d survived the relaunched plugin's Open", p)
	}
	require.NoError(t, r2.Online(t.Context()), "same port again")
	now := pidsOf(t, filepath.Join(dir, "pids2"))
	require.Len(t, now, 2)
	killAtEnd(t, now...)
	for _, p := range now {
		require.True(t, proc.Alive(p))
		require.NotContains(t, old, p)
	}
	require.NoError(t, r2.Offline(t.Context()))
	for _, p := range now {
		require.False(t, proc.Alive(p))
	}
	_ = r
}

// Host SIGKILL (here a helper acting as an in-process host): the leader
// dies with it (Pdeathsig); its children survive until the host opens the
// resource again, which kills them before anything starts: never a second
// copy next to the old one.
func TestHostSIGKILLThenRestart(t *testing.T) {
	t.Parallel()
	node := testNode(t)
	requireCgroups(t, node)
	children := sigkilledHost(t, node)
	for _, p := range children {
		require.True(t, proc.Alive(p), "documented: %d lives until the next Open", p)
	}

	// The restarted host opens the resource again.
	sink := &logSink{}
	r, err := NewWithOptions(Options{Node: node}).Open(t.Context(), resource.OpenRequest{
		Name: "host", Properties: helperProps("sleep", nil), Logger: slogOf(sink)})
	require.NoError(t, err)
	a := r.(*App)
	t.Cleanup(func() { require.NoError(t, a.Close()) })
	for _, p := range children {
		require.False(t, proc.Alive(p), "old pid %d survived the restart's Open", p)
	}
	require.True(t, slices.ContainsFunc(sink.records(), func(s string) bool {
		return strings.HasPrefix(s, "killed the leftover of a previous run")
	}), "the reclaim is logged: %q", sink.records())
	require.NoError(t, a.Online(t.Context()))
	box := a.box.(*cgroupBox)
	procs, err := box.g.Procs()
	require.NoError(t, err)
	require.Equal(t, []int{a.Pid()}, procs, "one copy")
}

// sigkilledHost runs a helper acting as an in-process host (extra
// environment added) with an app of two children and a grandchild on node,
// SIGKILLs it once the tree is up, waits for the app's leader to die and
// returns the pids of the three descendants, still running.
func sigkilledHost(t *testing.T, node string, env ...string) []int {
	t.Helper()
	pidFile := filepath.Join(t.TempDir(), "pid")
	host := exec.Command(os.Args[0])
	host.Env = append(append(os.Environ(), helperEnv+"=host", "PIDFILE="+pidFile, "NODE="+node, "APPMODE=spawn"), env...)
	host.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, host.Start())
	t.Cleanup(func() { _ = syscall.Kill(-host.Process.Pid, syscall.SIGKILL); _ = host.Wait() })
	leader := pidsOf(t, pidFile)[0]
	children := append(pidsOf(t, pidFile+".app"), pidsOf(t, pidFile+".app.child")...)
	require.Len(t, children, 3)
	killAtEnd(t, children...)

	require.NoError(t, host.Process.Kill())
	_ = host.Wait()
	waitNotAlive(t, leader)
	return children
}

// The memory limit is enforced: the app is killed by the OOM killer and the
// failure pushed says so.
func TestMemoryLimitKillsAndSaysOOM(t *testing.T) {
	t.Parallel()
	node := testNode(t)
	requireCgroups(t, node)
	props := helperProps("alloc-later", nil)
	props["memory_limit"] = "32MiB"
	props["tasks_limit"] = 64
	props["cpu_limit"] = 1
	r, err := NewWithOptions(Options{Node: node}).Open(t.Context(), resource.OpenRequest{Name: "hog", Properties: props})
	require.NoError(t, err)
	a := r.(*App)
	t.Cleanup(func() { require.NoError(t, a.Close()) })
	require.Contains(t, a.Containment(), "memory=33554432 (")
	require.NotContains(t, a.Containment(), "not applied")
	failed := make(chan error, 1)
	a.SetFailureHandler(func(err error) { failed <- err })
	require.NoError(t, a.Online(t.Context()))
	select {
	case err := <-failed:
		require.ErrorContains(t, err, "by the memory limit (OOM)")
	case <-time.After(30 * time.Second):
		t.Fatal("not killed by the memory limit")
	}
}

// Bad limit properties name the field and the value.
func TestLimitValidation(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		field string
		val   any
	}{
		{"memory_limit", "12 parsecs"}, {"memory_limit", "512"}, {"memory_limit", -5.0}, {"memory_limit", true},
		{"cpu_limit", 0.0}, {"cpu_limit", -1.0}, {"tasks_limit", 0}, {"stabilize", "-1s"},
	} {
		props := resource.Properties{"argv": []any{"/bin/sleep", "1"}, tc.field: tc.val}
		err := New().Validate(t.Context(), props)
		require.ErrorIs(t, err, resource.ErrConfiguration, "%s=%v", tc.field, tc.val)
		require.ErrorContains(t, err, tc.field)
	}
	n, err := parseBytes("512MiB")
	require.NoError(t, err)
	require.Equal(t, int64(512<<20), n)
	n, err = parseBytes("1G")
	require.NoError(t, err)
	require.Equal(t, int64(1<<30), n)
	n, err = parseBytes(2097152.0)
	require.NoError(t, err)
	require.Equal(t, int64(2<<20), n)
}

// Fallback containment (cgroups disabled): said in the log and in
// Containment, limits reported not applied, and Offline still ends setsid
// and double-fork escapes (found by the instance marker and the subreaper).
func TestFallbackContainment(t *testing.T) {
	t.Parallel()
	node := testNode(t)
	sink := &logSink{}
	pidFile := filepath.Join(t.TempDir(), "pid")
	props := helperProps("escape", map[string]any{"PIDFILE": pidFile})
	props["memory_limit"] = "64MiB"
	r, err := NewWithOptions(Options{Node: node, Containment: ContainFallback}).Open(t.Context(),
		resource.OpenRequest{Name: "app", Properties: props, Logger: slogOf(sink)})
	require.NoError(t, err)
	a := r.(*App)
	t.Cleanup(func() { require.NoError(t, a.Close()) })
	require.Contains(t, a.Containment(), "fallback")
	require.Contains(t, a.Containment(), "limits not applied")
	require.True(t, slices.ContainsFunc(sink.records(), func(s string) bool {
		return strings.HasPrefix(s, "containment is weaker")
	}))
	require.NoError(t, a.Online(t.Context()))
	escaped := pidsOf(t, pidFile)[0]
	killAtEnd(t, escaped)
	require.True(t, proc.Alive(escaped))
	require.NoError(t, a.Offline(t.Context()))
	require.False(t, proc.Alive(escaped), "setsid escape survived Offline in fallback mode")
}

// In fallback mode the program's environment carries the instance marker
// once, ours, also when it inherits a stale one (getenv finds the first).
func TestFallbackMarkerReplacesInherited(t *testing.T) {
	t.Parallel()
	node := testNode(t)
	props := helperProps("sleep", map[string]any{InstanceEnv: "stale/one"})
	r, err := NewWithOptions(Options{Node: node, Containment: ContainFallback}).Open(t.Context(),
		resource.OpenRequest{Name: "app", Properties: props})
	require.NoError(t, err)
	a := r.(*App)
	t.Cleanup(func() { require.NoError(t, a.Close()) })
	require.NoError(t, a.Online(t.Context()))
	b, err := os.ReadFile("/proc/" + strconv.Itoa(a.Pid()) + "/environ")
	require.NoError(t, err)
	var markers []string
	for _, kv := range strings.Split(string(b), "\x00") {
		if strings.HasPrefix(kv, InstanceEnv+"=") {
			markers = append(markers, kv)
		}
	}
	require.Equal(t, []string{InstanceEnv + "=" + node + "/app"}, markers)
	require.NoError(t, a.Offline(t.Context()))
}

func TestContainmentModeChecked(t *testing.T) {
	t.Parallel()
	_, err := NewWithOptions(Options{Containment: "jail"}).Open(t.Context(),
		resource.OpenRequest{Name: "x", Properties: resource.Properties{"argv": []any{"/bin/true"}}})
	require.ErrorContains(t, err, `"jail"`)
}

// An app that exits at once is not reported online (stabilization window).
// The window is long here so that a slow exec on a loaded machine still
// exits within it; Online returns as soon as the program exits.
func TestStabilizationWindow(t *testing.T) {
	t.Parallel()
	props := resource.Properties{"argv": []any{"/bin/true"}, "stabilize": "30s"}
	a := open(t, props, nil)
	require.ErrorContains(t, a.Online(t.Context()), "exited with code 0 within the stabilization window (30s)")

	// A program that stays up keeps Online waiting for the whole window.
	props = helperProps("sleep", nil)
	props["stabilize"] = "30s"
	b := open(t, props, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, b.Online(ctx), context.DeadlineExceeded)
	require.Zero(t, b.Pid(), "Online killed what it started")
}

// BenchmarkOfflineToTreeEmpty measures Offline (stop_grace 0) of an app
// with two children and a grandchild, up to the cgroup being empty, which
// is when Offline returns. Orphans reaped late by init do not count: the
// cgroup empties when they die, not when they are reaped.
func BenchmarkOfflineToTreeEmpty(b *testing.B) {
	testenv.RequireRoot(b)
	node := fmt.Sprintf("sft-bench-%d", os.Getpid())
	pidFile := filepath.Join(b.TempDir(), "pids")
	props := helperProps("spawn", map[string]any{"PIDFILE": pidFile})
	props["stop_grace"] = 0
	props["stabilize"] = 0
	r, err := NewWithOptions(Options{Node: node}).Open(b.Context(), resource.OpenRequest{Name: "app", Properties: props})
	require.NoError(b, err)
	a := r.(*App)
	defer func() { require.NoError(b, a.Close()) }()
	var d []time.Duration
	for b.Loop() {
		_ = os.Remove(pidFile)
		_ = os.Remove(pidFile + ".child")
		require.NoError(b, a.Online(b.Context()))
		waitFile(b, pidFile, "")
		waitFile(b, pidFile+".child", "")
		t0 := time.Now()
		require.NoError(b, a.Offline(b.Context()))
		d = append(d, time.Since(t0))
		pop, err := a.box.(*cgroupBox).g.Populated()
		require.NoError(b, err)
		require.False(b, pop)
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	p := func(q float64) float64 { return float64(d[int(q*float64(len(d)-1))].Microseconds()) }
	b.ReportMetric(p(0.5), "p50-us")
	b.ReportMetric(p(0.99), "p99-us")
	b.ReportMetric(float64(len(d)), "samples")
}

// On kernels without CLONE_INTO_CGROUP the program is moved into its
// cgroup right after start (forced here): it and its escapes are still
// contained.
func TestMoveIntoCgroupAfterStart(t *testing.T) {
	t.Parallel()
	node := testNode(t)
	requireCgroups(t, node)
	pidFile := filepath.Join(t.TempDir(), "pid")
	r, err := NewWithOptions(Options{Node: node}).Open(t.Context(), resource.OpenRequest{
		Name: "app", Properties: helperProps("escape", map[string]any{"PIDFILE": pidFile})})
	require.NoError(t, err)
	a := r.(*App)
	t.Cleanup(func() { require.NoError(t, a.Close()) })
	box := a.box.(*cgroupBox)
	box.noClone.Store(true)
	require.NoError(t, a.Online(t.Context()))
	escaped := pidsOf(t, pidFile)[0]
	killAtEnd(t, escaped)
	procs, err := box.g.Procs()
	require.NoError(t, err)
	require.Contains(t, procs, a.Pid())
	require.Contains(t, procs, escaped)
	require.NoError(t, a.Offline(t.Context()))
	require.False(t, proc.Alive(escaped))
}

// SFT_GENERICAPP_CONTAINMENT=fallback disables cgroups without code
// changes (not parallel: it sets the environment).
func TestContainmentEnvForcesFallback(t *testing.T) {
	t.Setenv(ContainmentEnv, ContainFallback)
	r, err := NewWithOptions(Options{Node: testNode(t)}).Open(t.Context(),
		resource.OpenRequest{Name: "app", Properties: helperProps("sleep", nil)})
	require.NoError(t, err)
	a := r.(*App)
	t.Cleanup(func() { require.NoError(t, a.Close()) })
	require.Contains(t, a.Containment(), "fallback")
	require.Contains(t, a.Containment(), ContainmentEnv+"=fallback")
}

// Host SIGKILL in fallback mode: the orphans, adopted by init, are found by
// the instance marker and killed by the next Open.
func TestFallbackHostSIGKILLThenRestart(t *testing.T) {
	t.Parallel()
	node := testNode(t)
	children := sigkilledHost(t, node, ContainmentEnv+"="+ContainFallback)
	r, err := NewWithOptions(Options{Node: node, Containment: ContainFallback}).Open(t.Context(), resource.OpenRequest{
		Name: "host", Properties: helperProps("sleep", nil)})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, r.(*App).Close()) })
	for _, p := range children {
		if proc.Alive(p) {
			pp := parentOf(p)
			env, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pp))
			cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pp))
			t.Errorf("old pid %d (parent %d %q, grandparent %d; children %v) survived the restart's Open; parent marked %v",
				p, pp, cmd, parentOf(pp), children, strings.Contains(string(env), InstanceEnv))
		}
	}
}

func parentOf(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	n, _ := strconv.Atoi(f[1])
	return n
}
