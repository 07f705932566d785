package resource_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/sftkit/sft/resource"
	"github.com/sftkit/sft/resource/resourcetest"
)

func TestRegistry(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	ip, app := resourcetest.NewType("ipaddress"), resourcetest.NewType("genericapp")
	reg, err := resource.NewRegistry(ip, app)
	if err != nil {
		t.Fatal(err)
	}
	if got := reg.Names(); !slices.Equal(got, []string{"genericapp", "ipaddress"}) {
		t.Errorf("Names = %v", got)
	}
	if typ, ok := reg.Lookup("ipaddress"); !ok || typ != ip {
		t.Errorf("Lookup(ipaddress) = %v, %v", typ, ok)
	}
	if _, ok := reg.Lookup("nope"); ok {
		t.Error("Lookup(nope) found something")
	}

	r, err := reg.Open(ctx, "ipaddress", resource.OpenRequest{Name: "web/vip"})
	if err != nil || r == nil || ip.Instance("web/vip") == nil || app.Instance("web/vip") != nil {
		t.Fatalf("Open = %v, %v; it must reach the ipaddress type only", r, err)
	}
	if err := reg.Validate(ctx, "genericapp", resource.Properties{"online_failures": 1}); err != nil {
		t.Errorf("Validate of good properties = %v", err)
	}
	if err := reg.Validate(ctx, "genericapp", resource.Properties{"bogus": 1}); !errors.Is(err, resource.ErrConfiguration) || !strings.Contains(err.Error(), "bogus") {
		t.Errorf("Validate of a bad property = %v", err)
	}
	if app.Validations() != 2 || ip.Validations() != 0 {
		t.Errorf("Validations: genericapp %d, ipaddress %d; want 2, 0", app.Validations(), ip.Validations())
	}

	for name, call := range map[string]func() error{
		"Open":     func() error { _, err := reg.Open(ctx, "ipadress", resource.OpenRequest{}); return err },
		"Validate": func() error { return reg.Validate(ctx, "ipadress", nil) },
	} {
		err := call()
		want := `type "ipadress": unknown resource type (known: genericapp, ipaddress)`
		if err == nil || err.Error() != want || resource.ClassOf(err) != resource.ClassConfiguration {
			t.Errorf("%s of an unknown type = %v, want the configuration error %q", name, err, want)
		}
	}
}

// namedType is a Type whose name the test picks, possibly empty.
type namedType struct{ resource.Type }

func (n namedType) Name() string { return "" }

func TestRegistryRegisterErrors(t *testing.T) {
	t.Parallel()
	var reg resource.Registry // the zero value is ready to use
	if err := reg.Register(resourcetest.NewType("fake")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		typ  resource.Type
		want string
	}{
		{"duplicate", resourcetest.NewType("fake"), `type "fake" registered twice`},
		{"nil", nil, "nil Type"},
		{"empty name", namedType{resourcetest.NewType("x")}, "empty name"},
	}
	for _, tt := range tests {
		if err := reg.Register(tt.typ); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Register(%s) = %v, want an error containing %q", tt.name, err, tt.want)
		}
	}
	if got := reg.Names(); !slices.Equal(got, []string{"fake"}) {
		t.Errorf("failed Registers changed the registry: %v", got)
	}
	if _, err := resource.NewRegistry(resourcetest.NewType("a"), resourcetest.NewType("a")); err == nil {
		t.Error("NewRegistry with a duplicate succeeded")
	}
}

func TestRegistryConcurrent(t *testing.T) {
	t.Parallel()
	var reg resource.Registry
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			if err := reg.Register(resourcetest.NewType(fmt.Sprint("t", i))); err != nil {
				t.Error(err)
			}
			_ = reg.Names()
			_, _ = reg.Lookup("t0")
		})
	}
	wg.Wait()
	if n := len(reg.Names()); n != 8 {
		t.Errorf("%d types registered, want 8", n)
	}
}

func TestReportProgress(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	resource.ReportProgress(ctx, "nobody listens") // must not panic

	var got []string
	pctx := resource.WithProgress(ctx, func(m string) { got = append(got, m) })
	resource.ReportProgress(pctx, "step 1")
	// Progress reaches through derived contexts (the resource may add its
	// own timeouts and values).
	child, cancel := context.WithTimeout(context.WithValue(pctx, ctxKey{}, 1), 1<<40)
	defer cancel()
	resource.ReportProgress(child, "step 2")
	if !slices.Equal(got, []string{"step 1", "step 2"}) {
		t.Errorf("progress = %q", got)
	}
	// The innermost WithProgress wins.
	var inner []string
	resource.ReportProgress(resource.WithProgress(pctx, func(m string) { inner = append(inner, m) }), "step 3")
	if !slices.Equal(inner, []string{"step 3"}) || len(got) != 2 {
		t.Errorf("inner = %q, outer = %q", inner, got)
	}
	// A nil fn is a no-op, not a panic.
	resource.ReportProgress(resource.WithProgress(ctx, nil), "x")
}

func TestOpenRequestLog(t *testing.T) {
	t.Parallel()
	var none resource.OpenRequest
	if none.Log() == nil {
		t.Fatal("Log() of a request without a logger is nil")
	}
	none.Log().Info("discarded") // must not panic
	var b strings.Builder
	l := slog.New(slog.NewTextHandler(&b, nil))
	if (resource.OpenRequest{Logger: l}).Log() != l {
		t.Error("Log() does not return the request's logger")
	}
}

// ctxKey is a context key of this test's own.
type ctxKey struct{}
