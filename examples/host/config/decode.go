package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// maxNodes bounds the YAML nodes one decode visits (aliases included), so a
// small document of nested aliases cannot make it run forever.
const maxNodes = 100_000

// Pos is a position in the YAML source (1-based).
type Pos struct{ Line, Column int }

// Error is one problem in a configuration: where (Pos, Path), what value,
// and why.
type Error struct {
	// File is the configuration's name, if known.
	File string
	// Pos is where the problem is; zero if unknown.
	Pos Pos
	// Path names the field: groups[1].resources[0].properties.address.
	Path string
	// Value is the bad value, if any.
	Value any
	// Msg says what is wrong.
	Msg string
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteByte(':')
	}
	if e.Pos.Line > 0 {
		fmt.Fprintf(&b, "%d:%d:", e.Pos.Line, e.Pos.Column)
	}
	if b.Len() > 0 {
		b.WriteByte(' ')
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		if e.Value != nil {
			b.WriteByte(' ')
			b.WriteString(quote(e.Value))
		}
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

func quote(v any) string {
	switch x := v.(type) {
	case string:
		return strconv.Quote(x)
	case []string:
		return fmt.Sprintf("%q", x)
	}
	return fmt.Sprintf("%v", v)
}

// Errors is every problem found, in source order.
type Errors []*Error

func (es Errors) Error() string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// Parse decodes a YAML configuration strictly: unknown keys, duplicate
// keys, wrong kinds and bad durations are errors with their line, column
// and path. It does not validate (see Validate) and applies no defaults.
// name is used in error messages (a file name). On error the result is nil
// and the error is an Errors.
func Parse(name string, data []byte) (*Config, *Positions, error) {
	if e := tabIndent(name, data); e != nil {
		return nil, nil, Errors{e}
	}
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil && !errors.Is(err, io.EOF) {
		return nil, nil, Errors{syntaxError(name, data, err)}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, nil, Errors{syntaxError(name, data, err)}
		}
		return nil, nil, Errors{{File: name, Pos: Pos{extra.Line, extra.Column}, Msg: "want one YAML document, found a second one"}}
	}
	d := &decoder{file: name, pos: &Positions{m: map[string]Pos{}}}
	var cfg Config
	switch {
	case root.Kind == 0: // empty document
	case root.Kind == yaml.DocumentNode && len(root.Content) == 1:
		d.decode(root.Content[0], reflect.ValueOf(&cfg).Elem(), "")
	default:
		d.errorf(&root, "", nil, "want one YAML document")
	}
	if len(d.errs) > 0 {
		return nil, nil, d.errs
	}
	return &cfg, d.pos, nil
}

// tabIndent finds a tab in a line's indentation, which YAML forbids (the
// YAML parser reports it at the line before, without a column).
func tabIndent(name string, data []byte) *Error {
	for i, line := range strings.Split(string(data), "\n") {
		indent := len(line) - len(strings.TrimLeft(line, " \t"))
		rest := strings.TrimSpace(line)
		if rest == "" || strings.HasPrefix(rest, "#") {
			continue
		}
		if j := strings.IndexByte(line[:indent], '\t'); j >= 0 {
			return &Error{File: name, Pos: Pos{i + 1, j + 1}, Msg: "tab in indentation: YAML indents with spaces"}
		}
	}
	return nil
}

var (
	yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): `)
	// yamlParserRE matches the messages of the YAML parser (as opposed to
	// its scanner): go.yaml.in/yaml/v3 prints their line 0-based.
	yamlParserRE = regexp.MustCompile(`^(did not find expected|found undefined tag handle|found duplicate|found incompatible)`)
)

// syntaxError turns a YAML parser error into an Error with a position: the
// parser names the line (the start of the construct it could not finish);
// the column is that of the line's first character that is not blank (the
// parser does not say more).
func syntaxError(name string, data []byte, err error) *Error {
	msg := err.Error()
	m := yamlLineRE.FindStringSubmatch(msg)
	if m == nil {
		return &Error{File: name, Msg: strings.TrimPrefix(msg, "yaml: ")}
	}
	msg = msg[len(m[0]):]
	line, _ := strconv.Atoi(m[1])
	if yamlParserRE.MatchString(msg) {
		line++
	}
	lines := strings.Split(string(data), "\n")
	line = max(1, min(line, len(lines)))
	l := lines[line-1]
	col := len(l) - len(strings.TrimLeft(l, " \t")) + 1
	return &Error{File: name, Pos: Pos{line, col}, Msg: "YAML syntax: " + msg}
}

// Positions maps field paths to where they are in the source.
type Positions struct{ m map[string]Pos }

// Of returns the position of path, or of its nearest ancestor that has one.
func (p *Positions) Of(path string) Pos {
	if p == nil {
		return Pos{}
	}
	for {
		if pos, ok := p.m[path]; ok {
			return pos
		}
		i := strings.LastIndexAny(path, ".[")
		if i <= 0 {
			return p.m[""]
		}
		path = path[:i]
	}
}

type decoder struct {
	file  string
	pos   *Positions
	errs  Errors
	nodes int
	// limit is the max tag of the field being decoded, for "too large".
	limit string
}

func (d *decoder) errorf(n *yaml.Node, path string, value any, format string, args ...any) {
	d.errs = append(d.errs, &Error{File: d.file, Pos: Pos{n.Line, n.Column}, Path: path, Value: value, Msg: fmt.Sprintf(format, args...)})
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

var (
	durationType = reflect.TypeFor[Duration]()
	anyMapType   = reflect.TypeFor[map[string]any]()
)

// resolve follows aliases and counts nodes; nil means stop.
func (d *decoder) resolve(n *yaml.Node, path string) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	d.nodes++
	if d.nodes == maxNodes {
		d.errorf(n, path, nil, "document too large (more than %d nodes, aliases expanded)", maxNodes)
	}
	if d.nodes >= maxNodes || n == nil {
		return nil
	}
	return n
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.ShortTag() == "!!null" {
			return "null"
		}
		return "a scalar"
	}
	return "something else"
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" }

func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if n = d.resolve(n, path); n == nil {
		return
	}
	if _, ok := d.pos.m[path]; !ok {
		d.pos.m[path] = Pos{n.Line, n.Column}
	}
	if isNull(n) {
		return // null leaves the zero value: the default
	}
	switch {
	case v.Type() == durationType:
		d.duration(n, v, path)
		return
	case v.Type() == anyMapType:
		if n.Kind != yaml.MappingNode {
			d.errorf(n, path, nil, "want a mapping of properties, got %s", kindName(n))
			return
		}
		m, _ := d.anyValue(n, path).(map[string]any)
		v.Set(reflect.ValueOf(m))
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.structure(n, v, path)
	case reflect.Pointer:
		e := reflect.New(v.Type().Elem())
		d.decode(n, e.Elem(), path)
		v.Set(e)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.errorf(n, path, nil, "want a list, got %s", kindName(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, c := range n.Content {
			d.decode(c, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(s)
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.errorf(n, path, nil, "want a string, got %s", kindName(n))
			return
		}
		v.SetString(n.Value)
	case reflect.Int:
		var i int
		// An integer too large for int64 is tagged !!float by the parser.
		huge := n.Kind == yaml.ScalarNode && n.ShortTag() == "!!float" && intRE.MatchString(n.Value)
		if !huge && (n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int") {
			d.errorf(n, path, scalarValue(n), "want an integer")
			return
		}
		if huge || n.Decode(&i) != nil {
			d.errorf(n, path, n.Value, "too large (max %s)", d.max(strconv.Itoa(math.MaxInt)))
			return
		}
		v.SetInt(int64(i))
	case reflect.Float64:
		var f float64
		tag := n.ShortTag()
		if n.Kind != yaml.ScalarNode || (tag != "!!float" && tag != "!!int") || n.Decode(&f) != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			d.errorf(n, path, scalarValue(n), "want a number")
			return
		}
		v.SetFloat(f)
	case reflect.Bool:
		var b bool
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" || n.Decode(&b) != nil {
			d.errorf(n, path, scalarValue(n), "want true or false")
			return
		}
		v.SetBool(b)
	default:
		panic(fmt.Sprintf("config: no decoder for %s", v.Type()))
	}
}

// scalarValue is n's value for an error message (nil for non-scalars).
func scalarValue(n *yaml.Node) any {
	if n.Kind == yaml.ScalarNode {
		return n.Value
	}
	return nil
}

func (d *decoder) duration(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
		d.errorf(n, path, scalarValue(n), `want a duration like "500ms", "2s" or "1m30s"`)
		return
	}
	td, err := time.ParseDuration(n.Value)
	if err != nil {
		if durationRE.MatchString(n.Value) { // well formed: only too large
			d.errorf(n, path, n.Value, "too large (max %s)", d.max(time.Duration(math.MaxInt64).String()))
			return
		}
		d.errorf(n, path, n.Value, `not a duration (want e.g. "500ms", "2s" or "1m30s")`)
		return
	}
	v.SetInt(int64(td))
}

var intRE = regexp.MustCompile(`^[-+]?[0-9][0-9_]*$`)

// durationRE matches what time.ParseDuration accepts, whatever the size.
var durationRE = regexp.MustCompile(`^[-+]?(0|(\d+(\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h))+$`)

// max is the bound to name in a "too large" message: the field's max tag,
// else what the Go type holds.
func (d *decoder) max(typeMax string) string {
	if d.limit != "" {
		return d.limit
	}
	return typeMax
}

// fieldsOf lists the YAML names of a struct type's fields with their index.
func fieldsOf(t reflect.Type) (names []string, index map[string]int) {
	index = make(map[string]int)
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		names = append(names, name)
		index[name] = i
	}
	slices.Sort(names)
	return names, index
}

func (d *decoder) structure(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, nil, "want a mapping, got %s", kindName(n))
		return
	}
	names, index := fieldsOf(v.Type())
	seen := make(map[string]bool)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.errorf(k, path, nil, "a key must be a string, got %s", kindName(k))
			continue
		}
		fp := join(path, k.Value)
		fi, ok := index[k.Value]
		if !ok {
			d.errorf(k, fp, nil, "unknown field (known: %s)", strings.Join(names, ", "))
			continue
		}
		if seen[k.Value] {
			d.errorf(k, fp, nil, "duplicate key")
			continue
		}
		seen[k.Value] = true
		d.pos.m[fp] = Pos{k.Line, k.Column}
		d.limit = v.Type().Field(fi).Tag.Get("max")
		d.decode(val, v.Field(fi), fp)
		d.limit = ""
	}
}

// anyValue turns a node into a JSON-compatible value: string, int64,
// float64, bool, nil, []any, map[string]any. Timestamps stay strings.
func (d *decoder) anyValue(n *yaml.Node, path string) any {
	if n = d.resolve(n, path); n == nil {
		return nil
	}
	if _, ok := d.pos.m[path]; !ok {
		d.pos.m[path] = Pos{n.Line, n.Column}
	}
	switch n.Kind {
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode || (k.ShortTag() != "!!str" && k.ShortTag() != "!!int" && k.ShortTag() != "!!bool") {
				d.errorf(k, path, nil, "a property name must be a string, got %s", kindName(k))
				continue
			}
			fp := join(path, k.Value)
			if _, dup := m[k.Value]; dup {
				d.errorf(k, fp, nil, "duplicate key")
				continue
			}
			d.pos.m[fp] = Pos{k.Line, k.Column}
			m[k.Value] = d.anyValue(val, fp)
		}
		return m
	case yaml.SequenceNode:
		s := make([]any, len(n.Content))
		for i, c := range n.Content {
			s[i] = d.anyValue(c, fmt.Sprintf("%s[%d]", path, i))
		}
		return s
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return nil
		case "!!bool":
			var b bool
			if n.Decode(&b) == nil {
				return b
			}
		case "!!int":
			var i int64
			if n.Decode(&i) == nil {
				return i
			}
			var f float64
			if n.Decode(&f) == nil {
				return f
			}
		case "!!float":
			var f float64
			if n.Decode(&f) == nil {
				if math.IsNaN(f) || math.IsInf(f, 0) {
					d.errorf(n, path, n.Value, "not a finite number")
					return nil
				}
				return f
			}
		case "!!str", "!!timestamp":
			return n.Value
		}
		d.errorf(n, path, n.Value, "unsupported value (tag %s)", n.ShortTag())
		return nil
	}
	d.errorf(n, path, nil, "unsupported YAML node")
	return nil
}
