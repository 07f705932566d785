package qemuvm_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sftkit/sft/examples/qemuvm"
	"github.com/sftkit/sft/examples/qemuvm/testguest"
	"github.com/sftkit/sft/plugins/plugintest"
	"github.com/sftkit/sft/resource"
	"github.com/sftkit/sft/resource/resourcetest"
)

// TestMain serves the type when the suite runs this binary as a plugin.
func TestMain(m *testing.M) { plugintest.Main(m, qemuvm.New()) }

// shortDir is a temporary directory with a short path (unix socket paths
// are limited to 108 bytes; t.TempDir embeds the test's name).
func shortDir(t testing.TB) string {
	d, err := os.MkdirTemp("", "qvm")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

func marker() string { return testguest.Marker() }

// props returns the properties of a test VM in mode ("" normal), with a
// unique marker on its kernel command line (found by qemuPID), its console
// on a socket (console.sock in dir) and recorded in console.log, whose
// tail is printed when t fails.
func props(t testing.TB, g testguest.Guest, mode string) (resource.Properties, string) {
	dir := shortDir(t)
	log := filepath.Join(dir, "console.log")
	testguest.KeepConsole(t, log)
	return resource.Properties{
		"kernel":       g.Kernel,
		"initrd":       g.Initrd,
		"append":       testguest.Append(mode, marker()),
		"memory":       128,
		"accel":        "auto",
		"console":      "socket:" + filepath.Join(dir, "console.sock"),
		"console_log":  log,
		"lock_dir":     dir,
		"qemu":         g.QEMU,
		"vm_name":      "vm-" + filepath.Base(dir),
		"boot_timeout": "2m",
	}, dir
}

// qemuPID finds the QEMU process whose command line holds the marker in
// the append property: a probe from outside the resource. 0: none.
func qemuPID(p resource.Properties) int {
	m := strings.Fields(p["append"].(string))
	if pids := testguest.QEMUPids(m[len(m)-1]); len(pids) > 0 {
		return pids[0]
	}
	return 0
}

// TestSuite runs the contract suite in a real plugin process, the mode
// the example host runs the type in: sixteen TCG boots. The other modes
// would add as many boots each for little: ModeGRPC is the same shims
// without the process, and what only ModeInProcess can see (the plugin
// shims hide it) is checked by TestInProcessHiddenRules on one boot.
func TestSuite(t *testing.T) {
	g := testguest.Require(t)
	t.Parallel()
	suite(t, g, plugintest.ModePluginProcess)
}

func suite(t *testing.T, g testguest.Guest, mode plugintest.Mode) {
	plugintest.Suite(t, qemuvm.New(), plugintest.Options{Modes: []plugintest.Mode{mode}, Options: resourcetest.Options{
		Properties: func(t *testing.T) resource.Properties {
			p, _ := props(t, g, "")
			return p
		},
		Up: func(t *testing.T, in resourcetest.Instance) bool { return qemuPID(in.Properties) != 0 },
		// A guard against calls that never return, not a speed goal: a TCG
		// boot takes 3 s on an idle 2-vCPU VM and 20 s on a loaded one.
		Timeout: 3 * time.Minute,
		// A guest that never sends a heartbeat: Online waits for it.
		HangProperties: func(t *testing.T, p resource.Properties) resource.Properties {
			p = p.Clone()
			p["append"] = testguest.Append("hang", marker())
			return p
		},
		BadProperties: []resourcetest.BadProperties{
			{Name: "no kernel", Properties: resource.Properties{}, Field: "kernel"},
			{Name: "relative kernel", Properties: resource.Properties{"kernel": "vmlinuz"}, Field: "kernel"},
			{Name: "missing kernel", Properties: resource.Properties{"kernel": "/nonexistent/vmlinuz"}, Field: "kernel"},
			{Name: "memory above the host's", Properties: resource.Properties{"kernel": g.Kernel, "memory": 1 << 30}, Field: "memory"},
			{Name: "unknown accel", Properties: resource.Properties{"kernel": g.Kernel, "accel": "hvf"}, Field: "accel"},
			{Name: "unknown network", Properties: resource.Properties{"kernel": g.Kernel, "network": "slirp"}, Field: "network"},
			{Name: "bad port forward", Properties: resource.Properties{"kernel": g.Kernel, "network": "user", "port_forwards": []any{"tcp:22"}}, Field: "port_forwards[0]"},
			{Name: "tap without device", Properties: resource.Properties{"kernel": g.Kernel, "network": "tap"}, Field: "network_device"},
			{Name: "zero cpus", Properties: resource.Properties{"kernel": g.Kernel, "cpus": 0}, Field: "cpus"},
			{Name: "migration", Properties: resource.Properties{"kernel": g.Kernel, "migration": map[string]any{"to": "x"}}, Field: "migration"},
			{Name: "unknown property", Properties: resource.Properties{"kernel": g.Kernel, "colour": "red"}, Field: "colour"},
		},
	}})
}

// logBuffer is a slog handler target the tests read.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type started struct {
	vm      resource.Resource
	props   resource.Properties
	dir     string
	fails   chan error
	log     *logBuffer
	booting time.Duration
}

// online opens a VM in-process with p, installs a failure handler and
// brings it online.
func online(t testing.TB, p resource.Properties, dir string) *started {
	t.Helper()
	s := &started{props: p, dir: dir, fails: make(chan error, 8), log: &logBuffer{}}
	r, err := qemuvm.New().Open(t.Context(), resource.OpenRequest{
		Name: t.Name(), Properties: p,
		Logger: slog.New(slog.NewTextHandler(s.log, nil)),
	})
	require.NoError(t, err)
	s.vm = r
	r.(resource.FailureReporter).SetFailureHandler(func(err error) { s.fails <- err })
	t.Cleanup(func() {
		require.NoError(t, r.Terminate(context.Background()))
		require.Zero(t, qemuPID(p), "QEMU survived Terminate")
	})
	start := time.Now()
	require.NoError(t, r.Online(t.Context()))
	s.booting = time.Since(start)
	accel, why := r.(*qemuvm.VM).Accelerator()
	t.Logf("boot to Online: %v (accel %s: %s)", s.booting.Round(time.Millisecond), accel, why)
	require.NoError(t, r.IsAlive(t.Context()))
	return s
}

// console sends a command to the guest's console. The connection stays
// open until the test ends: QEMU drops what it has not read yet from a
// client that hung up.
func (s *started) console(t testing.TB, cmd string) {
	t.Helper()
	c, err := net.Dial("unix", filepath.Join(s.dir, "console.sock"))
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	_, err = c.Write([]byte(cmd + "\n"))
	require.NoError(t, err)
}

// pushed waits for a pushed failure and returns it with how long it took.
func (s *started) pushed(t testing.TB, since time.Time) (time.Duration, error) {
	t.Helper()
	select {
	case err := <-s.fails:
		return time.Since(since), err
	case <-time.After(30 * time.Second):
		t.Fatal("no failure pushed within 30 s")
		return 0, nil
	}
}

// TestInProcessHiddenRules checks, in process, the two contract rules
// that the plugin shims hide from the suite in ModePluginProcess (the
// server shim cancels a call whose client gave up, and the proxy answers
// LooksAlive from memory): Terminate makes a hanging Online return, and
// Online past its ctx deadline returns DeadlineExceeded, both within the
// suite's 2 s grace and leaving no QEMU; and LooksAlive of a running VM
// answers without I/O, the fastest of 20 calls within the suite's 10 ms
// budget.
func TestInProcessHiddenRules(t *testing.T) {
	g := testguest.Require(t)
	t.Parallel()
	const grace = 2 * time.Second
	hanging := func(t *testing.T) (resource.Resource, resource.Properties) {
		p, _ := props(t, g, "hang")
		r, err := qemuvm.New().Open(t.Context(), resource.OpenRequest{Name: t.Name(), Properties: p})
		require.NoError(t, err)
		t.Cleanup(func() { r.Terminate(context.Background()) })
		return r, p
	}
	started := func(t *testing.T, p resource.Properties) {
		deadline := time.Now().Add(time.Minute)
		for qemuPID(p) == 0 {
			require.True(t, time.Now().Before(deadline), "QEMU did not start")
			time.Sleep(10 * time.Millisecond)
		}
	}
	t.Run("TerminateCancelsOnline", func(t *testing.T) {
		r, p := hanging(t)
		res := make(chan error, 1)
		go func() { res <- r.Online(context.Background()) }()
		started(t, p)
		require.NoError(t, r.Terminate(t.Context()))
		select {
		case err := <-res:
			require.Error(t, err)
		case <-time.After(grace):
			t.Fatalf("the hanging Online did not return within %v after Terminate", grace)
		}
		require.Zero(t, qemuPID(p))
	})
	t.Run("OnlineDeadline", func(t *testing.T) {
		r, p := hanging(t)
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		res := make(chan error, 1)
		go func() { res <- r.Online(ctx) }()
		select {
		case err := <-res:
			require.ErrorIs(t, err, context.DeadlineExceeded)
		case <-time.After(100*time.Millisecond + grace):
			t.Fatalf("the hanging Online did not return within %v after its deadline", grace)
		}
		require.NoError(t, r.Terminate(t.Context()))
		require.Zero(t, qemuPID(p))
	})
	t.Run("LooksAliveIsCheap", func(t *testing.T) {
		p, dir := props(t, g, "")
		s := online(t, p, dir)
		fastest := time.Hour
		for range 20 {
			start := time.Now()
			require.NoError(t, s.vm.LooksAlive(t.Context()))
			fastest = min(fastest, time.Since(start))
		}
		require.Less(t, fastest, 10*time.Millisecond)
	})
}

// Each test below boots one guest (the Offline test two), and they run in
// parallel: a pushed failure ends its guest's run, so a guest serves one
// failure; TestVMInUseAndReportedPanic checks the refusals on the guest it
// then fails.

func TestGuestPanicPushed(t *testing.T) {
	g := testguest.Require(t)
	t.Parallel()
	p, dir := props(t, g, "")
	s := online(t, p, dir)
	start := time.Now()
	s.console(t, "panic")
	took, err := s.pushed(t, start)
	t.Logf("guest panic to failure pushed: %v (%v)", took.Round(time.Millisecond), err)
	require.ErrorContains(t, err, "GUEST_PANICKED")
	require.Error(t, s.vm.LooksAlive(t.Context()))
}

// TestVMInUseAndReportedPanic: while a guest runs, a second Online of the
// same VM is refused by the VM lock, and one of another VM on the same disk
// by QEMU's image lock; then that guest reports a panic on its heartbeat
// port, which is pushed.
func TestVMInUseAndReportedPanic(t *testing.T) {
	g := testguest.Require(t)
	t.Parallel()
	p, dir := props(t, g, "")
	disk := filepath.Join(dir, "disk.img")
	require.NoError(t, os.WriteFile(disk, make([]byte, 1<<20), 0o644))
	p["disk"] = disk
	s := online(t, p, dir)

	open := func(p resource.Properties) resource.Resource {
		r, err := qemuvm.New().Open(t.Context(), resource.OpenRequest{Name: "second", Properties: p})
		require.NoError(t, err)
		t.Cleanup(func() { r.Terminate(context.Background()) })
		return r
	}
	// Same VM name: our own lock refuses it before QEMU starts.
	same := p.Clone()
	same["append"] = testguest.Append("", marker())
	err := open(same).Online(t.Context())
	require.ErrorContains(t, err, "in use by another QEMU")
	require.True(t, errors.Is(err, resource.ErrTransient), "%v", err)
	require.Zero(t, qemuPID(same))

	// Another name, same disk: QEMU's image locking refuses it.
	other := same.Clone()
	other["vm_name"] = "other-" + filepath.Base(dir)
	// Its own console: a QEMU binding the first one's socket path would
	// take it over before failing on the disk.
	other["console"] = "socket:" + filepath.Join(dir, "other.sock")
	other["console_log"] = filepath.Join(dir, "other.log")
	err = open(other).Online(t.Context())
	require.ErrorContains(t, err, "in use by another QEMU")
	require.ErrorContains(t, err, "lock")
	require.Zero(t, qemuPID(other))

	// The first guest still runs, and its reported panic is pushed.
	require.NoError(t, s.vm.IsAlive(t.Context()))
	s.console(t, "report-panic")
	_, err = s.pushed(t, time.Now())
	require.ErrorContains(t, err, "guest reported a panic")
}

// TestBootPanicFailsOnline: a kernel that panics while it boots, before
// the pvpanic driver is loaded (here: no init to run; under load it was
// the IO-APIC timer check), reboots at once (panic=-1), QEMU exits
// (-no-reboot), and Online fails with the console's last words instead
// of waiting for boot_timeout.
func TestBootPanicFailsOnline(t *testing.T) {
	g := testguest.Require(t)
	t.Parallel()
	p, _ := props(t, g, "")
	p["append"] = testguest.Append("", "rdinit=/nonexistent", marker())
	r, err := qemuvm.New().Open(t.Context(), resource.OpenRequest{Name: t.Name(), Properties: p})
	require.NoError(t, err)
	defer r.Terminate(context.Background())
	start := time.Now()
	err = r.Online(t.Context())
	t.Logf("Online failed after %v: %v", time.Since(start).Round(time.Millisecond), err)
	require.ErrorContains(t, err, "SHUTDOWN")
	require.ErrorContains(t, err, "Kernel panic")
	require.Zero(t, qemuPID(p))
}

func TestHeartbeatSilencePushed(t *testing.T) {
	g := testguest.Require(t)
	t.Parallel()
	p, dir := props(t, g, "")
	p["heartbeat_timeout"] = "2s"
	s := online(t, p, dir)
	s.console(t, "hang")
	_, err := s.pushed(t, time.Now())
	require.ErrorContains(t, err, "heartbeat silent")
	require.Error(t, s.vm.IsAlive(t.Context()))
}

func TestQEMUKilledPushed(t *testing.T) {
	g := testguest.Require(t)
	t.Parallel()
	p, dir := props(t, g, "")
	s := online(t, p, dir)
	pid := qemuPID(p)
	require.NotZero(t, pid)
	start := time.Now()
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
	took, err := s.pushed(t, start)
	t.Logf("QEMU SIGKILL to failure pushed: %v (%v)", took.Round(time.Millisecond), err)
	require.ErrorContains(t, err, "exited")
}

// TestOfflineCooperativeAndStubborn: a guest that powers off on ACPI is
// gone within shutdown_grace (30 s, a bound a loaded TCG guest meets); one
// that ignores it is quit after shutdown_grace (3 s). Neither pushes a
// failure.
func TestOfflineCooperativeAndStubborn(t *testing.T) {
	g := testguest.Require(t)
	t.Parallel()
	for _, tc := range []struct {
		mode, grace, wantLog string
	}{
		{"", "30s", "guest powered off"},
		{"noacpi", "3s", "guest ignored ACPI power-down; quitting QEMU"},
	} {
		p, dir := props(t, g, tc.mode)
		p["shutdown_grace"] = tc.grace
		s := online(t, p, dir)
		start := time.Now()
		require.NoError(t, s.vm.Offline(t.Context()))
		took := time.Since(start)
		t.Logf("Offline, guest mode %q, shutdown_grace %s: %v", tc.mode, tc.grace, took.Round(time.Millisecond))
		require.Contains(t, s.log.String(), tc.wantLog)
		require.Zero(t, qemuPID(p), "QEMU survived Offline")
		select {
		case err := <-s.fails:
			t.Fatalf("Offline pushed a failure: %v", err)
		default:
		}
	}
}
