package plugintest_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sftkit/sft/plugins"
	"github.com/sftkit/sft/plugins/plugintest"
	"github.com/sftkit/sft/resource"
	"github.com/sftkit/sft/resource/resourcetest"
)

// fakeType is what this test binary serves when re-executed as a plugin.
var fakeType = resourcetest.NewType("fake")

func TestMain(m *testing.M) { plugintest.Main(m, fakeType) }

// hang makes the next Online of the subtest's fake (found by name: the
// instance is named after the subtest) block until Terminate or its ctx.
func hang(typ *resourcetest.Type) func(t *testing.T, r resource.Resource) <-chan struct{} {
	return func(t *testing.T, _ resource.Resource) <-chan struct{} {
		f := typ.Instance(t.Name())
		require.NotNil(t, f, "instance %q", t.Name())
		f.Block(resourcetest.MethodOnline, 1, resourcetest.Cancelable)
		ch := make(chan struct{})
		go func() {
			defer close(ch)
			_ = f.WaitBlocked(t.Context(), resourcetest.MethodOnline)
		}()
		return ch
	}
}

func TestConformanceInProcess(t *testing.T) {
	typ := resourcetest.NewType("fake")
	plugintest.Conformance(t, typ, plugintest.Options{
		Up: func(t *testing.T, _ resource.Resource) bool {
			f := typ.Instance(t.Name())
			return f != nil && f.Up()
		},
		Hang: hang(typ),
	})
	require.NotEmpty(t, typ.Instances(), "the suite opened instances through the shims")
	for _, f := range typ.Instances() {
		require.Empty(t, f.Violations(), "the shims kept the contract's call rules")
	}
}

func TestConformanceInProcessRemoteChecks(t *testing.T) {
	typ := resourcetest.NewType("fake")
	plugintest.Conformance(t, typ, plugintest.Options{Config: plugins.Config{RemoteChecks: true}})
}

func TestConformanceThroughPluginProcess(t *testing.T) {
	h := plugintest.Launch(t, plugins.Config{DisableAutoMTLS: true})
	plugintest.ConformanceHost(t, h, "fake", plugintest.Options{})
}

func TestInProcessKillProcessFailsInstances(t *testing.T) {
	typ := resourcetest.NewType("fake")
	h := plugintest.InProcess(t, plugins.Config{}, typ)
	ft, _ := h.Type("fake")
	r, err := ft.Open(t.Context(), resource.OpenRequest{Name: "a"})
	require.NoError(t, err)
	failed := make(chan error, 1)
	r.(resource.FailureReporter).SetFailureHandler(func(err error) { failed <- err })
	require.NoError(t, r.Online(t.Context()))
	require.NoError(t, r.(resource.ProcessKiller).KillProcess("test"))
	require.ErrorIs(t, <-failed, plugins.ErrPluginExited)
	require.ErrorIs(t, r.IsAlive(t.Context()), plugins.ErrPluginExited)
	require.ErrorIs(t, r.Online(t.Context()), plugins.ErrPluginExited, "an in-process plugin is not relaunched")
}
