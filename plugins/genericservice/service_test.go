package genericservice

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/sftkit/sft/resource"
)

// TestOnlineOffline: Online starts the unit (systemd says active, a process
// runs in its cgroup, both checks pass); Offline stops it (inactive, no
// process, both checks fail), and pushes no failure.
func TestOnlineOffline(t *testing.T) {
	e := newEnv(t, map[string]string{"sleeper.service": sleeperUnit})
	r := e.open(t, resource.Properties{"service": "sleeper"})
	fails := watchFailures(r)
	ctx := guardCtx(t)

	if err := r.Online(ctx); err != nil {
		t.Fatal(err)
	}
	if st := e.status(t, "sleeper.service"); st.Active != StateActive {
		t.Fatalf("after Online systemd says %s", st)
	}
	if len(e.pids(t, "sleeper.service")) == 0 {
		t.Fatal("after Online no process in the unit's cgroup")
	}
	if err := r.LooksAlive(ctx); err != nil {
		t.Fatalf("LooksAlive: %v", err)
	}
	if err := r.IsAlive(ctx); err != nil {
		t.Fatalf("IsAlive: %v", err)
	}
	if err := r.Offline(ctx); err != nil {
		t.Fatal(err)
	}
	if st := e.status(t, "sleeper.service"); st.Active != StateInactive {
		t.Fatalf("after Offline systemd says %s", st)
	}
	if p := e.pids(t, "sleeper.service"); len(p) != 0 {
		t.Fatalf("after Offline processes remain: %v", p)
	}
	if r.LooksAlive(ctx) == nil || r.IsAlive(ctx) == nil {
		t.Fatal("checks pass after Offline")
	}
	fails.none(t)
}

// TestKillMainPIDPushesFailure: SIGKILL of the service's process is pushed
// as a transient failure naming the failed state; the checks then fail;
// Terminate clears the failed state.
func TestKillMainPIDPushesFailure(t *testing.T) {
	e := newEnv(t, map[string]string{"sleeper.service": sleeperUnit})
	r := e.open(t, resource.Properties{"service": "sleeper.service"})
	fails := watchFailures(r)
	ctx := guardCtx(t)
	if err := r.Online(ctx); err != nil {
		t.Fatal(err)
	}
	pids := e.pids(t, "sleeper.service")
	if len(pids) != 1 {
		t.Fatalf("want one process in the unit, got %v", pids)
	}
	if err := syscall.Kill(pids[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err := fails.wait(t, 30*time.Second)
	if resource.ClassOf(err) != resource.ClassTransient || !strings.Contains(err.Error(), "failed") {
		t.Fatalf("pushed %v (class %v), want a transient error naming the failed state", err, resource.ClassOf(err))
	}
	if r.LooksAlive(ctx) == nil {
		t.Fatal("LooksAlive passes after the kill was pushed")
	}
	if r.IsAlive(ctx) == nil {
		t.Fatal("IsAlive passes after the kill")
	}
	fails.none(t) // one push per Online
	if err := r.Terminate(ctx); err != nil {
		t.Fatal(err)
	}
	if st := e.status(t, "sleeper.service"); st.Active != StateInactive {
		t.Fatalf("after Terminate systemd says %s, want inactive (failed state reset)", st)
	}
	// It can be brought back.
	if err := r.Online(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.LooksAlive(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestExternalStopPushesFailure: someone else stopping the unit is a failure.
func TestExternalStopPushesFailure(t *testing.T) {
	e := newEnv(t, map[string]string{"sleeper.service": sleeperUnit})
	r := e.open(t, resource.Properties{"service": "sleeper"})
	fails := watchFailures(r)
	ctx := guardCtx(t)
	if err := r.Online(ctx); err != nil {
		t.Fatal(err)
	}
	if err := e.mgr.Stop(ctx, "sleeper.service"); err != nil {
		t.Fatal(err)
	}
	err := fails.wait(t, 30*time.Second)
	if !strings.Contains(err.Error(), "sleeper.service") {
		t.Fatalf("pushed %v, want it to name the unit", err)
	}
}

// TestMissingUnit: a unit systemd does not know is a configuration error
// naming the service property.
func TestMissingUnit(t *testing.T) {
	e := newEnv(t, nil)
	r := e.open(t, resource.Properties{"service": "no-such-thing"})
	err := r.Online(guardCtx(t))
	var re *resource.Error
	if !errors.Is(err, resource.ErrConfiguration) || !errors.As(err, &re) || re.Field != "service" {
		t.Fatalf("Online of a missing unit: %v, want a configuration error on field service", err)
	}
	if !strings.Contains(err.Error(), "no-such-thing.service") {
		t.Fatalf("error %q does not name the unit", err)
	}
	// Offline and Terminate of a missing unit are no-ops.
	if err := r.Offline(guardCtx(t)); err != nil {
		t.Fatalf("Offline: %v", err)
	}
	if err := r.Terminate(guardCtx(t)); err != nil {
		t.Fatalf("Terminate: %v", err)
	}

	// A masked unit is a configuration error too.
	if err := os.Symlink("/dev/null", filepath.Join(e.sb.Root(), "run/systemd/system/masked.service")); err != nil {
		t.Fatal(err)
	}
	if err := e.sd.ReloadContext(guardCtx(t)); err != nil {
		t.Fatal(err)
	}
	r = e.open(t, resource.Properties{"service": "masked"})
	err = r.Online(guardCtx(t))
	if !errors.Is(err, resource.ErrConfiguration) || !errors.As(err, &re) || re.Field != "service" || !strings.Contains(err.Error(), "masked") {
		t.Fatalf("Online of a masked unit: %v, want a configuration error on field service saying masked", err)
	}
}

// TestFailingStart: a unit whose start job fails gives a transient error.
func TestFailingStart(t *testing.T) {
	e := newEnv(t, map[string]string{"bad.service": "[Unit]\nDefaultDependencies=no\n[Service]\nType=oneshot\nExecStart=/bin/false\n"})
	r := e.open(t, resource.Properties{"service": "bad"})
	err := r.Online(guardCtx(t))
	var je *JobError
	if err == nil || resource.ClassOf(err) != resource.ClassTransient || !errors.As(err, &je) || je.Result != "failed" {
		t.Fatalf("Online: %v, want a transient JobError with result failed", err)
	}
}

// TestTerminateCancelsHangingOnline: a start job that never finishes
// (Type=notify, never ready) keeps Online waiting until Terminate, which
// makes it return an error and kills the unit's processes.
func TestTerminateCancelsHangingOnline(t *testing.T) {
	e := newEnv(t, map[string]string{"hang.service": hangUnit})
	r := e.open(t, resource.Properties{"service": "hang"})
	changed := make(chan Status, 16)
	w, err := e.mgr.Watch(guardCtx(t), "hang.service", func(st Status) {
		select {
		case changed <- st:
		default:
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	res := make(chan error, 1)
	go func() { res <- r.Online(guardCtx(t)) }()
	for st := w.Status(); st.Active != StateActivating; st = <-changed {
	}
	if err := r.Terminate(guardCtx(t)); err != nil {
		t.Fatal(err)
	}
	if err := <-res; err == nil {
		t.Fatal("hanging Online returned nil after Terminate")
	}
	if st := e.status(t, "hang.service"); st.Active.Up() || st.Active == StateActivating {
		t.Fatalf("after Terminate systemd says %s", st)
	}
	if p := e.pids(t, "hang.service"); len(p) != 0 {
		t.Fatalf("processes remain after Terminate: %v", p)
	}
}

// TestHealthAndReadiness: readiness gates Online (a deadline passes while the
// command fails), health makes IsAlive fail while LooksAlive still passes.
func TestHealthAndReadiness(t *testing.T) {
	e := newEnv(t, map[string]string{"sleeper.service": sleeperUnit})
	flag := filepath.Join(t.TempDir(), "ready")
	check := map[string]any{"command": []any{"/usr/bin/test", "-e", flag}, "interval": "10ms"}
	r := e.open(t, resource.Properties{"service": "sleeper", "readiness": check, "health": check})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := r.Online(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Online while not ready: %v, want DeadlineExceeded", err)
	}
	if err := os.WriteFile(flag, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := r.Online(guardCtx(t)); err != nil {
		t.Fatal(err)
	}
	if err := r.IsAlive(guardCtx(t)); err != nil {
		t.Fatal(err)
	}
	os.Remove(flag)
	if err := r.IsAlive(guardCtx(t)); err == nil || !strings.Contains(err.Error(), "health") {
		t.Fatalf("IsAlive with a failing health check: %v", err)
	}
	if err := r.LooksAlive(guardCtx(t)); err != nil {
		t.Fatalf("LooksAlive (manager state only): %v", err)
	}
}

// TestReconnectAfterConnectionLoss: the connections to systemd break (here
// closed under the manager; systemd restarting does the same). The service
// keeps running, so nothing is pushed; LooksAlive fails (state unknown),
// IsAlive reconnects and finds the unit active, and the resource keeps
// working.
func TestReconnectAfterConnectionLoss(t *testing.T) {
	e := newEnv(t, map[string]string{"sleeper.service": sleeperUnit})
	var mu sync.Mutex
	var conns []*dbus.Conn
	typ := NewWithConfig(Config{Managers: map[string]ManagerFactory{
		"systemd": func(*slog.Logger, string) (Manager, error) {
			return NewSystemd(SystemdConfig{Dial: func() (*dbus.Conn, error) {
				c, err := e.sb.DialBus(context.Background())
				if err == nil {
					mu.Lock()
					conns = append(conns, c)
					mu.Unlock()
				}
				return c, err
			}})
		},
	}})
	res, err := typ.Open(guardCtx(t), resource.OpenRequest{Name: t.Name(), Properties: resource.Properties{"service": "sleeper"}})
	if err != nil {
		t.Fatal(err)
	}
	r := res.(*service)
	t.Cleanup(func() { r.Terminate(context.Background()); r.Close() })
	fails := watchFailures(r)
	ctx := guardCtx(t)
	if err := r.Online(ctx); err != nil {
		t.Fatal(err)
	}
	before := e.pids(t, "sleeper.service")
	m, _ := r.conn()

	mu.Lock()
	for _, c := range conns {
		c.Close()
	}
	mu.Unlock()
	// The watch learns of the loss on its own goroutine.
	if !waitFor(30*time.Second, func() bool { return r.LooksAlive(ctx) != nil }) {
		t.Fatal("LooksAlive kept passing on a lost connection")
	}
	if err := r.IsAlive(ctx); err != nil {
		t.Fatalf("IsAlive after the loss: %v", err)
	}
	if m2, _ := r.conn(); m2 == m {
		t.Fatal("IsAlive passed without reconnecting")
	}
	if err := r.LooksAlive(ctx); err != nil {
		t.Fatalf("LooksAlive after reconnect: %v", err)
	}
	if after := e.pids(t, "sleeper.service"); len(after) != 1 || after[0] != before[0] {
		t.Fatalf("service process changed: %v -> %v", before, after)
	}
	fails.none(t)
	// Failure detection works on the new connection.
	if err := syscall.Kill(before[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := fails.wait(t, 30*time.Second); !strings.Contains(err.Error(), "failed") {
		t.Fatalf("pushed %v", err)
	}
	if err := r.Terminate(ctx); err != nil {
		t.Fatal(err)
	}
	if p := e.pids(t, "sleeper.service"); len(p) != 0 {
		t.Fatalf("Terminate after reconnect left %v", p)
	}
}

// waitFor polls cond every 5 ms until it holds or d passes. Only for
// waiting on another process (systemd re-executing), never as a timing
// assertion: d is a hang guard.
func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(5 * time.Millisecond)
	}
	return cond()
}
