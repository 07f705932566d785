package config_test

import (
	"context"
	"os"
	"testing"

	"github.com/sftkit/sft/examples/host/config"
)

// FuzzDecode: Parse and Validate never panic, and every error they return
// is an Errors whose entries have a message.
func FuzzDecode(f *testing.F) {
	for _, name := range []string{"../quickstart.yaml", "../reference.yaml", "../netns-demo.yaml"} {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
	for _, s := range []string{
		"", "node: {name: a}\n", "groups: [\n", "- a\n", "node: {}\n---\nnode: {}\n",
		"groups:\n  - name: g\n    resources:\n      - {name: r, type: fake, properties: {address: 10.0.0.1/24, list: [1, .inf, {a: b}]}}\n",
		"a: &a [x, *a]\n", "groups: [{name: g, resources: [{name: a, depends_on: [a, b]}, {name: b, depends_on: [a]}]}]\n",
		"shutdown_timeout: 5\nalerts: {on: [x], backoff: -1s}\n", "api: {tcp: \"[::1]:1\", token: x}\n",
		"groups: [{name: g, resources: [{name: r, type: fake, properties: {x: !!binary aGk=, ? [a] : b}}]}]\n",
	} {
		f.Add([]byte(s))
	}
	reg := registry(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, pos, err := config.Parse("f.yaml", data)
		if err != nil {
			checkErrors(t, err)
			return
		}
		if cfg == nil {
			t.Fatal("nil config without an error")
		}
		if err := cfg.Validate(context.Background(), "f.yaml", pos, reg, "/bin/true"); err != nil {
			checkErrors(t, err)
		}
		_ = cfg.WithDefaults()
	})
}

func checkErrors(t *testing.T, err error) {
	es, ok := err.(config.Errors)
	if !ok || len(es) == 0 {
		t.Fatalf("error is not a non-empty config.Errors: %T %v", err, err)
	}
	for _, e := range es {
		if e.Msg == "" {
			t.Fatalf("error without a message: %+v", e)
		}
	}
}
