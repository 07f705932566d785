package ipaddress

// The type through a real plugin process: this test binary re-executed
// (see TestMain), talking gRPC over go-plugin. Package ipaddress itself does
// not import package plugins; only its tests do.

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/sftkit/sft/plugins"
	"github.com/sftkit/sft/plugins/plugintest"
	"github.com/sftkit/sft/resource"
)

func pluginType(t *testing.T) resource.Type {
	t.Helper()
	h := plugintest.Launch(t, plugins.Config{DisableAutoMTLS: true})
	typ, ok := h.Type(TypeName)
	if !ok {
		t.Fatalf("plugin does not serve %q", TypeName)
	}
	return typ
}

// TestThroughPluginErrorsAndFailures: error classes and fields, and pushed
// failures, survive the process boundary.
func TestThroughPluginErrorsAndFailures(t *testing.T) {
	l := newLab(t, false)
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	typ := pluginType(t)

	err := typ.Validate(ctx, l.props(l.a, resource.Properties{"interface": "nope0"}))
	var re *resource.Error
	if !errors.As(err, &re) || re.Class != resource.ClassConfiguration || re.Field != "interface" {
		t.Fatalf("Validate through the plugin: %v, want a configuration error naming interface", err)
	}

	open := func(h string, p resource.Properties) resource.Resource {
		r, err := typ.Open(ctx, resource.OpenRequest{Name: h, Properties: p})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = r.Terminate(context.Background())
			_ = r.(resource.Closer).Close()
		})
		return r
	}
	ra := open("a", l.props(l.a, nil))
	rb := open("b", l.props(l.b, nil))
	failed := make(chan error, 4)
	ra.(resource.FailureReporter).SetFailureHandler(func(err error) { failed <- err })
	if err := ra.Online(ctx); err != nil {
		t.Fatal(err)
	}
	if err := rb.Online(ctx); !errors.Is(err, resource.ErrNodeLocal) {
		t.Fatalf("B Online through the plugin while A holds the address: %v, want node-local", err)
	}
	l.delAddr(t, l.a)
	select {
	case err := <-failed:
		if !strings.Contains(err.Error(), "address") {
			t.Errorf("pushed %v, want the address failure", err)
		}
	case <-ctx.Done():
		t.Fatal("no failure pushed through the plugin after the address was removed")
	}
}
