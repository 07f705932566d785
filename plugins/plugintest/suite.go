package plugintest

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sftkit/sft/plugins"
	"github.com/sftkit/sft/resource"
	"github.com/sftkit/sft/resource/resourcetest"
)

// Mode is one way a type meets its host, and one pass of Suite.
type Mode string

// The modes, in the order Suite runs them.
const (
	// ModeInProcess drives the type's own resources directly, as a host
	// that embeds the type does.
	ModeInProcess Mode = "InProcess"
	// ModeGRPC drives them through the real gRPC client and server shims,
	// in this process (InProcess).
	ModeGRPC Mode = "GRPC"
	// ModePluginProcess drives them in a real plugin process: this test
	// binary re-executed, serving the types its TestMain passes to Main.
	ModePluginProcess Mode = "PluginProcess"
)

// AllModes is the default of Options.Modes.
var AllModes = []Mode{ModeInProcess, ModeGRPC, ModePluginProcess}

// mainServes holds the types TestMain passed to Main (nil: Main not called).
var mainServes atomic.Pointer[[]resource.Type]

// Options configure Suite: the suite's own options (hooks, properties,
// timing; see resourcetest.Options), the modes and the plugin host config.
type Options struct {
	resourcetest.Options

	// Modes to run, in order. Default AllModes. ModePluginProcess needs
	// the package's TestMain to call Main with the type.
	Modes []Mode

	// Config configures the plugin hosts of ModeGRPC and ModePluginProcess
	// (Path is ignored). The suite sets DeadlockGrace to the suite's Grace
	// and watches OnProcess (calling yours too), so that a call in the
	// plugin that outlives its ctx fails the test.
	Config plugins.Config
}

// Suite runs the resource contract suite (resourcetest.Suite) on typ in
// every mode a type meets: in-process, through the real gRPC shims, and in
// a real plugin process. Each mode is a subtest named after it. When a mode
// fails, the later ones are skipped: they would report the same bugs.
//
// In the plugin modes it also fails a call that the plugin reports
// outliving its ctx by Grace (the host's deadlock detection), which the
// gRPC deadline would otherwise hide: the host's call returns on time while
// the plugin's goroutine stays stuck.
//
// A type's test file:
//
//	func TestMain(m *testing.M) { plugintest.Main(m, mytype.New()) }
//
//	func TestSuite(t *testing.T) {
//		plugintest.Suite(t, mytype.New(), plugintest.Options{Options: resourcetest.Options{
//			Properties: func(t *testing.T) resource.Properties { ... },
//			Up:         func(t *testing.T, in resourcetest.Instance) bool { ... },
//			...
//		}})
//	}
func Suite(t *testing.T, typ resource.Type, o Options) {
	t.Helper()
	modes := o.Modes
	if len(modes) == 0 {
		modes = AllModes
	}
	failed := ""
	for _, mode := range modes {
		t.Run(string(mode), func(t *testing.T) {
			if failed != "" {
				t.Skipf("skipped: %s failed, and would fail here the same way; fix it first", failed)
			}
			runMode(t, mode, typ, o)
			if t.Failed() {
				failed = string(mode)
			}
		})
	}
}

func runMode(t *testing.T, mode Mode, typ resource.Type, o Options) {
	t.Helper()
	switch mode {
	case ModeInProcess:
		resourcetest.Suite(t, typ, o.Options)
	case ModeGRPC:
		cfg, w := watched(o)
		h := InProcess(t, cfg, typ)
		suiteOn(t, h, typ.Name(), w, o.Options)
	case ModePluginProcess:
		served := mainServes.Load()
		if served == nil {
			t.Fatalf("plugintest.Suite: %s needs the package's TestMain to call plugintest.Main(m, <the type>) (or plugintest.ServeIfPlugin), which serves it when the test binary runs as a plugin; or leave %s out of Options.Modes", mode, mode)
		}
		if !slices.ContainsFunc(*served, func(s resource.Type) bool { return s.Name() == typ.Name() }) {
			t.Fatalf("plugintest.Suite: TestMain's plugintest.Main does not serve type %q; pass it to Main", typ.Name())
		}
		cfg, w := watched(o)
		h := Launch(t, cfg)
		suiteOn(t, h, typ.Name(), w, o.Options)
	default:
		t.Fatalf("plugintest.Suite: unknown mode %q", mode)
	}
}

// SuiteHost runs resourcetest.Suite on the type named typeName that h
// serves, for a host the test configured itself. Unlike Suite it cannot
// see the plugin's deadlock reports unless the test passes them (see
// resourcetest.Options.PluginExits).
func SuiteHost(t *testing.T, h *plugins.Pool, typeName string, o resourcetest.Options) {
	t.Helper()
	suiteOn(t, h, typeName, nil, o)
}

func suiteOn(t *testing.T, h *plugins.Pool, typeName string, w *watch, o resourcetest.Options) {
	t.Helper()
	typ, ok := h.Type(typeName)
	if !ok {
		t.Fatalf("plugintest: the plugin does not serve type %q", typeName)
	}
	if w != nil {
		o.PluginExits = w.take
	}
	resourcetest.Suite(t, typ, o)
}

// watch collects the plugin process exits a host reports: a deadlocked
// call (a call that outlived its ctx by the deadlock grace) kills the
// process, and the exit names the call.
type watch struct {
	mu    sync.Mutex
	exits []string
}

func (w *watch) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.exits
	w.exits = nil
	return out
}

// watched returns o.Config with the deadlock grace set to the suite's and
// a watch on its process exits.
func watched(o Options) (plugins.Config, *watch) {
	cfg := o.Config
	w := &watch{}
	grace := o.Grace
	if grace <= 0 {
		grace = 2 * time.Second // resourcetest's default
	}
	cfg.DeadlockGrace = grace
	user := cfg.OnProcess
	cfg.OnProcess = func(e plugins.ProcessEvent) {
		if e.Kind == plugins.ProcessExited {
			w.mu.Lock()
			who := fmt.Sprintf("plugin process %d", e.Pid)
			if e.Pid == 0 {
				who = "the in-process plugin server"
			}
			w.exits = append(w.exits, fmt.Sprintf("%s stopped: %v", who, e.Err))
			w.mu.Unlock()
		}
		if user != nil {
			user(e)
		}
	}
	return cfg, w
}
