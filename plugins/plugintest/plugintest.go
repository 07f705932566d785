package plugintest

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/hashicorp/go-plugin"

	"github.com/sftkit/sft/internal/proc"
	"github.com/sftkit/sft/plugins"
	"github.com/sftkit/sft/plugins/internal/inproc"
	"github.com/sftkit/sft/resource"
)

// InProcess serves types in this process through the real gRPC shims over
// go-plugin's test connection and returns a host for them. The host is
// closed when the test ends. cfg.Path only names the plugin in messages.
func InProcess(t testing.TB, cfg plugins.Config, types ...resource.Type) *plugins.Pool {
	t.Helper()
	ps, err := inproc.PluginSet(cfg.Logger, types...)
	if err != nil {
		t.Fatalf("plugintest: %v", err)
	}
	client, _ := plugin.TestPluginGRPCConn(t, false, ps)
	// client.Close asks the server to stop (go-plugin's controller
	// Shutdown), then closes the connection: the in-process "exit".
	raw, err := inproc.Connect(t.Context(), cfg, client, func() { _ = client.Close() })
	if err != nil {
		_ = client.Close()
		t.Fatalf("plugintest: %v", err)
	}
	h := raw.(*plugins.Pool)
	t.Cleanup(func() {
		if err := h.Close(); err != nil {
			t.Errorf("plugintest: closing host: %v", err)
		}
	})
	return h
}

// Launch starts the test binary as a plugin process serving the types its
// TestMain passes to Main, and returns the host; the host is closed when
// the test ends. cfg.Path is ignored.
func Launch(t testing.TB, cfg plugins.Config) *plugins.Pool {
	t.Helper()
	cfg.Path = ""
	h, err := plugins.Launch(t.Context(), cfg)
	if err != nil {
		t.Fatalf("plugintest: launching the test binary as a plugin: %v", err)
	}
	t.Cleanup(func() {
		if err := h.Close(); err != nil {
			t.Errorf("plugintest: closing host: %v", err)
		}
	})
	return h
}

// Main is the TestMain of a package that launches plugin processes: in a
// process started as a plugin it serves types and exits (plugins.Main);
// otherwise it runs the tests, then fails the run if any child process of
// the test binary is left over, and exits.
func Main(m *testing.M, types ...resource.Type) {
	ServeIfPlugin(types...)
	code := m.Run()
	if code == 0 {
		if err := NoChildren(10 * time.Second); err != nil {
			fmt.Fprintln(os.Stderr, "FAIL:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// ServeIfPlugin is the first line of a TestMain that does more than Main
// does: in a process started as a plugin it serves types and exits
// (plugins.Main); otherwise it records types as the ones the test binary
// serves, for Suite's plugin-process mode, and returns.
func ServeIfPlugin(types ...resource.Type) {
	plugins.Main(types...)
	mainServes.Store(&types)
}

// NoChildren waits up to wait for the test process to have no child
// processes (plugins are reaped asynchronously) and returns an error
// listing the ones left.
func NoChildren(wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		kids, err := proc.Children(os.Getpid())
		if err != nil {
			return err
		}
		if len(kids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("plugintest: child processes left over: %+v", kids)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
