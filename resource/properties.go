package resource

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"
)

// Properties configure a resource instance: the "private properties" of a
// cluster resource. Values are JSON-compatible (string, float64 or other
// numbers, bool, nil, []any, map[string]any) so that they cross a plugin
// boundary unchanged; a type usually decodes them into a struct with Decode.
type Properties map[string]any

// Clone returns a deep copy: nested maps and slices are copied, other
// values (numbers, strings, ...) keep their type.
func (p Properties) Clone() Properties {
	if p == nil {
		return nil
	}
	out := make(Properties, len(p))
	for k, v := range p {
		out[k] = cloneValue(v)
	}
	return out
}

func cloneValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		if x == nil {
			return x
		}
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = cloneValue(e)
		}
		return m
	case Properties:
		return x.Clone()
	case []any:
		if x == nil {
			return x
		}
		s := make([]any, len(x))
		for i, e := range x {
			s[i] = cloneValue(e)
		}
		return s
	}
	return v
}

// Keys returns the property names, sorted.
func (p Properties) Keys() []string { return slices.Sorted(maps.Keys(p)) }

// Decode copies the properties into the struct dst points to, using its JSON
// tags. An unknown property or a value of the wrong kind is a configuration
// error naming the property. Durations in dst can use the Duration type of
// this package to accept "1.5s" as well as a number of seconds.
func (p Properties) Decode(dst any) error {
	b, err := json.Marshal(p)
	if err != nil {
		return Configuration(fmt.Errorf("properties: %w", err))
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) {
			field := ute.Field
			return ConfigError(field, p.lookup(field), "want %s, got %s", ute.Type, ute.Value)
		}
		if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			name = strings.Trim(name, `"`)
			return ConfigError(name, nil, "unknown property (known: %s)", strings.Join(jsonFields(dst), ", "))
		}
		if name, ok := p.culprit(dst); ok {
			// A value the field's own decoder rejected (a bad
			// Duration): name the property as for a wrong kind.
			return ConfigError(name, p[name], "%w", err)
		}
		return Configuration(fmt.Errorf("properties: %w", err))
	}
	return nil
}

// culprit finds the first property (in sorted order) that fails to decode
// on its own into a fresh value of dst's type.
func (p Properties) culprit(dst any) (string, bool) {
	t := reflect.TypeOf(dst)
	if t == nil || t.Kind() != reflect.Pointer {
		return "", false
	}
	for _, k := range p.Keys() {
		b, err := json.Marshal(map[string]any{k: p[k]})
		if err != nil {
			return k, true
		}
		if json.Unmarshal(b, reflect.New(t.Elem()).Interface()) != nil {
			return k, true
		}
	}
	return "", false
}

// lookup returns the value at a dotted path ("sub.x") through nested maps,
// or nil.
func (p Properties) lookup(path string) any {
	var v any = map[string]any(p)
	for name := range strings.SplitSeq(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			if pm, isProps := v.(Properties); isProps {
				m, ok = pm, true
			}
		}
		if !ok {
			return nil
		}
		v = m[name]
	}
	return v
}

// jsonFields lists the JSON names of the fields of the struct dst points to.
func jsonFields(dst any) []string {
	t := reflect.TypeOf(dst)
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		return nil
	}
	var names []string
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// Duration is a time.Duration that decodes from a Go duration string
// ("1.5s", "100ms") or a number of seconds, and encodes as a string.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// MarshalJSON encodes d as a duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON accepts "1.5s" or 1.5 (seconds).
func (d *Duration) UnmarshalJSON(b []byte) error {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	switch x := v.(type) {
	case nil:
		// null leaves d unchanged, like a null for any other field.
		return nil
	case float64:
		*d = Duration(x * float64(time.Second))
		return nil
	case string:
		td, err := time.ParseDuration(x)
		if err != nil {
			return Configuration(fmt.Errorf("bad duration %q (want e.g. \"500ms\" or \"2s\")", x))
		}
		*d = Duration(td)
		return nil
	}
	return Configuration(fmt.Errorf("bad duration %s (want e.g. \"500ms\" or \"2s\")", b))
}
