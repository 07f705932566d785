package plugintest_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sftkit/sft/plugins"
	"github.com/sftkit/sft/plugins/plugintest"
	"github.com/sftkit/sft/resource"
	"github.com/sftkit/sft/resource/resourcetest"
)

// fakeType is what this test binary serves when re-executed as a plugin,
// with the marker type.
var fakeType = resourcetest.NewType("fake")

func TestMain(m *testing.M) { plugintest.Main(m, fakeType, markerType{}) }

// markerOptions are the suite's options for the marker type: Up looks for
// the file, a one-hour wait makes Online hang. brk selects a weakness.
func markerOptions(brk string) plugintest.Options {
	return plugintest.Options{
		Options: resourcetest.Options{
			Properties: func(t *testing.T) resource.Properties {
				p := resource.Properties{"path": filepath.Join(t.TempDir(), "marker")}
				if brk != "" {
					p["break"] = brk
				}
				return p
			},
			Up: func(t *testing.T, in resourcetest.Instance) bool {
				path := in.Properties["path"].(string)
				if _, err := os.Stat(path); err == nil {
					return true
				}
				_ = os.WriteFile(seenDown(path), nil, 0o600) // the broken "recreates" waits for it
				return false
			},
			HangProperties: func(t *testing.T, p resource.Properties) resource.Properties {
				p["wait"] = "1h"
				return p
			},
			BadProperties: []resourcetest.BadProperties{
				{Name: "relative path", Properties: resource.Properties{"path": "marker", "break": brk}, Field: "path"},
				{Name: "unknown property", Properties: resource.Properties{"path": "/tmp/m", "colour": "red"}, Field: "colour"},
			},
		},
		Config: plugins.Config{DisableAutoMTLS: true},
	}
}

// TestSuiteMarker: the correct marker passes in every mode.
func TestSuiteMarker(t *testing.T) {
	plugintest.Suite(t, markerType{}, markerOptions(""))
}

// TestSuiteFake: the scripted fake passes in every mode; in-process and
// over gRPC its instances are reachable for Up and Hang, in the plugin
// process they are not (so Up is opted out there).
func TestSuiteFake(t *testing.T) {
	typ := resourcetest.NewType("fake")
	o := plugintest.Options{
		Options: resourcetest.Options{
			Up: func(t *testing.T, in resourcetest.Instance) bool {
				f := typ.Instance(in.Name)
				return f != nil && f.Up()
			},
			Hang: func(t *testing.T, in resourcetest.Instance) <-chan struct{} {
				f := typ.Instance(in.Name)
				require.NotNil(t, f, "instance %q", in.Name)
				f.Block(resourcetest.MethodOnline, 1, resourcetest.Cancelable)
				ch := make(chan struct{})
				go func() {
					defer close(ch)
					_ = f.WaitBlocked(t.Context(), resourcetest.MethodOnline)
				}()
				return ch
			},
			BadProperties: []resourcetest.BadProperties{{Name: "negative", Properties: resource.Properties{"online_failures": -1}, Field: "online_failures"}},
		},
		Modes: []plugintest.Mode{plugintest.ModeInProcess, plugintest.ModeGRPC},
	}
	plugintest.Suite(t, typ, o)
	require.NotEmpty(t, typ.Instances(), "the suite opened instances")
	for _, f := range typ.Instances() {
		require.Empty(t, f.Violations(), "the suite and the shims kept the contract's call rules")
	}
	t.Run("RemoteChecks", func(t *testing.T) {
		o := o
		o.Modes = []plugintest.Mode{plugintest.ModeGRPC}
		o.Config = plugins.Config{RemoteChecks: true}
		plugintest.Suite(t, typ, o)
	})
	t.Run("PluginProcess", func(t *testing.T) {
		plugintest.Suite(t, fakeType, plugintest.Options{
			Options: resourcetest.Options{
				NoUp:          "the fake's state lives in the plugin process",
				NoHang:        "the fake cannot be scripted across the process boundary",
				BadProperties: o.BadProperties,
			},
			Modes:  []plugintest.Mode{plugintest.ModePluginProcess},
			Config: plugins.Config{DisableAutoMTLS: true},
		})
	})
}

// brokenCases: each weakness of the marker, the modes that must catch it
// and the rule the failure must name.
var brokenCases = map[string]struct {
	modes []plugintest.Mode
	rule  string
}{
	breakTerminateLeavesFile: {plugintest.AllModes, resourcetest.RuleDownAfterStop},
	breakOnlineIgnoresCtx:    {plugintest.AllModes, resourcetest.RuleReturnOnCtx},
	// Through a plugin the server shim cancels a call on Terminate, so a
	// Terminate that does not is caught where the type runs in-process.
	breakTerminateKeepsOn: {[]plugintest.Mode{plugintest.ModeInProcess}, resourcetest.RuleTerminateOnline},
	// Through a plugin the plugin-side sweep runs it and the host kills the
	// plugin when it outlives its ctx.
	breakLooksAliveIgnoreCtx: {plugintest.AllModes, resourcetest.RuleReturnOnCtx},
	// Through a plugin the proxy answers LooksAlive from memory: the
	// budget is a property of the type, checked in-process.
	breakLooksAliveSlow:  {[]plugintest.Mode{plugintest.ModeInProcess}, resourcetest.RuleLooksAliveCheap},
	breakRecreates:       {plugintest.AllModes, resourcetest.RuleStaysDown},
	breakValidateAccepts: {plugintest.AllModes, resourcetest.RuleBadProperties},
}

const (
	brokenEnv = "PLUGINTEST_BROKEN"
	modeEnv   = "PLUGINTEST_MODE"
)

// TestSuiteBrokenChild runs the suite on one broken marker in one mode, in
// the child process TestSuiteCatchesBrokenTypes starts.
func TestSuiteBrokenChild(t *testing.T) {
	brk := os.Getenv(brokenEnv)
	if brk == "" {
		t.Skip("runs only as a child of TestSuiteCatchesBrokenTypes")
	}
	o := markerOptions(brk)
	o.Modes = []plugintest.Mode{plugintest.Mode(os.Getenv(modeEnv))}
	plugintest.Suite(t, markerType{}, o)
}

// TestSuiteCatchesBrokenTypes proves the suite fails each weakness in each
// mode listed, with one failure naming the broken rule, and no rule twice.
func TestSuiteCatchesBrokenTypes(t *testing.T) {
	for brk, tc := range brokenCases {
		for _, mode := range tc.modes {
			t.Run(brk+"/"+string(mode), func(t *testing.T) {
				t.Parallel()
				cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestSuiteBrokenChild$", "-test.v", "-test.count=1")
				cmd.Env = append(os.Environ(), brokenEnv+"="+brk, modeEnv+"="+string(mode))
				out, err := cmd.CombinedOutput()
				var exit *exec.ExitError
				if !errors.As(err, &exit) {
					t.Fatalf("the suite passed a marker that breaks %q in %s: %v\n%s", tc.rule, mode, err, out)
				}
				rules := map[string]int{}
				for _, line := range strings.Split(string(out), "\n") {
					if _, rule, ok := strings.Cut(line, "broken rule: "); ok {
						rules[rule]++
					}
				}
				if rules[tc.rule] != 1 {
					t.Errorf("want one failure naming %q, got %v\n%s", tc.rule, rules, out)
				}
				for rule, n := range rules {
					if n > 1 {
						t.Errorf("rule %q reported %d times: one bug, one failure\n%s", rule, n, out)
					}
				}
			})
		}
	}
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
