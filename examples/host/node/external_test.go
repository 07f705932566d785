package node_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sftkit/sft/examples/host/api"
	"github.com/sftkit/sft/examples/host/config"
	"github.com/sftkit/sft/examples/host/node"
	"github.com/sftkit/sft/resource"
)

// plugin builds the example filelock plugin (an outside plugin: its own
// binary, serving a type the host knows nothing about) into a private
// directory and returns its path and SHA-256.
func plugin(t *testing.T) (path, sum string) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "filelock")
	out, err := exec.Command("go", "build", "-o", path, "github.com/sftkit/sft/examples/customplugin/plugin").CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	s := sha256.Sum256(b)
	return path, hex.EncodeToString(s[:])
}

func lockHeld(t *testing.T, path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil {
		return true
	}
	require.NoError(t, syscall.Flock(int(f.Fd()), syscall.LOCK_UN))
	return false
}

// TestExternalPlugin: a plugin binary listed in plugins.external (pinned)
// serves its type to the node, which runs its resource like a bundled
// one's, reports its process in the metrics, and stops it on shutdown.
func TestExternalPlugin(t *testing.T) {
	bin, sum := plugin(t)
	dir := t.TempDir()
	lock := filepath.Join(dir, "x.lock")
	cfg := &config.Config{
		Node:    config.Node{Name: "n1"},
		API:     config.API{Socket: filepath.Join(dir, "h.sock")},
		Metrics: config.Metrics{Listen: "127.0.0.1:0"},
		Plugins: config.Plugins{Mode: config.PluginModeInProcess, External: []config.ExternalPlugin{{Path: bin, SHA256: sum}}},
		Groups: []config.Group{{Name: "g", Resources: []config.Resource{
			{Name: "lock", Type: "filelock", Properties: map[string]any{"path": lock}},
		}}},
	}
	ready := make(chan *node.Node, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- node.Run(ctx, node.Options{Config: cfg, Logger: slog.New(slog.DiscardHandler), Ready: func(n *node.Node) { ready <- n }})
	}()
	var n *node.Node
	select {
	case n = <-ready:
	case err := <-done:
		t.Fatal(err)
	}
	c := api.NewUnixClient(n.SocketPath())
	defer c.Close()
	waitEvent(t, c, 0, groupIs("g", "Online"))
	require.True(t, lockHeld(t, lock), "the plugin holds the lock")
	m := scrape(t, n.MetricsAddr())
	require.Contains(t, m, `sft_plugin_process_events_total{event="started"} 1`)
	require.Contains(t, m, `sft_external_plugin_process_pid{path="`+bin+`"}`)
	require.NotContains(t, m, `sft_external_plugin_process_pid{path="`+bin+`"} 0`)

	cancel()
	require.NoError(t, <-done)
	require.False(t, lockHeld(t, lock), "offline at shutdown")
}

// TestExternalPluginRefused: a binary that does not match its pin never
// runs; the error names the field.
func TestExternalPluginRefused(t *testing.T) {
	bin, _ := plugin(t)
	dir := t.TempDir()
	cfg := &config.Config{
		API:     config.API{Socket: filepath.Join(dir, "h.sock")},
		Plugins: config.Plugins{Mode: config.PluginModeInProcess, External: []config.ExternalPlugin{{Path: bin, SHA256: strings.Repeat("0", 64)}}},
	}
	err := node.Run(context.Background(), node.Options{Config: cfg, Logger: slog.New(slog.DiscardHandler), Ready: func(*node.Node) { t.Error("Ready called") }})
	var ce *config.Error
	require.ErrorAs(t, err, &ce)
	require.Equal(t, "plugins.external[0].sha256", ce.Path)
	require.Contains(t, ce.Msg, "does not match the pin")
}

// TestValidationRegistryFor: validate learns the external plugin's types
// from its handshake and has the plugin validate their properties.
func TestValidationRegistryFor(t *testing.T) {
	bin, sum := plugin(t)
	reg, done, err := node.ValidationRegistryFor(context.Background(), config.Plugins{External: []config.ExternalPlugin{{Path: bin, SHA256: sum}}})
	require.NoError(t, err)
	defer done()
	require.Contains(t, reg.Names(), "filelock")
	require.Contains(t, reg.Names(), "genericapp")
	err = reg.Validate(context.Background(), "filelock", resource.Properties{"path": "relative.lock"})
	var re *resource.Error
	require.ErrorAs(t, err, &re)
	require.Equal(t, "path", re.Field)
	require.Equal(t, resource.ClassConfiguration, re.Class)
}
