package genericservice

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	sd "github.com/coreos/go-systemd/v22/dbus"
	"github.com/godbus/dbus/v5"
	"go.uber.org/goleak"

	"github.com/sftkit/sft/internal/systemdsandbox"
	"github.com/sftkit/sft/internal/testenv"
	"github.com/sftkit/sft/plugins/plugintest"
	"github.com/sftkit/sft/resource"
)

// TestMain runs the sandbox's child roles or, when the test binary is
// re-executed as a plugin (plugin_test.go), serves the type; otherwise it
// runs the tests and fails the run on left-over child processes or leaked
// goroutines.
func TestMain(m *testing.M) {
	systemdsandbox.Main()
	plugintest.ServeIfPlugin(New())
	code := m.Run()
	if code == 0 {
		if err := plugintest.NoChildren(10 * time.Second); err != nil {
			fmt.Fprintln(os.Stderr, "FAIL:", err)
			code = 1
		}
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "FAIL: goroutine leak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

const sleeperUnit = `[Unit]
DefaultDependencies=no
[Service]
ExecStart=/bin/sleep infinity
StandardOutput=null
StandardError=null
`

// hangUnit never reports ready: its start job runs until stopped.
const hangUnit = `[Unit]
DefaultDependencies=no
[Service]
Type=notify
ExecStart=/bin/sleep infinity
TimeoutStartSec=infinity
StandardOutput=null
StandardError=null
`

// env is a booted sandbox, a type driving it and a connection of the
// test's own to look at it from outside.
type env struct {
	sb  *systemdsandbox.Sandbox
	typ *Type
	sd  *sd.Conn
	mgr Manager // the test's own view
}

func newEnv(t testing.TB, units map[string]string) *env {
	t.Helper()
	testenv.RequireRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sb, err := systemdsandbox.Start(ctx, systemdsandbox.Config{Units: units})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{sb: sb}
	t.Cleanup(func() {
		if e.sd != nil {
			e.sd.Close()
		}
		if e.mgr != nil {
			e.mgr.Close()
		}
		if err := sb.Close(); err != nil {
			t.Errorf("sandbox close: %v", err)
		}
	})
	dial := func() (*dbus.Conn, error) { return sb.DialBus(context.Background()) }
	// The type as shipped: its default systemd factory, pointed at the
	// sandbox by the address property (see props).
	e.typ = NewWithConfig(Config{})
	if e.sd, err = sd.NewConnection(dial); err != nil {
		t.Fatal(err)
	}
	if e.mgr, err = NewSystemd(SystemdConfig{Dial: dial}); err != nil {
		t.Fatal(err)
	}
	return e
}

// writeUnit adds a unit (or replaces it) and reloads systemd.
func (e *env) writeUnit(t testing.TB, name, text string) {
	t.Helper()
	if err := e.sb.WriteUnit(name, text); err != nil {
		t.Fatal(err)
	}
	if err := e.sd.ReloadContext(guardCtx(t)); err != nil {
		t.Fatal(err)
	}
}

// props adds the sandbox's bus address to props.
func (e *env) props(props resource.Properties) resource.Properties {
	props = props.Clone()
	props["address"] = e.sb.BusAddress()
	return props
}

func (e *env) open(t testing.TB, props resource.Properties) *service {
	t.Helper()
	r, err := e.typ.Open(guardCtx(t), resource.OpenRequest{Name: t.Name(), Properties: e.props(props)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), guard)
		defer cancel()
		r.Terminate(ctx)
		r.(resource.Closer).Close()
	})
	return r.(*service)
}

// pids lists the host-view PIDs in unit's cgroup (empty when none run).
func (e *env) pids(t testing.TB, unit string) []int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(e.sb.CgroupPath(), "system.slice", unit, "cgroup.procs"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, f := range strings.Fields(string(b)) {
		p, _ := strconv.Atoi(f)
		out = append(out, p)
	}
	return out
}

func (e *env) status(t testing.TB, unit string) Status {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	st, err := e.mgr.Status(ctx, unit)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// guard bounds every call a test makes, so that a stuck systemd fails the
// test instead of hanging it. It is a hang guard, not a speed requirement.
const guard = 2 * time.Minute

// guardCtx returns a context that ends after guard or with the test.
func guardCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	t.Cleanup(cancel)
	return ctx
}

// failures collects pushed failures.
type failures struct {
	ch chan error
}

func watchFailures(r resource.FailureReporter) *failures {
	f := &failures{ch: make(chan error, 16)}
	r.SetFailureHandler(func(err error) {
		select {
		case f.ch <- err:
		default:
		}
	})
	return f
}

func (f *failures) wait(t testing.TB, d time.Duration) error {
	t.Helper()
	select {
	case err := <-f.ch:
		return err
	case <-time.After(d):
		t.Fatalf("no failure pushed within %v", d)
		return nil
	}
}

func (f *failures) none(t testing.TB) {
	t.Helper()
	select {
	case err := <-f.ch:
		t.Fatalf("unexpected failure pushed: %v", err)
	default:
	}
}
