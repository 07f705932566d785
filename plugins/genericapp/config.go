package genericapp

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/user"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sftkit/sft/internal/cgroup"
	"github.com/sftkit/sft/internal/health"
	"github.com/sftkit/sft/internal/proc"
	"github.com/sftkit/sft/resource"
)

// Defaults of the properties.
const (
	DefaultStopSignal = "SIGTERM"
	DefaultStopGrace  = 10 * time.Second
	DefaultOutput     = OutputLog
	// DefaultStabilize is how long Online watches a program without a
	// readiness check before it reports it online: a program that exits
	// within it (bad arguments, port in use) makes Online fail.
	DefaultStabilize = 200 * time.Millisecond
)

// Output destinations besides a file path.
const (
	// OutputLog sends each line to the instance's logger (level Info,
	// attributes stream=stdout or stderr and pid; CR LF ends a line like
	// LF; a line over 64 KiB is logged in pieces; a last line without a
	// newline when the output ends). The pipe is read when data is there,
	// from one goroutine for every output of the process: a logger that
	// blocks holds up the other programs' output, never an exit report.
	OutputLog = "log"
	// OutputDiscard connects the stream to /dev/null.
	OutputDiscard = "discard"
)

// Config is the property set of a genericapp instance, as decoded from
// resource.Properties (the JSON names are the property names). See the
// package documentation for the table of defaults.
type Config struct {
	// Argv is the program and its arguments; no shell is involved.
	// Argv[0] is looked up in PATH (the env property's PATH if set, else
	// the host's) when it has no slash; a relative path with a slash is
	// relative to Dir. Required.
	Argv []string `json:"argv"`
	// Env is added to the environment (overriding inherited variables).
	Env map[string]string `json:"env,omitempty"`
	// CleanEnv starts from an empty environment instead of the host
	// process's environment. Default false.
	CleanEnv bool `json:"clean_env,omitempty"`
	// Dir is the absolute working directory. Default: the host's.
	Dir string `json:"dir,omitempty"`
	// User is a user name or numeric uid to run as (needs root). Its
	// primary group and supplementary groups apply unless Group is set.
	User IDOrName `json:"user,omitempty"`
	// Group is a group name or numeric gid to run as (needs root).
	Group IDOrName `json:"group,omitempty"`
	// Stdout and Stderr are "log" (default: lines go to the logger),
	// "discard", or an absolute file path (appended to, created 0644).
	Stdout string `json:"stdout,omitempty"`
	Stderr string `json:"stderr,omitempty"`
	// StopSignal is sent to the process group by Offline: "SIGTERM"
	// (default), "TERM", "SIGINT", "15", ...
	StopSignal string `json:"stop_signal,omitempty"`
	// StopGrace is how long Offline waits after StopSignal before it sends
	// SIGKILL to the group. Default 10 s; 0 kills at once.
	StopGrace *resource.Duration `json:"stop_grace,omitempty"`
	// Readiness, if set, gates Online: Online returns only once it passes.
	Readiness *health.Config `json:"readiness,omitempty"`
	// Health, if set, is IsAlive's check; unset, IsAlive uses Readiness.
	Health *health.Config `json:"health,omitempty"`
	// Stabilize is how long Online waits, without a readiness check, for
	// the program to stay up. Default 200 ms; 0 returns at once.
	Stabilize *resource.Duration `json:"stabilize,omitempty"`
	// MemoryLimit caps the memory of the whole process tree: bytes as a
	// number, or a string with a unit ("512MiB", "1G", "64k"). Needs
	// cgroups.
	MemoryLimit any `json:"memory_limit,omitempty"`
	// CPULimit caps the CPU time of the tree, in CPUs (0.5 = half a CPU).
	// Needs cgroups.
	CPULimit *float64 `json:"cpu_limit,omitempty"`
	// TasksLimit caps the number of processes and threads of the tree.
	// Needs cgroups.
	TasksLimit *int64 `json:"tasks_limit,omitempty"`
}

// IDOrName is a user or group given by name ("www-data") or by numeric id
// (33 or "33").
type IDOrName string

// UnmarshalJSON accepts a string or a non-negative integer.
func (v *IDOrName) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*v = IDOrName(s)
		return nil
	}
	var n float64
	if err := json.Unmarshal(b, &n); err != nil || n < 0 || n != float64(uint32(n)) {
		// An UnmarshalTypeError gets the property name filled in by the
		// decoder, so the configuration error names the field.
		return &json.UnmarshalTypeError{Value: string(b), Type: reflect.TypeFor[IDOrName]()}
	}
	*v = IDOrName(strconv.FormatUint(uint64(n), 10))
	return nil
}

// spec is a validated Config, resolved for starting.
type spec struct {
	path       string // resolved executable
	argv       []string
	env        []string
	dir        string
	cred       *syscall.Credential
	stdout     string
	stderr     string
	stopSignal syscall.Signal
	stopGrace  time.Duration
	ready      *health.Check
	health     *health.Check
	stabilize  time.Duration
	limits     cgroup.Limits
}

// decode turns properties into a Config, classifying errors.
func decode(props resource.Properties) (Config, error) {
	var c Config
	if err := props.Decode(&c); err != nil {
		return Config{}, err
	}
	return c, nil
}

// resolve validates c and resolves it. It has no side effects: it only
// stats files and looks users and groups up.
func (c Config) resolve() (*spec, error) {
	s := &spec{}
	if len(c.Argv) == 0 {
		return nil, resource.ConfigError("argv", nil, "required: the program and its arguments")
	}
	for i, a := range c.Argv {
		if strings.IndexByte(a, 0) >= 0 {
			return nil, resource.ConfigError("argv", a, "argument %d contains a NUL byte", i)
		}
	}
	if c.Dir != "" {
		if !filepath.IsAbs(c.Dir) {
			return nil, resource.ConfigError("dir", c.Dir, "must be an absolute path")
		}
		fi, err := os.Stat(c.Dir)
		if err != nil {
			return nil, resource.ConfigError("dir", c.Dir, "%v", unwrapPath(err))
		}
		if !fi.IsDir() {
			return nil, resource.ConfigError("dir", c.Dir, "not a directory")
		}
		s.dir = c.Dir
	}

	// Environment.
	for _, k := range slices.Sorted(maps.Keys(c.Env)) {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			return nil, resource.ConfigError("env", k, "bad variable name")
		}
		if strings.IndexByte(c.Env[k], 0) >= 0 {
			return nil, resource.ConfigError("env."+k, c.Env[k], "value contains a NUL byte")
		}
	}
	if !c.CleanEnv {
		s.env = inheritedEnv()
	}
	s.env = mergeEnv(s.env, c.Env)

	// Executable.
	pathEnv, ok := c.Env["PATH"]
	if !ok {
		pathEnv = os.Getenv("PATH")
	}
	p, err := lookPath(c.Argv[0], s.dir, pathEnv)
	if err != nil {
		return nil, resource.ConfigError("argv", c.Argv[0], "%v", err)
	}
	s.path = p
	s.argv = slices.Clone(c.Argv)

	// Credentials.
	cred, err := credential(c.User, c.Group)
	if err != nil {
		return nil, err
	}
	s.cred = cred

	// Output.
	for _, o := range []struct {
		field string
		val   string
		dst   *string
	}{{"stdout", c.Stdout, &s.stdout}, {"stderr", c.Stderr, &s.stderr}} {
		v, err := checkOutput(o.field, o.val)
		if err != nil {
			return nil, err
		}
		*o.dst = v
	}

	// Stopping.
	sig := c.StopSignal
	if sig == "" {
		sig = DefaultStopSignal
	}
	s.stopSignal, err = proc.ParseSignal(sig)
	if err != nil {
		return nil, resource.ConfigError("stop_signal", c.StopSignal, "%v", err)
	}
	s.stopGrace = DefaultStopGrace
	if c.StopGrace != nil {
		if *c.StopGrace < 0 {
			return nil, resource.ConfigError("stop_grace", c.StopGrace.D().String(), "must not be negative")
		}
		s.stopGrace = c.StopGrace.D()
	}

	// Checks.
	if c.Readiness != nil {
		if s.ready, err = health.New("readiness", *c.Readiness); err != nil {
			return nil, err
		}
	}
	s.stabilize = DefaultStabilize
	if c.Stabilize != nil {
		if *c.Stabilize < 0 {
			return nil, resource.ConfigError("stabilize", c.Stabilize.D().String(), "must not be negative")
		}
		s.stabilize = c.Stabilize.D()
	}
	if s.limits, err = c.limits(); err != nil {
		return nil, err
	}
	switch {
	case c.Health != nil:
		if s.health, err = health.New("health", *c.Health); err != nil {
			return nil, err
		}
	default:
		s.health = s.ready
	}
	return s, nil
}

// limits validates the limit properties.
func (c Config) limits() (cgroup.Limits, error) {
	var l cgroup.Limits
	if c.MemoryLimit != nil {
		n, err := parseBytes(c.MemoryLimit)
		if err != nil {
			return l, resource.ConfigError("memory_limit", c.MemoryLimit, "%v", err)
		}
		if n < 1<<20 {
			return l, resource.ConfigError("memory_limit", c.MemoryLimit, "must be at least 1 MiB")
		}
		l.MemoryBytes = n
	}
	if c.CPULimit != nil {
		if v := *c.CPULimit; !(v >= 0.01 && v <= 4096) {
			return l, resource.ConfigError("cpu_limit", v, "want CPUs between 0.01 and 4096 (0.5 = half a CPU)")
		}
		l.CPU = *c.CPULimit
	}
	if c.TasksLimit != nil {
		if *c.TasksLimit < 1 {
			return l, resource.ConfigError("tasks_limit", *c.TasksLimit, "must be at least 1")
		}
		l.Tasks = *c.TasksLimit
	}
	return l, nil
}

// parseBytes reads a byte count: a JSON number, or a string of digits
// with an optional unit: k, M, G, T (powers of 1024, also written KiB,
// MiB, GiB, TiB, or with a B: KB, MB, ...).
func parseBytes(v any) (int64, error) {
	switch x := v.(type) {
	case float64:
		if x != float64(int64(x)) || x <= 0 {
			return 0, errors.New("want a positive whole number of bytes")
		}
		return int64(x), nil
	case string:
		s := strings.TrimSpace(x)
		i := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		n, err := strconv.ParseInt(s[:i], 10, 64)
		if err != nil || n <= 0 {
			return 0, errors.New(`want a positive size such as "512MiB" or "1G"`)
		}
		unit := strings.ToLower(strings.TrimSpace(s[i:]))
		unit = strings.TrimSuffix(strings.TrimSuffix(unit, "b"), "i")
		shift, ok := map[string]uint{"": 0, "k": 10, "m": 20, "g": 30, "t": 40}[unit]
		if !ok {
			return 0, fmt.Errorf("unknown unit %q (want k, M, G or T)", s[i:])
		}
		if n > (1<<62)>>shift {
			return 0, errors.New("too large")
		}
		return n << shift, nil
	}
	return 0, fmt.Errorf("want a number of bytes or a string such as \"512MiB\", not %T", v)
}

// inheritedEnv is os.Environ, one shared slice while the environment
// stays the same: a thousand instances without env of their own hold one
// copy (issue 15: 0.8 MB at 1,000). Nobody may change it; mergeEnv and
// the start only read it.
func inheritedEnv() []string {
	e := os.Environ()
	envCache.mu.Lock()
	defer envCache.mu.Unlock()
	if slices.Equal(e, envCache.env) {
		return envCache.env
	}
	envCache.env = e
	return e
}

var envCache struct {
	mu  sync.Mutex
	env []string
}

func mergeEnv(base []string, add map[string]string) []string {
	if len(add) == 0 {
		return base
	}
	out := make([]string, 0, len(base)+len(add))
	for _, kv := range base {
		k, _, _ := strings.Cut(kv, "=")
		if _, over := add[k]; !over {
			out = append(out, kv)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(add)) {
		out = append(out, k+"="+add[k])
	}
	return out
}

// lookPath resolves name like execve would be given it by a shell: with a
// slash it is a path (relative ones to dir, else to the current
// directory), without one it is searched in pathEnv. The result must be a
// regular file the current user may execute.
func lookPath(name, dir, pathEnv string) (string, error) {
	if name == "" {
		return "", errors.New("empty program name")
	}
	if strings.Contains(name, "/") {
		p := name
		if !filepath.IsAbs(p) {
			if dir != "" {
				p = filepath.Join(dir, p)
			} else if abs, err := filepath.Abs(p); err == nil {
				p = abs
			}
		}
		if err := executable(p); err != nil {
			return "", err
		}
		return p, nil
	}
	for _, d := range filepath.SplitList(pathEnv) {
		if d == "" || !filepath.IsAbs(d) {
			continue // like exec.LookPath, ignore relative PATH entries
		}
		p := filepath.Join(d, name)
		if executable(p) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("executable not found in PATH %q", pathEnv)
}

func executable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return unwrapPath(err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("not a regular file (%s)", fi.Mode().Type())
	}
	if err := unix.Access(p, unix.X_OK); err != nil {
		return fmt.Errorf("not executable: %w", err)
	}
	return nil
}

// unwrapPath drops the *PathError wrapping whose path the ConfigError
// already names.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func checkOutput(field, v string) (string, error) {
	switch v {
	case "":
		return DefaultOutput, nil
	case OutputLog, OutputDiscard:
		return v, nil
	}
	if !filepath.IsAbs(v) {
		return "", resource.ConfigError(field, v, `want "log", "discard" or an absolute file path`)
	}
	fi, err := os.Stat(filepath.Dir(v))
	if err != nil {
		return "", resource.ConfigError(field, v, "directory: %v", unwrapPath(err))
	}
	if !fi.IsDir() {
		return "", resource.ConfigError(field, v, "%s is not a directory", filepath.Dir(v))
	}
	if fi, err := os.Stat(v); err == nil && fi.IsDir() {
		return "", resource.ConfigError(field, v, "is a directory")
	}
	return v, nil
}

// credential resolves user and group. Nil means "run as the host user".
func credential(u, g IDOrName) (*syscall.Credential, error) {
	if u == "" && g == "" {
		return nil, nil
	}
	cred := &syscall.Credential{Uid: uint32(os.Geteuid()), Gid: uint32(os.Getegid())}
	if u != "" {
		var pw *user.User
		var err error
		if n, nerr := strconv.ParseUint(string(u), 10, 32); nerr == nil {
			cred.Uid = uint32(n)
			pw, err = user.LookupId(string(u))
			if err != nil && g == "" {
				return nil, resource.ConfigError("user", string(u), "no passwd entry (%v); set group too", err)
			}
		} else {
			pw, err = user.Lookup(string(u))
			if err != nil {
				return nil, resource.ConfigError("user", string(u), "%v", err)
			}
			n, _ := strconv.ParseUint(pw.Uid, 10, 32)
			cred.Uid = uint32(n)
		}
		if pw != nil {
			n, _ := strconv.ParseUint(pw.Gid, 10, 32)
			cred.Gid = uint32(n)
			ids, _ := pw.GroupIds()
			for _, id := range ids {
				if n, err := strconv.ParseUint(id, 10, 32); err == nil {
					cred.Groups = append(cred.Groups, uint32(n))
				}
			}
		}
	}
	if g != "" {
		if n, err := strconv.ParseUint(string(g), 10, 32); err == nil {
			cred.Gid = uint32(n)
		} else {
			gr, err := user.LookupGroup(string(g))
			if err != nil {
				return nil, resource.ConfigError("group", string(g), "%v", err)
			}
			n, _ := strconv.ParseUint(gr.Gid, 10, 32)
			cred.Gid = uint32(n)
		}
		if u == "" {
			cred.Groups = []uint32{} // drop the host's supplementary groups
		}
	}
	if cred.Groups == nil {
		cred.Groups = []uint32{}
	}
	return cred, nil
}
