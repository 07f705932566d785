package bundled_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sftkit/sft/internal/proc"
	"github.com/sftkit/sft/plugins"
	"github.com/sftkit/sft/plugins/bundled"
	"github.com/sftkit/sft/plugins/plugintest"
	"github.com/sftkit/sft/resource"
	"github.com/sftkit/sft/resource/resourcetest"
)

// The test binary is the host; re-executed, bundled.Main makes it the
// bundled plugin. plugintest.Main checks for leftover children.
func TestMain(m *testing.M) {
	bundled.Main()
	plugintest.Main(m)
}

func TestTypes(t *testing.T) {
	var names []string
	for _, typ := range bundled.Types() {
		names = append(names, typ.Name())
	}
	require.Equal(t, []string{"genericapp", "genericservice", "ipaddress"}, names)
}

func TestLaunchServesBundledTypes(t *testing.T) {
	reg := &resource.Registry{}
	h, err := bundled.Launch(t.Context(), plugins.Config{DisableAutoMTLS: true}, reg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, h.Close()) })
	require.Equal(t, []string{"genericapp", "genericservice", "ipaddress"}, reg.Names())
	err = reg.Validate(t.Context(), "genericapp", resource.Properties{"argv": []any{}})
	require.ErrorIs(t, err, resource.ErrConfiguration, "validated in the plugin, class kept")
	require.Contains(t, err.Error(), "argv")
}

// TestGenericAppConformanceThroughPluginProcess runs the resource contract
// suite on genericapp instances living in a real plugin process (this
// binary re-executed) running real programs. Up reads the pids the program
// wrote; Hang creates a marker that makes the readiness check fail, so the
// next Online hangs until Terminate or its deadline.
func TestGenericAppConformanceThroughPluginProcess(t *testing.T) {
	h, err := bundled.Launch(t.Context(), plugins.Config{DisableAutoMTLS: true}, nil)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, h.Close()) })

	var mu sync.Mutex
	dirs := map[string]string{} // subtest -> its directory
	dir := func(t *testing.T) string {
		mu.Lock()
		defer mu.Unlock()
		if d, ok := dirs[t.Name()]; ok {
			return d
		}
		d := t.TempDir()
		dirs[t.Name()] = d
		return d
	}
	plugintest.SuiteHost(t, h, "genericapp", resourcetest.Options{
		Properties: func(t *testing.T) resource.Properties {
			d := dir(t)
			return resource.Properties{
				"argv":       []any{"/bin/sh", "-c", "echo $$ >> " + filepath.Join(d, "pids") + "; exec sleep 1000"},
				"stop_grace": "2s",
				"readiness": map[string]any{
					// Ready once this start's program wrote its pid (Up reads
					// it), unless Hang. The file keeps the pids of earlier
					// starts, so "the file is not empty" is already true on a
					// second Online before the new program ran: the check is
					// that the newest pid is alive (the earlier programs are
					// gone once Offline or Terminate returned).
					"command":  []any{"/bin/sh", "-c", "test ! -e " + filepath.Join(d, "hang") + " && pid=$(tail -n 1 " + filepath.Join(d, "pids") + ") && kill -0 \"$pid\""},
					"interval": "10ms",
				},
			}
		},
		Up: func(t *testing.T, _ resourcetest.Instance) bool {
			return slices.ContainsFunc(pids(t, filepath.Join(dir(t), "pids")), proc.Alive)
		},
		Hang: func(t *testing.T, _ resourcetest.Instance) <-chan struct{} {
			require.NoError(t, os.WriteFile(filepath.Join(dir(t), "hang"), nil, 0o600))
			return nil
		},
		NoBadProperties: "genericapp's TestSuite checks its bad properties",
	})
}

// pids reads the pids the program wrote, one per start.
func pids(t *testing.T, file string) []int {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil
	}
	var out []int
	for _, f := range strings.Fields(string(b)) {
		pid, err := strconv.Atoi(f)
		require.NoError(t, err)
		out = append(out, pid)
	}
	return out
}

// TestAppsDoNotInheritPluginEnv: a program a genericapp starts in the plugin
// process must not see the plugin handshake, or a host binary run as an app
// (the example host's demo server) would take itself for a plugin.
func TestAppsDoNotInheritPluginEnv(t *testing.T) {
	reg := &resource.Registry{}
	h, err := bundled.Launch(t.Context(), plugins.Config{}, reg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, h.Close()) })
	envFile := filepath.Join(t.TempDir(), "env")
	r, err := reg.Open(t.Context(), "genericapp", resource.OpenRequest{Name: "env", Properties: resource.Properties{
		"argv": []any{"/bin/sh", "-c", "env > " + envFile + ".tmp && mv " + envFile + ".tmp " + envFile + "; exec sleep 1000"},
		"readiness": map[string]any{
			"command":  []any{"/bin/sh", "-c", "test -s " + envFile},
			"interval": "10ms",
		},
	}})
	require.NoError(t, err)
	require.NoError(t, r.Online(t.Context()))
	t.Cleanup(func() {
		require.NoError(t, r.Terminate(context.Background())) // t.Context is canceled in Cleanup
		require.NoError(t, r.(resource.Closer).Close())
	})
	env, err := os.ReadFile(envFile)
	require.NoError(t, err)
	require.Contains(t, string(env), "PATH=", "the app got an environment")
	require.NotContains(t, string(env), "SFT_RESOURCE_PLUGIN")
	require.NotContains(t, string(env), "PLUGIN_")
}
