package node_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/sftkit/sft/examples/host/config"
	"github.com/sftkit/sft/examples/host/node"
	"github.com/sftkit/sft/plugins/genericapp"
	"github.com/sftkit/sft/resource"
	"github.com/sftkit/sft/resource/resourcetest"
)

// FuzzValidateImpliesStart keeps the rule "whatever run would reject,
// validate rejects first": a config that Validate accepts must start a
// node. Run as a normal test it replays the seed corpus (the sample
// configs and testdata/fuzz/FuzzValidateImpliesStart) in well under a
// second; `go test -fuzz FuzzValidateImpliesStart ./examples/host/node`
// explores further.
//
// Types: genericapp (in-process; no group is brought online, so no program
// runs) and a scripted fake. Groups using a type that needs root or a
// service manager (ipaddress, genericservice) are dropped first. Paths and
// listeners are pointed at a temporary directory and loopback port 0
// before Validate, so the fuzzer never writes outside it: the rule is
// checked for everything else.
func FuzzValidateImpliesStart(f *testing.F) {
	for _, name := range []string{"../quickstart.yaml", "../reference.yaml", "../netns-demo.yaml"} {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, _, err := config.Parse("f.yaml", data)
		if err != nil {
			return
		}
		cfg.Groups = slices.DeleteFunc(cfg.Groups, func(g config.Group) bool {
			return slices.ContainsFunc(g.Resources, func(r config.Resource) bool {
				return r.Type == "ipaddress" || r.Type == "genericservice"
			})
		})
		no := false
		for i := range cfg.Groups {
			cfg.Groups[i].Autostart = &no
		}
		dir := t.TempDir()
		cfg.API.Socket = filepath.Join(dir, "s.sock")
		if cfg.API.TCP != "" {
			cfg.API.TCP = "127.0.0.1:0"
		}
		if cfg.API.TokenFile != "" {
			cfg.API.TokenFile = filepath.Join(dir, "token")
			if err := os.WriteFile(cfg.API.TokenFile, []byte("0123456789abcdef0123\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		if cfg.Metrics.Listen != "" {
			cfg.Metrics.Listen = "127.0.0.1:0"
		}
		if cfg.Log.File != "" {
			cfg.Log.File = filepath.Join(dir, "log")
		}
		cfg.Plugins.Mode = config.PluginModeInProcess
		reg, err := resource.NewRegistry(genericapp.New(), resourcetest.NewType("fake"))
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Validate(context.Background(), "f.yaml", nil, reg, "/bin/true") != nil {
			return
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		ready := false
		err = node.Run(ctx, node.Options{
			Config: cfg, Registry: reg, Self: "/bin/true",
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
			Stderr: io.Discard,
			Ready:  func(*node.Node) { ready = true; cancel() },
		})
		if err != nil || !ready {
			t.Fatalf("validated, yet the node did not start (ready %v): %v\nconfig:\n%s", ready, err, data)
		}
	})
}
