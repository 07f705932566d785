package config

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sftkit/sft/policy"
	"github.com/sftkit/sft/resource"
)

// maxSocketPath is the longest unix socket path Linux accepts (sun_path
// holds 108 bytes including the terminating NUL).
const maxSocketPath = 107

// minTokenLen is the shortest accepted API token.
const minTokenLen = 16

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)

const nameRule = "want 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit"

// Load parses and validates a configuration: see Parse and Validate.
func Load(ctx context.Context, name string, data []byte, reg *resource.Registry, self string) (*Config, error) {
	cfg, pos, err := Parse(name, data)
	if err != nil {
		return nil, err
	}
	if err := cfg.Validate(ctx, name, pos, reg, self); err != nil {
		return nil, err
	}
	return cfg, nil
}

// Validate checks every field of c as `run` needs it: whatever would stop
// the node from starting is an error here first (bounds included, see the
// max tags on Config). Resource properties are checked by their type,
// looked up in reg (with "${self}" replaced by self first). name and pos
// (from Parse; may be nil) place the errors in the source. The error, if
// any, is an Errors. Checks that depend on this machine's state (a network
// namespace or directory that does not exist yet, a token file missing or
// readable by others) are errors here; see Check.
func (c *Config) Validate(ctx context.Context, name string, pos *Positions, reg *resource.Registry, self string) error {
	_, err := c.check(ctx, name, pos, reg, self, false)
	return err
}

// Check is Validate for the `validate` command: problems that depend on
// the state of this machine (see Validate) are returned as warnings, as is
// a configuration with no resource to run; everything else is an error.
// The error, if any, is an Errors.
func (c *Config) Check(ctx context.Context, name string, pos *Positions, reg *resource.Registry, self string) (warnings Errors, err error) {
	return c.check(ctx, name, pos, reg, self, true)
}

// Empty reports whether c has no resource to run (no group, or groups
// without resources).
func (c *Config) Empty() bool {
	for _, g := range c.Groups {
		if len(g.Resources) > 0 {
			return false
		}
	}
	return true
}

func (c *Config) check(ctx context.Context, name string, pos *Positions, reg *resource.Registry, self string, machineWarns bool) (Errors, error) {
	v := &validator{file: name, pos: pos, machineWarns: machineWarns}
	v.bounds("", reflect.ValueOf(c).Elem())
	if c.Empty() {
		v.warn("groups", nil, "no resources: this node would run nothing (run refuses without -allow-empty)")
	}
	v.node(c)
	v.log(c.Log)
	v.api(c.API)
	if c.Metrics.Listen != "" {
		v.hostPort("metrics.listen", c.Metrics.Listen, false)
	}
	v.alerts(c.Alerts)
	switch c.Plugins.Mode {
	case "", PluginModeProcess, PluginModeInProcess:
	default:
		v.add("plugins.mode", c.Plugins.Mode, "want %s or %s", PluginModeProcess, PluginModeInProcess)
	}
	v.externalPlugins(c.Plugins.External)
	v.nonNegative("shutdown_timeout", c.ShutdownTimeout)
	v.groups(ctx, c.Groups, reg, self)
	v.cluster(c)
	sortErrors(v.warns)
	if len(v.errs) == 0 {
		return v.warns, nil
	}
	sortErrors(v.errs)
	return v.warns, v.errs
}

// sortErrors sorts es in source order; errors without a position keep their
// place at the end.
func sortErrors(es Errors) {
	sort.SliceStable(es, func(i, j int) bool {
		a, b := es[i].Pos, es[j].Pos
		if a.Line == 0 || b.Line == 0 {
			return a.Line != 0 && b.Line == 0
		}
		return a.Line < b.Line || a.Line == b.Line && a.Column < b.Column
	})
}

type validator struct {
	file string
	pos  *Positions
	errs Errors
	// machineWarns: problems that depend on the machine's state are
	// warnings (Check), not errors (Validate).
	machineWarns bool
	warns        Errors
}

func (v *validator) add(path string, value any, format string, args ...any) {
	v.errs = append(v.errs, &Error{File: v.file, Pos: v.pos.Of(path), Path: path, Value: value, Msg: fmt.Sprintf(format, args...)})
}

func (v *validator) warn(path string, value any, format string, args ...any) {
	v.warns = append(v.warns, &Error{File: v.file, Pos: v.pos.Of(path), Path: path, Value: value, Msg: fmt.Sprintf(format, args...)})
}

// machine reports a problem that depends on this machine's state: a
// warning for Check, an error for Validate.
func (v *validator) machine(path string, value any, format string, args ...any) {
	if v.machineWarns {
		v.warn(path, value, format+" (an error at run)", args...)
		return
	}
	v.add(path, value, format, args...)
}

// bounds checks every field with a max tag, walking structs, pointers and
// slices; path is v's path.
func (v *validator) bounds(path string, val reflect.Value) {
	switch val.Kind() {
	case reflect.Pointer:
		if !val.IsNil() {
			v.bounds(path, val.Elem())
		}
	case reflect.Slice:
		if val.Type().Elem().Kind() == reflect.Struct {
			for i := range val.Len() {
				v.bounds(fmt.Sprintf("%s[%d]", path, i), val.Index(i))
			}
		}
	case reflect.Struct:
		t := val.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			fp := join(path, name)
			fv := val.Field(i)
			if limit := f.Tag.Get("max"); limit != "" {
				v.max(fp, fv, limit)
				continue
			}
			v.bounds(fp, fv)
		}
	}
}

// max checks one bounded field (Duration, *Duration or int).
func (v *validator) max(path string, fv reflect.Value, limit string) {
	if fv.Kind() == reflect.Pointer {
		if fv.IsNil() {
			return
		}
		fv = fv.Elem()
	}
	if fv.Type() == durationType {
		lim, err := time.ParseDuration(limit)
		if err != nil {
			panic(fmt.Sprintf("config: bad max tag %q on %s", limit, path))
		}
		if d := Duration(fv.Int()); d.D() > lim {
			v.add(path, d.String(), "too large (max %s)", limit)
		}
		return
	}
	lim, err := strconv.ParseInt(limit, 10, 64)
	if err != nil {
		panic(fmt.Sprintf("config: bad max tag %q on %s", limit, path))
	}
	if fv.Int() > lim {
		v.add(path, fv.Int(), "too large (max %s)", limit)
	}
}

func (v *validator) nonNegative(path string, d Duration) {
	if d < 0 {
		v.add(path, d.String(), "must not be negative")
	}
}

func (v *validator) node(c *Config) {
	if c.Node.Name != "" && !nameRE.MatchString(c.Node.Name) {
		v.add("node.name", c.Node.Name, nameRule)
	}
}

func (v *validator) log(l Log) {
	switch l.Level {
	case "", "debug", "info", "warn", "error":
	default:
		v.add("log.level", l.Level, "want debug, info, warn or error")
	}
	switch l.Format {
	case "", "json", "text":
	default:
		v.add("log.format", l.Format, "want json or text")
	}
	if l.File != "" {
		if !filepath.IsAbs(l.File) {
			v.add("log.file", l.File, "must be an absolute path")
		} else {
			v.dirExists("log.file", l.File)
		}
	}
}

func (v *validator) api(a API) {
	if a.Socket != "" {
		switch {
		case !filepath.IsAbs(a.Socket):
			v.add("api.socket", a.Socket, "must be an absolute path")
		case len(a.Socket) > maxSocketPath:
			v.add("api.socket", a.Socket, "too long for a unix socket (%d bytes, at most %d)", len(a.Socket), maxSocketPath)
		default:
			v.dirExists("api.socket", a.Socket)
		}
	}
	if a.TCP != "" {
		v.hostPort("api.tcp", a.TCP, true)
		if a.Token == "" && a.TokenFile == "" {
			v.add("api.tcp", a.TCP, "needs api.token or api.token_file: the TCP API requires a bearer token")
		}
	}
	if a.Token != "" && a.TokenFile != "" {
		v.add("api.token_file", a.TokenFile, "set api.token or api.token_file, not both")
	}
	if a.Token != "" && len(a.Token) < minTokenLen {
		// Never echo the token itself.
		v.add("api.token", nil, "too short (%d characters, at least %d)", len(a.Token), minTokenLen)
	}
	if a.TokenFile != "" {
		if !filepath.IsAbs(a.TokenFile) {
			v.add("api.token_file", a.TokenFile, "must be an absolute path")
		} else if a.Token == "" {
			v.tokenFile(a.TokenFile)
		}
	}
	v.nonNegative("api.operation_timeout", a.OperationTimeout)
	if a.EventHistory < 0 {
		v.add("api.event_history", a.EventHistory, "must not be negative")
	}
}

// dirExists checks that the directory of file exists (run creates the
// file, not its directory): a machine-state check.
func (v *validator) dirExists(path, file string) {
	dir := filepath.Dir(file)
	fi, err := os.Stat(dir)
	switch {
	case err != nil:
		v.machine(path, file, "directory %s: %v", dir, unwrapPath(err))
	case !fi.IsDir():
		v.machine(path, file, "%s is not a directory", dir)
	}
}

// tokenFile checks what run checks of the token file: it exists, holds a
// long enough token, and is not readable by group or others (like ssh with
// a private key, run refuses it: chmod 600).
func (v *validator) tokenFile(path string) {
	fi, err := os.Stat(path)
	if err != nil {
		v.machine("api.token_file", path, "%v", unwrapPath(err))
		return
	}
	if fi.Mode().Perm()&0o077 != 0 {
		v.machine("api.token_file", path, "readable or writable by others (mode %04o): chmod 600 it", fi.Mode().Perm())
		return
	}
	b, err := os.ReadFile(path)
	switch tok := strings.TrimSpace(string(b)); {
	case err != nil:
		v.machine("api.token_file", path, "%v", unwrapPath(err))
	case len(tok) < minTokenLen:
		v.machine("api.token_file", path, "token too short (%d characters, at least %d)", len(tok), minTokenLen)
	}
}

// unwrapPath drops the *PathError's repetition of the path.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// hostPort checks a listen address; loopback requires a loopback IP.
func (v *validator) hostPort(path, addr string, loopback bool) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		v.add(path, addr, "want host:port")
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		v.add(path, addr, "bad port %q (want 1-65535)", port)
		return
	}
	if loopback {
		ip, err := netip.ParseAddr(host)
		if err != nil || !ip.IsLoopback() {
			v.add(path, addr, "must be a loopback address (127.0.0.1 or ::1): the API is local")
		}
		return
	}
	if host != "" && host != "localhost" {
		if _, err := netip.ParseAddr(host); err != nil {
			v.add(path, addr, "want an IP address or localhost as host")
		}
	}
}

func (v *validator) alerts(a Alerts) {
	if a.Webhook != "" {
		u, err := url.Parse(a.Webhook)
		switch {
		case err != nil:
			v.add("alerts.webhook", a.Webhook, "not a URL")
		case u.Scheme != "http" && u.Scheme != "https":
			v.add("alerts.webhook", a.Webhook, "scheme must be http or https")
		case u.Host == "":
			v.add("alerts.webhook", a.Webhook, "no host")
		}
	}
	if a.Command != nil {
		if len(a.Command) == 0 || a.Command[0] == "" {
			v.add("alerts.command", a.Command, "want a program and its arguments")
		} else if !filepath.IsAbs(a.Command[0]) && strings.Contains(a.Command[0], "/") {
			v.add("alerts.command[0]", a.Command[0], "must be absolute or a name looked up in PATH")
		}
	}
	seen := map[string]bool{}
	for i, k := range a.On {
		p := fmt.Sprintf("alerts.on[%d]", i)
		switch k {
		case AlertFailed, AlertFailover, AlertRecovery:
		default:
			v.add(p, k, "want %s, %s or %s", AlertFailed, AlertFailover, AlertRecovery)
			continue
		}
		if seen[k] {
			v.add(p, k, "listed twice")
		}
		seen[k] = true
	}
	v.nonNegative("alerts.timeout", a.Timeout)
	v.nonNegative("alerts.backoff", a.Backoff)
	v.nonNegative("alerts.max_backoff", a.MaxBackoff)
	if a.Retries < -1 {
		v.add("alerts.retries", a.Retries, "must be -1 (no retry) or more")
	}
	if a.Queue < 0 {
		v.add("alerts.queue", a.Queue, "must not be negative")
	}
}

// name checks the name of the i-th element of list (path names its field):
// required, nameRule, and unique among the names seen so far (seen maps a
// name to the index that had it first; what says what is named in errors).
func (v *validator) name(path, name, what, list string, i int, seen map[string]int) {
	switch {
	case name == "":
		v.add(path, nil, "required")
	case !nameRE.MatchString(name):
		v.add(path, name, nameRule)
	default:
		if prev, dup := seen[name]; dup {
			v.add(path, name, "duplicate %s name (also %s[%d])", what, list, prev)
		} else {
			seen[name] = i
		}
	}
}

func (v *validator) groups(ctx context.Context, groups []Group, reg *resource.Registry, self string) {
	seen := map[string]int{}
	for gi, g := range groups {
		gp := fmt.Sprintf("groups[%d]", gi)
		v.name(gp+".name", g.Name, "group", "groups", gi, seen)
		v.policyErrs(gp+".failover", g.Failover.PolicyFailover().Validate())
		if len(g.Resources) == 0 {
			v.add(gp+".resources", nil, "a group needs at least one resource")
			continue
		}
		v.resources(ctx, gp, g.Resources, reg, self)
	}
}

func (v *validator) resources(ctx context.Context, gp string, rs []Resource, reg *resource.Registry, self string) {
	index := map[string]int{}
	for ri, r := range rs {
		rp := fmt.Sprintf("%s.resources[%d]", gp, ri)
		switch {
		case r.Name == "":
			v.add(rp+".name", nil, "required")
		case !nameRE.MatchString(r.Name):
			v.add(rp+".name", r.Name, nameRule)
		default:
			if prev, dup := index[r.Name]; dup {
				v.add(rp+".name", r.Name, "duplicate resource name in the group (also resources[%d])", prev)
			} else {
				index[r.Name] = ri
			}
		}
		switch {
		case r.Type == "":
			v.add(rp+".type", nil, "required (known: %s)", strings.Join(reg.Names(), ", "))
		default:
			if _, ok := reg.Lookup(r.Type); !ok {
				v.add(rp+".type", r.Type, "unknown resource type (known: %s)", strings.Join(reg.Names(), ", "))
			} else {
				v.properties(rp+".properties", reg.Validate(ctx, r.Type, resource.Properties(ExpandAll(r.Properties, self, "validate"))))
			}
		}
		if r.Restart.Action != "" {
			if _, err := policy.ParseRestartAction(r.Restart.Action); err != nil {
				v.add(rp+".restart.action", r.Restart.Action, "want no-restart, restart-no-failover or restart-then-failover")
			}
		}
		if r.Restart.Delay != nil && *r.Restart.Delay < 0 {
			v.add(rp+".restart.delay", r.Restart.Delay.String(), "must not be negative (0 restarts at once)")
		}
		pr := r.Restart.PolicyRestart()
		pr.Action = policy.RestartDefault // checked above
		v.policyErrs(rp+".restart", pr.Validate())
		v.policyErrs(rp+".timing", policy.ValidateTiming(r.Timing.PolicyTiming()))
	}
	// Dependencies: names exist, no self or duplicate, no cycle.
	for ri, r := range rs {
		seen := map[string]bool{}
		for di, dep := range r.DependsOn {
			dp := fmt.Sprintf("%s.resources[%d].depends_on[%d]", gp, ri, di)
			switch _, ok := index[dep]; {
			case dep == r.Name:
				v.add(dp, dep, "a resource cannot depend on itself")
			case !ok:
				v.add(dp, dep, "no such resource in the group")
			case seen[dep]:
				v.add(dp, dep, "listed twice")
			}
			seen[dep] = true
		}
	}
	if cyc := findCycle(rs, index); cyc != nil {
		v.add(fmt.Sprintf("%s.resources[%d].depends_on", gp, index[cyc[0]]), nil, "dependency cycle: %s", strings.Join(cyc, " -> "))
	}
}

// findCycle returns a dependency cycle as names (first repeated at the
// end), or nil.
func findCycle(rs []Resource, index map[string]int) []string {
	const (
		white = iota
		grey
		black
	)
	color := make([]int, len(rs))
	var stack []string
	var cycle []string
	var visit func(i int) bool
	visit = func(i int) bool {
		color[i] = grey
		stack = append(stack, rs[i].Name)
		for _, dep := range rs[i].DependsOn {
			j, ok := index[dep]
			if !ok || j == i {
				continue
			}
			switch color[j] {
			case grey:
				start := slices.Index(stack, rs[j].Name)
				cycle = append(slices.Clone(stack[start:]), rs[j].Name)
				return true
			case white:
				if visit(j) {
					return true
				}
			}
		}
		stack = stack[:len(stack)-1]
		color[i] = black
		return false
	}
	for i := range rs {
		if _, ok := index[rs[i].Name]; !ok || index[rs[i].Name] != i {
			continue
		}
		if color[i] == white && visit(i) {
			return cycle
		}
	}
	return nil
}

// flatten lists the leaves of a joined error.
func flatten(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}

// policyErrs adds the errors of a policy Validate under prefix.
func (v *validator) policyErrs(prefix string, err error) {
	for _, e := range flatten(err) {
		var re *resource.Error
		if errors.As(e, &re) && re.Field != "" {
			v.add(prefix+"."+re.Field, valueOf(re.Value), "%v", re.Err)
			continue
		}
		v.add(prefix, nil, "%v", e)
	}
}

// machineProperties are the properties (of any type) that name a path on
// this machine; an error about one whose path does not exist is a problem
// of the machine's state (see Check): a network namespace the demo script
// has not created yet, a working directory made at deployment.
var machineProperties = map[string]bool{"netns": true, "dir": true}

// properties adds a type's validation errors under prefix.
func (v *validator) properties(prefix string, err error) {
	for _, e := range flatten(err) {
		var re *resource.Error
		if errors.As(e, &re) && machineProperties[re.Field] {
			if p, ok := re.Value.(string); ok && filepath.IsAbs(p) {
				if _, serr := os.Stat(p); errors.Is(serr, fs.ErrNotExist) {
					v.machine(prefix+"."+re.Field, p, "%v", re.Err)
					continue
				}
			}
		}
		v.policyErrs(prefix, e)
	}
}

// valueOf prints durations as durations.
func valueOf(x any) any {
	if d, ok := x.(interface{ String() string }); ok {
		if _, isErr := x.(error); !isErr {
			return d.String()
		}
	}
	return x
}
