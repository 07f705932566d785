package resource_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/sftkit/sft/resource"
)

func TestErrorClasses(t *testing.T) {
	t.Parallel()
	base := errors.New("boom")
	tests := []struct {
		name  string
		err   error
		class resource.Class
		is    error // the sentinel errors.Is must match
	}{
		{"unclassified", base, resource.ClassTransient, nil},
		{"transient", resource.Transient(base), resource.ClassTransient, resource.ErrTransient},
		{"node-local", resource.NodeLocal(base), resource.ClassNodeLocal, resource.ErrNodeLocal},
		{"configuration", resource.Configuration(base), resource.ClassConfiguration, resource.ErrConfiguration},
		{"ConfigError", resource.ConfigError("address", "x", "bad"), resource.ClassConfiguration, resource.ErrConfiguration},
		{"wrapped node-local", fmt.Errorf("online web/vip: %w", resource.NodeLocal(base)), resource.ClassNodeLocal, resource.ErrNodeLocal},
		{"twice wrapped configuration", fmt.Errorf("a: %w", fmt.Errorf("b: %w", resource.Configuration(base))), resource.ClassConfiguration, resource.ErrConfiguration},
		{"joined", errors.Join(errors.New("other"), resource.NodeLocal(base)), resource.ClassNodeLocal, resource.ErrNodeLocal},
		{"outermost decides", resource.Configuration(fmt.Errorf("x: %w", resource.NodeLocal(base))), resource.ClassConfiguration, resource.ErrConfiguration},
	}
	sentinels := []error{resource.ErrTransient, resource.ErrNodeLocal, resource.ErrConfiguration}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := resource.ClassOf(tt.err); got != tt.class {
				t.Errorf("ClassOf = %v, want %v", got, tt.class)
			}
			if tt.is != nil && !errors.Is(tt.err, tt.is) {
				t.Errorf("errors.Is(err, %v) = false", tt.is)
			}
			if tt.name != "outermost decides" {
				for _, s := range sentinels {
					if s != tt.is && errors.Is(tt.err, s) {
						t.Errorf("errors.Is(err, %v) = true, want only %v", s, tt.is)
					}
				}
			}
			if tt.name != "ConfigError" && !errors.Is(tt.err, base) && tt.name != "joined" {
				t.Errorf("the underlying error is lost: errors.Is(err, base) = false")
			}
			var e *resource.Error
			if (tt.is != nil) != errors.As(tt.err, &e) {
				t.Errorf("errors.As(*resource.Error) = %v", !(tt.is != nil))
			} else if e != nil && e.Class != tt.class {
				t.Errorf("As: Class = %v, want %v", e.Class, tt.class)
			}
		})
	}
}

func TestClassifyNil(t *testing.T) {
	t.Parallel()
	for name, fn := range map[string]func(error) error{
		"Transient": resource.Transient, "NodeLocal": resource.NodeLocal, "Configuration": resource.Configuration,
	} {
		if err := fn(nil); err != nil {
			t.Errorf("%s(nil) = %v, want nil", name, err)
		}
	}
	if resource.ClassOf(nil) != resource.ClassTransient {
		t.Error("ClassOf(nil) is not transient")
	}
}

func TestErrorMessage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"string value quoted", resource.ConfigError("address", "10.0.0.300/24", "not a CIDR prefix"), `address "10.0.0.300/24": not a CIDR prefix`},
		{"number value", resource.ConfigError("port", 70000, "must be 1..%d", 65535), `port 70000: must be 1..65535`},
		{"nil value", resource.ConfigError("command", nil, "required"), `command: required`},
		{"classified keeps message", resource.NodeLocal(errors.New("eth9 missing")), `eth9 missing`},
		{"no field", &resource.Error{Class: resource.ClassConfiguration, Err: errors.New("x")}, "x"},
		{"nil Err", &resource.Error{}, "<nil>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
		})
	}
	var e *resource.Error
	if !errors.As(resource.ConfigError("port", 0, "bad"), &e) || e.Field != "port" || e.Value != 0 {
		t.Errorf("ConfigError fields: %+v", e)
	}
}

func TestConfigErrorWrapsArgs(t *testing.T) {
	t.Parallel()
	cause := errors.New("no such file")
	err := resource.ConfigError("command", "/bin/nope", "not executable: %w", cause)
	if !errors.Is(err, cause) || !errors.Is(err, resource.ErrConfiguration) {
		t.Errorf("ConfigError with %%w: Is(cause) = %v, Is(ErrConfiguration) = %v", errors.Is(err, cause), errors.Is(err, resource.ErrConfiguration))
	}
}

func TestClassString(t *testing.T) {
	t.Parallel()
	for _, c := range []resource.Class{resource.ClassTransient, resource.ClassNodeLocal, resource.ClassConfiguration} {
		got, err := resource.ParseClass(c.String())
		if err != nil || got != c {
			t.Errorf("ParseClass(%q) = %v, %v", c.String(), got, err)
		}
	}
	tests := []struct {
		in      string
		want    resource.Class
		wantErr bool
	}{
		{"transient", resource.ClassTransient, false},
		{"node-local", resource.ClassNodeLocal, false},
		{"configuration", resource.ClassConfiguration, false},
		{"Transient", 0, true},
		{"", 0, true},
		{"fatal", 0, true},
	}
	for _, tt := range tests {
		got, err := resource.ParseClass(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseClass(%q) = %v, %v", tt.in, got, err)
		}
		if err != nil && !strings.Contains(err.Error(), fmt.Sprintf("%q", tt.in)) {
			t.Errorf("ParseClass(%q) error %q does not name the input", tt.in, err)
		}
	}
	if got := resource.Class(9).String(); got != "Class(9)" {
		t.Errorf("Class(9).String() = %q", got)
	}
}

type custom struct{ error }

func (c custom) Unwrap() error { return c.error }

// issue 8 bug 12: one rule, the outermost class wins, for ClassOf and
// errors.Is alike; inner classes are shadowed but other errors still match.
func TestBug12_OutermostClassWinsForIsAndClassOf(t *testing.T) {
	t.Parallel()
	base := errors.New("boom")
	deep := fmt.Errorf("ctx: %w", custom{resource.Configuration(base)})
	tests := []struct {
		name string
		err  error
		want resource.Class
	}{
		{"direct nesting", resource.NodeLocal(resource.Configuration(base)), resource.ClassNodeLocal},
		{"wrapped nesting", resource.Configuration(fmt.Errorf("x: %w", resource.NodeLocal(base))), resource.ClassConfiguration},
		{"transient over node-local", resource.Transient(resource.NodeLocal(base)), resource.ClassTransient},
		{"through a custom wrapper", resource.NodeLocal(deep), resource.ClassNodeLocal},
		{"joined outer", resource.Configuration(errors.Join(base, resource.NodeLocal(base))), resource.ClassConfiguration},
	}
	sentinel := map[resource.Class]error{
		resource.ClassTransient: resource.ErrTransient, resource.ClassNodeLocal: resource.ErrNodeLocal, resource.ClassConfiguration: resource.ErrConfiguration,
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := resource.ClassOf(tt.err); got != tt.want {
				t.Fatalf("ClassOf = %v, want %v", got, tt.want)
			}
			for c, s := range sentinel {
				if got := errors.Is(tt.err, s); got != (c == tt.want) {
					t.Errorf("errors.Is(err, %v) = %v, want %v", s, got, c == tt.want)
				}
			}
			if !errors.Is(tt.err, base) {
				t.Error("the underlying error is lost")
			}
			var e *resource.Error
			if !errors.As(tt.err, &e) || e.Class != tt.want {
				t.Errorf("errors.As finds %v, want the outermost (%v)", e, tt.want)
			}
		})
	}
	var c custom
	if !errors.As(resource.NodeLocal(deep), &c) {
		t.Error("errors.As cannot reach a custom error under a shadowed class")
	}
	if !resource.IsTransient(base) || resource.IsTransient(resource.NodeLocal(base)) {
		t.Error("IsTransient disagrees with ClassOf")
	}
}

func TestPrefixFields(t *testing.T) {
	t.Parallel()
	err := errors.Join(
		resource.ConfigError("window_start", "25:00", "want HH:MM"),
		errors.Join(resource.ConfigError("mode", "sometimes", "unknown mode"), errors.New("plain")),
	)
	got := resource.PrefixFields("failback", err)
	for _, e := range []string{"failback.window_start", "failback.mode"} {
		if !strings.Contains(got.Error(), e) {
			t.Errorf("PrefixFields: %q does not name %s", got, e)
		}
	}
	if !strings.Contains(got.Error(), "plain") {
		t.Errorf("PrefixFields dropped an error without a field: %q", got)
	}
	if resource.PrefixFields("x", nil) != nil {
		t.Errorf("PrefixFields(nil) != nil")
	}
}
