package filelock_test

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sftkit/sft/examples/customplugin/filelock"
	"github.com/sftkit/sft/plugins/plugintest"
	"github.com/sftkit/sft/resource"
	"github.com/sftkit/sft/resource/resourcetest"
)

// lockedBySomeone reports whether another open file description holds the
// lock on path.
func lockedBySomeone(t *testing.T, path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return true
	}
	require.NoError(t, syscall.Flock(int(f.Fd()), syscall.LOCK_UN))
	return false
}

func props(t *testing.T) resource.Properties {
	return resource.Properties{"path": filepath.Join(t.TempDir(), "x.lock")}
}

// TestMain lets the suite run the type in a real plugin process: the test
// binary, re-executed, serves it.
func TestMain(m *testing.M) { plugintest.Main(m, filelock.New()) }

// TestSuite runs the contract suite in-process, through the gRPC shims and
// in a plugin process.
func TestSuite(t *testing.T) {
	plugintest.Suite(t, filelock.New(), plugintest.Options{Options: resourcetest.Options{
		Properties: props,
		Up: func(t *testing.T, in resourcetest.Instance) bool {
			return lockedBySomeone(t, in.Properties["path"].(string))
		},
		NoHang: "Online never waits: it takes the lock without blocking or fails",
		BadProperties: []resourcetest.BadProperties{
			{Name: "missing path", Properties: resource.Properties{}, Field: "path"},
			{Name: "relative path", Properties: resource.Properties{"path": "x.lock"}, Field: "path"},
			{Name: "bad mode", Properties: resource.Properties{"path": "/tmp/x", "mode": 4096}, Field: "mode"},
			{Name: "unknown", Properties: resource.Properties{"path": "/tmp/x", "color": "red"}, Field: "color"},
		},
	}})
}

func TestReplacedFileFailsIsAlive(t *testing.T) {
	p := props(t)
	r, err := filelock.New().Open(t.Context(), resource.OpenRequest{Name: "x", Properties: p})
	require.NoError(t, err)
	require.NoError(t, r.Online(t.Context()))
	require.NoError(t, r.IsAlive(t.Context()))
	require.NoError(t, os.Remove(p["path"].(string)))
	require.Error(t, r.IsAlive(t.Context()))
	require.NoError(t, r.Terminate(t.Context()))
}
