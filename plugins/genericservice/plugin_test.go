package genericservice

// The type through a real plugin process: this test binary re-executed
// (see TestMain), talking gRPC over go-plugin, and reaching the sandbox's
// systemd through the address property. Package genericservice itself does
// not import package plugins; only its tests do.

import (
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sftkit/sft/plugins"
	"github.com/sftkit/sft/plugins/plugintest"
	"github.com/sftkit/sft/resource"
)

// TestThroughPluginErrorsAndFailures: the configuration error naming the
// service property and the pushed failure of a killed unit cross the
// process boundary.
func TestThroughPluginErrorsAndFailures(t *testing.T) {
	e := newEnv(t, map[string]string{"sleeper.service": sleeperUnit})
	h := plugintest.Launch(t, plugins.Config{DisableAutoMTLS: true})
	typ, ok := h.Type(TypeName)
	if !ok {
		t.Fatalf("plugin does not serve %q", TypeName)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	open := func(props resource.Properties) resource.Resource {
		r, err := typ.Open(ctx, resource.OpenRequest{Name: t.Name(), Properties: e.props(props)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), guard)
			defer cancel()
			r.Terminate(ctx)
			r.(resource.Closer).Close()
		})
		return r
	}

	var re *resource.Error
	if err := typ.Validate(ctx, resource.Properties{"service": "a b"}); !errors.As(err, &re) || re.Field != "service" {
		t.Fatalf("Validate through the plugin: %v, want a configuration error on service", err)
	}
	missing := open(resource.Properties{"service": "nope"})
	if err := missing.Online(ctx); !errors.Is(err, resource.ErrConfiguration) || !errors.As(err, &re) || re.Field != "service" {
		t.Fatalf("Online of a missing unit through the plugin: %v", err)
	}

	r := open(resource.Properties{"service": "sleeper"})
	failed := make(chan error, 4)
	r.(resource.FailureReporter).SetFailureHandler(func(err error) { failed <- err })
	if err := r.Online(ctx); err != nil {
		t.Fatal(err)
	}
	pids := e.pids(t, "sleeper.service")
	if len(pids) != 1 {
		t.Fatalf("pids %v", pids)
	}
	if err := syscall.Kill(pids[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-failed:
		if !strings.Contains(err.Error(), "sleeper.service") || resource.ClassOf(err) != resource.ClassTransient {
			t.Fatalf("pushed %v (%v), want a transient failure naming the unit", err, resource.ClassOf(err))
		}
	case <-ctx.Done():
		t.Fatal("no failure pushed through the plugin")
	}
	if err := r.Terminate(ctx); err != nil {
		t.Fatal(err)
	}
	if p := e.pids(t, "sleeper.service"); len(p) != 0 {
		t.Fatalf("Terminate through the plugin left %v", p)
	}
}
