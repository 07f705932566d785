package resource_test

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sftkit/sft/resource"
)

type appConfig struct {
	Command string            `json:"command"`
	Args    []string          `json:"args"`
	Port    int               `json:"port"`
	Timeout resource.Duration `json:"timeout"`
	Enabled bool              `json:"enabled"`
	Env     map[string]string `json:"env"`
	Limits  struct {
		Files int `json:"files"`
	} `json:"limits"`
	Ignored string `json:"-"`
	NoTag   string
}

func TestPropertiesDecode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		props resource.Properties
		check func(t *testing.T, c appConfig)
		// wantErr lists substrings of the error; nil means success.
		wantErr []string
	}{
		{
			name:  "all kinds",
			props: resource.Properties{"command": "/bin/app", "args": []any{"-v", "x"}, "port": 8080, "enabled": true, "env": map[string]any{"A": "1"}, "limits": map[string]any{"files": 1024}, "NoTag": "y"},
			check: func(t *testing.T, c appConfig) {
				if c.Command != "/bin/app" || !slices.Equal(c.Args, []string{"-v", "x"}) || c.Port != 8080 || !c.Enabled || c.Env["A"] != "1" || c.Limits.Files != 1024 || c.NoTag != "y" {
					t.Errorf("decoded %+v", c)
				}
			},
		},
		{name: "float port from JSON", props: resource.Properties{"port": float64(80)}, check: func(t *testing.T, c appConfig) {
			if c.Port != 80 {
				t.Errorf("Port = %d", c.Port)
			}
		}},
		{name: "duration string", props: resource.Properties{"timeout": "1.5s"}, check: func(t *testing.T, c appConfig) {
			if c.Timeout.D() != 1500*time.Millisecond {
				t.Errorf("Timeout = %v", c.Timeout.D())
			}
		}},
		{name: "duration seconds", props: resource.Properties{"timeout": 2}, check: func(t *testing.T, c appConfig) {
			if c.Timeout.D() != 2*time.Second {
				t.Errorf("Timeout = %v", c.Timeout.D())
			}
		}},
		{name: "duration fractional seconds", props: resource.Properties{"timeout": 0.25}, check: func(t *testing.T, c appConfig) {
			if c.Timeout.D() != 250*time.Millisecond {
				t.Errorf("Timeout = %v", c.Timeout.D())
			}
		}},
		{name: "null keeps defaults", props: resource.Properties{"timeout": nil, "port": nil}, check: func(t *testing.T, c appConfig) {
			if c.Timeout.D() != time.Minute || c.Port != 1 {
				t.Errorf("null changed the defaults: %+v", c)
			}
		}},
		{name: "empty", props: nil, check: func(t *testing.T, c appConfig) {
			if c.Port != 1 {
				t.Errorf("Port = %d", c.Port)
			}
		}},
		{name: "unknown property", props: resource.Properties{"comand": "/bin/app"}, wantErr: []string{"comand: unknown property", "known: NoTag, args, command, enabled, env, limits, port, timeout"}},
		{name: "unknown property excludes json:-", props: resource.Properties{"Ignored": "x"}, wantErr: []string{"Ignored: unknown property"}},
		{name: "wrong kind string for int", props: resource.Properties{"port": "eighty"}, wantErr: []string{`port "eighty"`, "want int"}},
		{name: "wrong kind fraction for int", props: resource.Properties{"port": 1.5}, wantErr: []string{"port 1.5", "want int"}},
		{name: "wrong kind number for string", props: resource.Properties{"command": 7}, wantErr: []string{"command 7", "want string"}},
		{name: "wrong kind nested", props: resource.Properties{"limits": map[string]any{"files": "many"}}, wantErr: []string{`limits.files "many"`, "want int"}},
		{name: "bad duration string", props: resource.Properties{"timeout": "soon"}, wantErr: []string{`timeout "soon"`, "bad duration"}},
		{name: "bad duration kind", props: resource.Properties{"timeout": true}, wantErr: []string{"timeout true", "bad duration"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := appConfig{Port: 1, Timeout: resource.Duration(time.Minute)}
			err := tt.props.Decode(&c)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Decode = %v", err)
				}
				tt.check(t, c)
				return
			}
			if !errors.Is(err, resource.ErrConfiguration) {
				t.Fatalf("Decode = %v, want a configuration error", err)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Decode error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestPropertiesDecodeNotStruct(t *testing.T) {
	t.Parallel()
	var n int
	if err := (resource.Properties{"a": 1}).Decode(&n); !errors.Is(err, resource.ErrConfiguration) {
		t.Errorf("Decode into *int = %v, want a configuration error", err)
	}
	if err := (resource.Properties{"a": make(chan int)}).Decode(&struct{}{}); !errors.Is(err, resource.ErrConfiguration) {
		t.Errorf("Decode of a non-JSON value = %v, want a configuration error", err)
	}
}

func TestDurationJSON(t *testing.T) {
	t.Parallel()
	b, err := resource.Duration(1500 * time.Millisecond).MarshalJSON()
	if err != nil || string(b) != `"1.5s"` {
		t.Errorf("MarshalJSON = %s, %v", b, err)
	}
	var d resource.Duration
	if err := d.UnmarshalJSON(b); err != nil || d.D() != 1500*time.Millisecond {
		t.Errorf("round trip = %v, %v", d.D(), err)
	}
	if err := d.UnmarshalJSON([]byte(`{`)); err == nil {
		t.Error("UnmarshalJSON of broken JSON succeeded")
	}
	if err := d.UnmarshalJSON([]byte(`[1]`)); !errors.Is(err, resource.ErrConfiguration) {
		t.Errorf("UnmarshalJSON([1]) = %v", err)
	}
}

func TestPropertiesClone(t *testing.T) {
	t.Parallel()
	p := resource.Properties{
		"n":      8080,
		"f":      1.5,
		"s":      "x",
		"nil":    nil,
		"list":   []any{"a", map[string]any{"k": "v"}},
		"nested": map[string]any{"inner": []any{1, 2}},
		"props":  resource.Properties{"a": "b"},
	}
	c := p.Clone()
	if !reflect.DeepEqual(p, c) {
		t.Fatalf("Clone = %#v, want %#v", c, p)
	}
	// Mutating the clone, at every depth, leaves the original alone.
	c["s"] = "changed"
	c["list"].([]any)[0] = "changed"
	c["list"].([]any)[1].(map[string]any)["k"] = "changed"
	c["nested"].(map[string]any)["inner"].([]any)[0] = "changed"
	c["props"].(resource.Properties)["a"] = "changed"
	if p["s"] != "x" || p["list"].([]any)[0] != "a" || p["list"].([]any)[1].(map[string]any)["k"] != "v" ||
		p["nested"].(map[string]any)["inner"].([]any)[0] != 1 || p["props"].(resource.Properties)["a"] != "b" {
		t.Errorf("mutating the clone changed the original: %#v", p)
	}
	if resource.Properties(nil).Clone() != nil {
		t.Error("Clone of nil is not nil")
	}
}

func TestPropertiesKeys(t *testing.T) {
	t.Parallel()
	got := resource.Properties{"b": 1, "a": 2, "c": 3}.Keys()
	if !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Errorf("Keys = %v", got)
	}
}
