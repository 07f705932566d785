package genericapp

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sftkit/sft/internal/proc"
	"github.com/sftkit/sft/plugins"
	"github.com/sftkit/sft/resource"
)

// TestPluginCrashTerminatedByHost: issue 15. After a plugin crash the
// host terminates an app itself (the instance reports its cgroup,
// resource.Contained): it kills the group, including the child and the
// listening grandchild that outlived the plugin, waits until it is empty
// and removes it, and Terminate needs no reopen in the relaunched plugin.
// The same resource then comes online again on the same port: the group
// is created anew, since Linux 6.14 kills at birth a process cloned into a
// group that cgroup.kill killed.
func TestPluginCrashTerminatedByHost(t *testing.T) {
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
	pids := filepath.Join(dir, "pids")
	props := helperProps("tree", map[string]any{"PORT": port, "PIDFILE": pids, "READYFILE": filepath.Join(dir, "ready")})
	props["readiness"] = map[string]any{"tcp": "127.0.0.1:" + port, "interval": "10ms"}
	r, err := typ.Open(t.Context(), resource.OpenRequest{Name: "web", Properties: props})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, r.(resource.Closer).Close()) })
	failed := make(chan error, 1)
	r.(resource.FailureReporter).SetFailureHandler(func(err error) { failed <- err })
	require.NoError(t, r.Online(t.Context()))
	old := pidsOf(t, pids)
	require.Len(t, old, 2)
	killAtEnd(t, old...)
	require.NoError(t, syscall.Kill(h.Pid(), syscall.SIGKILL))
	select {
	case err := <-failed:
		require.ErrorIs(t, err, plugins.ErrPluginExited)
	case <-time.After(20 * time.Second):
		t.Fatal("the crash was not reported")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second) // the monitor's call timeout
	defer cancel()
	require.NoError(t, r.Terminate(ctx))
	for _, p := range old {
		require.False(t, proc.Alive(p), "pid %d of the dead plugin's app survived Terminate", p)
	}
	require.NoError(t, os.Remove(pids))
	require.NoError(t, r.Online(t.Context()), "online again on the same port, in a new group")
	now := pidsOf(t, pids)
	require.Len(t, now, 2)
	killAtEnd(t, now...)
	for _, p := range now {
		require.True(t, proc.Alive(p))
	}
	require.NoError(t, r.Offline(t.Context()))
}
