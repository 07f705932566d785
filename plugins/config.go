package plugins

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/sftkit/sft/resource"
)

// PropIsolate is a host-side property: an instance opened with
// {"sft.isolate": true} gets a plugin process of its own, so a misbehaving
// instance cannot take its neighbours down. The host removes it before the
// plugin's Type sees the properties.
const PropIsolate = "sft.isolate"

// Config configures Launch. Every zero field has the documented default.
type Config struct {
	// Path is the plugin binary. Empty means the running executable,
	// re-executed as the plugin for the types its main passes to Main.
	Path string
	// Args are passed to the plugin binary. Default none.
	Args []string
	// Env is added to the host's environment for the plugin process.
	Env []string
	// Name names the plugin in `ps`: a plugin process runs with argv[0]
	// "sft-plugin: NAME" (and comm "sft-plugin", set by Serve), so it is
	// told apart from the host even when both are the same binary. Default:
	// the base name of Path. A plugin binary that dispatches on argv[0]
	// (busybox style) needs a wrapper.
	Name string

	// SHA256 pins the binary: hex of its SHA-256. Empty: no pin. A binary
	// that does not match is refused (a configuration error naming both
	// sums) and never runs.
	SHA256 string

	// DisableAutoMTLS turns off go-plugin's automatic mutual TLS between
	// host and plugin. It is on by default (about 40 ms per plugin start on
	// the reference machine); turn it off only where the plugin socket's
	// private (0700) directory is protection enough.
	DisableAutoMTLS bool

	// Logger receives the host-side logs and the plugin's logs, at the
	// level the plugin logged them. Nil discards.
	Logger *slog.Logger

	// StartTimeout bounds a plugin start (process launch, handshake, Info).
	// Default 10 s.
	StartTimeout time.Duration
	// StopTimeout bounds the graceful stop in Close before the process
	// group is killed. Default 2 s.
	StopTimeout time.Duration

	// LooksAliveInterval and IsAliveInterval are how often the plugin runs
	// LooksAlive and IsAlive next to each online resource (see the package
	// doc); the proxy answers the monitor's polls from the results. They
	// apply to a resource the monitor has not given its own timing
	// (resource.PollScheduler, which the monitor always calls): that timing
	// wins. Defaults: the type's DefaultTiming(), else 1 s and 10 s.
	LooksAliveInterval time.Duration
	IsAliveInterval    time.Duration
	// CallTimeout bounds a plugin-side LooksAlive and IsAlive, under the same
	// rule. Default: the type's DefaultTiming().CallTimeout, else 2 s.
	CallTimeout time.Duration
	// RemoteChecks turns the plugin-side polling off: every LooksAlive and
	// IsAlive of the monitor is a gRPC call. It costs a round trip per poll;
	// meant for comparison and debugging. A plugin that does not announce
	// the "looksalive-loop" capability is always polled this way.
	RemoteChecks bool

	// perCallRPCs makes every call an RPC of its own even with a plugin
	// that has the call stream, as with a plugin built before it (tests,
	// benchmarks).
	perCallRPCs bool

	// DeadlockGrace: a call of a resource in the plugin that has not
	// returned this long after its context ended (the host's deadline, or
	// Terminate) ignores its context; the plugin reports it and the host
	// kills the plugin's process group, failing its resources, the way the
	// cluster service restarts a deadlocked resource host. (The host's own
	// call returns at its deadline regardless: gRPC honours it.) Default:
	// the resource's (else the type's) DeadlockTimeout minus its
	// CallTimeout, else 2 s.
	DeadlockGrace time.Duration

	// HeartbeatInterval, HeartbeatTimeout and HeartbeatMisses: the host
	// pings each plugin process every HeartbeatInterval; a ping without an
	// answer within HeartbeatTimeout is a miss, and HeartbeatMisses misses
	// in a row (frozen, wedged) get the process killed, which fails its
	// resources. One late answer (a GC pause or a VM stall on either side)
	// is not enough. Defaults 1 s, 2 s and 3: a frozen process is killed
	// within HeartbeatMisses x (HeartbeatInterval + HeartbeatTimeout), 9 s.
	HeartbeatInterval time.Duration
	HeartbeatTimeout  time.Duration
	HeartbeatMisses   int

	// Isolate lists types each of whose instances gets a plugin process of
	// its own (see also PropIsolate). Default none: one process hosts
	// every instance, like the cluster's resource hosting subsystem.
	Isolate []string

	// MinBackoff, MaxBackoff and BackoffReset: a plugin process that died
	// young (within BackoffReset of its start) or failed to start is
	// relaunched no earlier than a backoff after its death, doubling from
	// MinBackoff up to MaxBackoff with each such death in a row. The
	// backoff counts from the death, so it decays with time: a launch
	// BackoffReset after the last death starts at once and resets the
	// count. A cleanup (Terminate) never waits for it. Defaults 100 ms,
	// 10 s, 1 min. See the package doc for the background relaunch.
	MinBackoff   time.Duration
	MaxBackoff   time.Duration
	BackoffReset time.Duration

	// OnProcess, if set, is told of every plugin process start, relaunch
	// and exit while the host uses it, including processes that died or
	// were killed during their handshake (for metrics and alerts). It runs
	// on the host's goroutines and must not block.
	OnProcess func(ProcessEvent)
}

// ProcessEvent is a plugin process's life event, for Config.OnProcess.
type ProcessEvent struct {
	// Kind is ProcessStarted, ProcessRelaunched or ProcessExited.
	Kind string
	// Pid of the process.
	Pid int
	// Err says why it exited (ProcessExited only).
	Err error
}

// Kinds of ProcessEvent. Every process forked gets exactly one of
// ProcessStarted or ProcessRelaunched, and exactly one ProcessExited when it
// dies or is killed (also during its handshake) before Close.
const (
	ProcessStarted    = "started"    // the first process of a (shared or isolated) slot
	ProcessRelaunched = "relaunched" // a replacement for one that exited or was killed
	ProcessExited     = "exited"     // exited or was killed while the host still used it
)

// Defaults of Config.
const (
	defaultStartTimeout      = 10 * time.Second
	defaultStopTimeout       = 2 * time.Second
	defaultMinBackoff        = 100 * time.Millisecond
	defaultMaxBackoff        = 10 * time.Second
	defaultBackoffReset      = time.Minute
	defaultHeartbeatInterval = time.Second
	defaultHeartbeatTimeout  = 2 * time.Second
	defaultHeartbeatMisses   = 3
)

func (c Config) withDefaults() (Config, []byte, error) {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.StartTimeout, defaultStartTimeout)
	def(&c.StopTimeout, defaultStopTimeout)
	def(&c.MinBackoff, defaultMinBackoff)
	def(&c.MaxBackoff, defaultMaxBackoff)
	def(&c.BackoffReset, defaultBackoffReset)
	def(&c.HeartbeatInterval, defaultHeartbeatInterval)
	def(&c.HeartbeatTimeout, defaultHeartbeatTimeout)
	if c.HeartbeatMisses == 0 {
		c.HeartbeatMisses = defaultHeartbeatMisses
	}
	if c.HeartbeatMisses < 0 {
		return c, nil, resource.ConfigError("HeartbeatMisses", c.HeartbeatMisses, "must not be negative")
	}
	for name, d := range map[string]time.Duration{
		"StartTimeout": c.StartTimeout, "StopTimeout": c.StopTimeout, "MinBackoff": c.MinBackoff,
		"MaxBackoff": c.MaxBackoff, "BackoffReset": c.BackoffReset,
		"LooksAliveInterval": c.LooksAliveInterval, "IsAliveInterval": c.IsAliveInterval,
		"CallTimeout": c.CallTimeout, "DeadlockGrace": c.DeadlockGrace, "HeartbeatInterval": c.HeartbeatInterval, "HeartbeatTimeout": c.HeartbeatTimeout,
	} {
		if d < 0 {
			return c, nil, resource.ConfigError(name, d.String(), "must not be negative")
		}
	}
	if c.MaxBackoff < c.MinBackoff {
		return c, nil, resource.ConfigError("MaxBackoff", c.MaxBackoff.String(), "less than MinBackoff %s", c.MinBackoff)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	var pin []byte
	if c.SHA256 != "" {
		b, err := hex.DecodeString(c.SHA256)
		if err != nil || len(b) != sha256.Size {
			return c, nil, resource.ConfigError("SHA256", c.SHA256, "want 64 hex digits")
		}
		pin = b
	}
	if c.Path == "" {
		exe, err := os.Executable()
		if err != nil {
			return c, nil, fmt.Errorf("plugins: finding own executable: %w", err)
		}
		c.Path = exe
	}
	if c.Name == "" {
		c.Name = filepath.Base(c.Path)
	}
	return c, pin, nil
}

// CheckBinary refuses what a host must not run as a plugin: a path that is
// not absolute, not a regular executable file, or a file or directory that
// someone other than its owner may write (anyone who can replace the binary
// runs code as the host). Launch applies it to an explicit Config.Path (the
// running executable, the default, is trusted as it is); an embedding
// program may call it earlier, when it reads its own configuration.
func CheckBinary(path string) error {
	if !filepath.IsAbs(path) {
		return fmt.Errorf("must be an absolute path")
	}
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("not a regular file")
	}
	if fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("not executable (mode %v)", fi.Mode().Perm())
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("writable by group or others (mode %v): anyone who can replace it runs code as the host; chmod go-w it", fi.Mode().Perm())
	}
	dir := filepath.Dir(path)
	di, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if di.Mode().Perm()&0o022 != 0 && di.Mode()&os.ModeSticky == 0 {
		return fmt.Errorf("its directory %s is writable by group or others (mode %v): anyone who can write there can replace the binary; move it or chmod go-w the directory", dir, di.Mode().Perm())
	}
	return nil
}
