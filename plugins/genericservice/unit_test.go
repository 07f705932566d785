package genericservice

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/sftkit/sft/resource"
)

func TestNormalizeUnit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want, err string
	}{
		{in: "nginx", want: "nginx.service"},
		{in: "nginx.service", want: "nginx.service"},
		{in: "getty@tty1", want: "getty@tty1.service"},
		{in: "foo.bar", want: "foo.bar.service"},
		{in: "a:b-c_d\\x2d", want: "a:b-c_d\\x2d.service"},
		{in: "", err: "empty"},
		{in: ".service", err: "empty unit name"},
		{in: "nginx.socket", err: "not a service unit"},
		{in: "getty@", err: "without an instance"},
		{in: "getty@.service", err: "without an instance"},
		{in: "@x", err: "empty template name"},
		{in: "a@b@c", err: "more than one @"},
		{in: "has space", err: "not allowed"},
		{in: "semi;colon", err: "not allowed"},
		{in: strings.Repeat("a", 250), err: "longer than 255"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := normalizeUnit(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("normalizeUnit(%q) = %q, %v; want error containing %q", tc.in, got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("normalizeUnit(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	typ := NewWithConfig(Config{Managers: map[string]ManagerFactory{
		"systemd": func(*slog.Logger, string) (Manager, error) { return nil, errors.New("not used") },
		"runit":   func(*slog.Logger, string) (Manager, error) { return nil, errors.New("not used") },
	}})
	tests := []struct {
		name  string
		props resource.Properties
		field string // "" = valid
	}{
		{"minimal", resource.Properties{"service": "nginx"}, ""},
		{"everything", resource.Properties{"service": "nginx.service", "manager": "runit", "address": "unix:path=/x", "start_timeout": "30s",
			"stop_timeout": 5, "readiness": map[string]any{"tcp": "127.0.0.1:80"}, "health": map[string]any{"http": "http://127.0.0.1/"}}, ""},
		{"missing service", resource.Properties{}, "service"},
		{"bad service", resource.Properties{"service": "a b"}, "service"},
		{"not a service", resource.Properties{"service": "x.timer"}, "service"},
		{"service not a string", resource.Properties{"service": 3}, "service"},
		{"unknown manager", resource.Properties{"service": "x", "manager": "upstart"}, "manager"},
		{"negative start timeout", resource.Properties{"service": "x", "start_timeout": "-1s"}, "start_timeout"},
		{"negative stop timeout", resource.Properties{"service": "x", "stop_timeout": -1}, "stop_timeout"},
		{"bad readiness", resource.Properties{"service": "x", "readiness": map[string]any{"tcp": "nope"}}, "readiness.tcp"},
		{"empty health", resource.Properties{"service": "x", "health": map[string]any{}}, "health"},
		{"unknown property", resource.Properties{"service": "x", "unit": "y"}, "unit"},
		{"bad address", resource.Properties{"service": "x", "address": "/run/systemd/private"}, "address"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := typ.Validate(context.Background(), tc.props)
			if tc.field == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			var re *resource.Error
			if !errors.As(err, &re) || re.Class != resource.ClassConfiguration || re.Field != tc.field {
				t.Fatalf("Validate: %v (%#v), want a configuration error on field %q", err, re, tc.field)
			}
		})
	}
}

func TestTypeName(t *testing.T) {
	t.Parallel()
	if got := New().Name(); got != "genericservice" {
		t.Fatalf("Name() = %q", got)
	}
	r, err := resource.NewRegistry(New())
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Validate(context.Background(), "genericservice", resource.Properties{"service": "sshd"}); err != nil {
		t.Fatal(err)
	}
}

// fakeManager is a collaborator for the type's bookkeeping tests: it only
// counts.
type fakeManager struct {
	closed int
}

func (f *fakeManager) Start(context.Context, string) error { return nil }
func (f *fakeManager) Stop(context.Context, string) error  { return nil }
func (f *fakeManager) Kill(context.Context, string) error  { return nil }
func (f *fakeManager) Status(_ context.Context, unit string) (Status, error) {
	return Status{Unit: unit, Load: LoadLoaded, Active: StateInactive}, nil
}
func (f *fakeManager) Watch(_ context.Context, unit string, fn func(Status)) (Watch, error) {
	return fakeWatch{}, nil
}
func (f *fakeManager) Close() error { f.closed++; return nil }

type fakeWatch struct{}

func (fakeWatch) Status() Status { return Status{} }
func (fakeWatch) Close()         {}

// TestManagersShared: one Manager per (manager, address), shared by the
// resources naming it and closed with the last of them; a factory error is
// a transient Open error.
func TestManagersShared(t *testing.T) {
	t.Parallel()
	var made []*fakeManager
	var addrs []string
	typ := NewWithConfig(Config{Managers: map[string]ManagerFactory{
		"fake": func(_ *slog.Logger, address string) (Manager, error) {
			if address == "unix:path=/broken" {
				return nil, errors.New("cannot connect")
			}
			m := &fakeManager{}
			made = append(made, m)
			addrs = append(addrs, address)
			return m, nil
		},
	}})
	ctx := context.Background()
	open := func(addr string) (resource.Resource, error) {
		return typ.Open(ctx, resource.OpenRequest{Properties: resource.Properties{"service": "x", "manager": "fake", "address": addr}})
	}
	a, err := open("unix:path=/a")
	if err != nil {
		t.Fatal(err)
	}
	b, err := open("unix:path=/a")
	if err != nil {
		t.Fatal(err)
	}
	c, err := open("unix:path=/c")
	if err != nil {
		t.Fatal(err)
	}
	if len(made) != 2 || addrs[0] != "unix:path=/a" || addrs[1] != "unix:path=/c" {
		t.Fatalf("managers made for %v, want one per address", addrs)
	}
	a.(resource.Closer).Close()
	if made[0].closed != 0 {
		t.Fatal("manager closed while another resource uses it")
	}
	b.(resource.Closer).Close()
	b.(resource.Closer).Close() // idempotent: no double release
	if made[0].closed != 1 {
		t.Fatalf("manager closed %d times after its last resource, want 1", made[0].closed)
	}
	c.(resource.Closer).Close()
	if made[1].closed != 1 {
		t.Fatal("second manager not closed")
	}
	if _, err := open("unix:path=/broken"); resource.ClassOf(err) != resource.ClassTransient || err == nil {
		t.Fatalf("Open with a failing manager: %v, want a transient error", err)
	}
}
