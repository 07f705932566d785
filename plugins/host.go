package plugins

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sftkit/sft/internal/procutil"
	"github.com/sftkit/sft/plugins/internal/logbridge"
	pb "github.com/sftkit/sft/plugins/internal/proto/sftresourcev1"
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
	// doc); the proxy answers the monitor's polls from the results.
	// Defaults: the type's DefaultTiming(), else 1 s and 10 s. They should
	// match the monitor's intervals.
	LooksAliveInterval time.Duration
	IsAliveInterval    time.Duration
	// CallTimeout bounds a plugin-side IsAlive. Default: the type's
	// DefaultTiming().CallTimeout, else 2 s. (A plugin-side LooksAlive is
	// bounded by LooksAliveInterval.)
	CallTimeout time.Duration
	// RemoteChecks turns the plugin-side polling off: every LooksAlive and
	// IsAlive of the monitor is a gRPC call. It costs a round trip per poll;
	// meant for comparison and debugging.
	RemoteChecks bool

	// DeadlockGrace: a call of a resource in the plugin that has not
	// returned this long after its context ended (the host's deadline, or
	// Terminate) ignores its context; the plugin reports it and the host
	// kills the plugin's process group, failing its resources, the way the
	// cluster service restarts a deadlocked resource host. (The host's own
	// call returns at its deadline regardless: gRPC honours it.) Default:
	// the type's DeadlockTimeout minus its CallTimeout, else 2 s.
	DeadlockGrace time.Duration

	// HeartbeatInterval and HeartbeatTimeout: the host pings each plugin
	// process this often; a process that does not answer within the
	// timeout (frozen, wedged) is killed, which fails its resources, and is
	// relaunched. Defaults 1 s and 5 s.
	HeartbeatInterval time.Duration
	HeartbeatTimeout  time.Duration

	// Isolate lists types each of whose instances gets a plugin process of
	// its own (see also PropIsolate). Default none: one process hosts
	// every instance, like the cluster's resource hosting subsystem.
	Isolate []string

	// MinBackoff and MaxBackoff bound the delay before relaunching a
	// plugin process that died young (within BackoffReset of its start):
	// the delay doubles from MinBackoff up to MaxBackoff. The first
	// relaunch after a process that lived longer is immediate. Defaults
	// 100 ms, 10 s, 1 min.
	MinBackoff   time.Duration
	MaxBackoff   time.Duration
	BackoffReset time.Duration

	// OnProcess, if set, is told of every plugin process start, relaunch
	// and unexpected exit (for metrics and alerts). It runs on the host's
	// goroutines and must not block.
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

// Kinds of ProcessEvent.
const (
	ProcessStarted    = "started"    // the first process of a (shared or isolated) slot
	ProcessRelaunched = "relaunched" // a replacement for one that exited or was killed
	ProcessExited     = "exited"     // exited or was killed while the host still used it
)

func (h *Host) notify(e ProcessEvent) {
	if h.cfg.OnProcess != nil {
		h.cfg.OnProcess(e)
	}
}

func (c Config) withDefaults() (Config, []byte, error) {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.StartTimeout, 10*time.Second)
	def(&c.StopTimeout, 2*time.Second)
	def(&c.MinBackoff, 100*time.Millisecond)
	def(&c.MaxBackoff, 10*time.Second)
	def(&c.BackoffReset, time.Minute)
	def(&c.HeartbeatInterval, time.Second)
	def(&c.HeartbeatTimeout, 5*time.Second)
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
	return c, pin, nil
}

// Host runs the plugin processes of one plugin binary and hands out its
// types. Instances of all types share one process unless isolated. A Host is
// safe for concurrent use.
type Host struct {
	cfg    Config
	pin    []byte
	logger *slog.Logger
	shared *proc
	start  func(ctx context.Context, p *proc) (*gen, error)
	types  map[string]*remoteType
	order  []string

	mu       sync.Mutex
	isolated map[*proc]struct{}
	closed   bool
	bg       sync.WaitGroup // background reaping of dead processes
	spawn    chan func()    // runs on the spawner thread (spawnLoop)
	spawnEnd chan struct{}
	sockDir  string // 0700 directory for the plugins' unix sockets; removed by Close
}

// Launch starts the plugin binary, asks it which types it serves and
// returns a Host handing them out. The process is relaunched as needed
// later; Close stops it.
func Launch(ctx context.Context, cfg Config) (*Host, error) {
	cfg, pin, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	// The plugins' sockets go into a private 0700 directory that Close
	// removes: go-plugin's default is a file in $TMPDIR per start, left
	// behind by every plugin that is killed rather than stopped.
	sockDir, err := os.MkdirTemp("", "sft-plugins-")
	if err != nil {
		return nil, fmt.Errorf("plugins: socket directory: %w", err)
	}
	h := newHost(cfg, pin)
	h.sockDir = sockDir
	h.start = h.startProcess
	h.shared = h.newProc()
	return h.init(ctx)
}

// ConnectInProcess returns a Host for a plugin served in this process over a
// go-plugin connection (plugin.TestPluginGRPCConn with PluginSet): the real
// gRPC shims without a child process. It is meant for test harnesses such as
// package plugintest. stop stops the in-process server; KillHost calls it to
// emulate a process death, and such a plugin is never relaunched.
// Config.Path only names the plugin in messages.
func ConnectInProcess(ctx context.Context, cfg Config, c plugin.ClientProtocol, stop func()) (*Host, error) {
	if cfg.Path == "" {
		cfg.Path = "in-process"
	}
	cfg, pin, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	h := newHost(cfg, pin)
	var once sync.Once
	stopOnce := func() { once.Do(stop) }
	started := false
	h.start = func(ctx context.Context, p *proc) (*gen, error) {
		if started {
			return nil, fmt.Errorf("%w: an in-process plugin is not relaunched", ErrPluginExited)
		}
		started = true
		raw, err := c.Dispense(pluginName)
		if err != nil {
			return nil, fmt.Errorf("plugins: in-process plugin: %w", err)
		}
		rpc, ok := raw.(pb.ResourcePluginClient)
		if !ok {
			return nil, fmt.Errorf("plugins: in-process plugin: dispensed %T, not a resource plugin (use PluginSet)", raw)
		}
		return h.newGen(ctx, p, rpc, 0, stopOnce, stopOnce)
	}
	h.shared = h.newProc()
	return h.init(ctx)
}

func newHost(cfg Config, pin []byte) *Host {
	h := &Host{
		cfg:      cfg,
		pin:      pin,
		logger:   cfg.Logger.With("plugin", cfg.Path),
		types:    make(map[string]*remoteType),
		isolated: make(map[*proc]struct{}),
		spawn:    make(chan func()),
		spawnEnd: make(chan struct{}),
	}
	go h.spawnLoop()
	return h
}

// spawnLoop runs plugin starts on one goroutine locked to its OS thread for
// the life of the Host. Pdeathsig (which kills a plugin when its host dies)
// fires when the thread that forked the plugin exits, not the process; the
// Go runtime ends a thread whose goroutine exits locked (network-namespace
// code does that on purpose), so forking from an arbitrary runtime thread
// could kill a healthy plugin. This thread exits only after Close, when
// every plugin is gone.
func (h *Host) spawnLoop() {
	defer close(h.spawnEnd)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	for fn := range h.spawn {
		fn()
	}
}

// onSpawner runs fn on the spawner thread.
func (h *Host) onSpawner(fn func()) {
	done := make(chan struct{})
	h.spawn <- func() { defer close(done); fn() }
	<-done
}

// init starts the shared process and learns the types.
func (h *Host) init(ctx context.Context) (*Host, error) {
	g, err := h.shared.ensure(ctx)
	if err != nil {
		_ = h.Close()
		return nil, err
	}
	for _, ti := range g.info.GetTypes() {
		t := &remoteType{h: h, name: ti.GetName(), timing: timingFromPB(ti), isolated: slices.Contains(h.cfg.Isolate, ti.GetName())}
		h.types[t.name] = t
		h.order = append(h.order, t.name)
	}
	for _, name := range h.cfg.Isolate {
		if h.types[name] == nil {
			_ = h.Close()
			return nil, resource.ConfigError("Isolate", name, "type not served by plugin %s (served: %v)", h.cfg.Path, h.order)
		}
	}
	return h, nil
}

// Types returns the types the plugin serves, in its order.
func (h *Host) Types() []resource.Type {
	out := make([]resource.Type, 0, len(h.order))
	for _, name := range h.order {
		out = append(out, h.types[name])
	}
	return out
}

// Type returns the type named name.
func (h *Host) Type(name string) (resource.Type, bool) {
	t, ok := h.types[name]
	return t, ok
}

// Register adds every type of the plugin to r.
func (h *Host) Register(r *resource.Registry) error {
	for _, t := range h.Types() {
		if err := r.Register(t); err != nil {
			return err
		}
	}
	return nil
}

// Pid is the process id of the shared plugin process, 0 when none runs.
func (h *Host) Pid() int {
	if g := h.shared.current(); g != nil {
		return g.pid
	}
	return 0
}

// Close stops every plugin process of h: a graceful stop bounded by
// StopTimeout, then the process group is killed. Instances still open fail
// with ErrPluginExited afterwards.
func (h *Host) Close() error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	procs := []*proc{h.shared}
	for p := range h.isolated {
		procs = append(procs, p)
	}
	h.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Go(p.shutdown)
	}
	wg.Wait()
	for _, p := range procs {
		p.launch <- struct{}{} // no start in flight; later ones see closed
	}
	h.bg.Wait()
	close(h.spawn)
	<-h.spawnEnd
	if h.sockDir != "" {
		if err := os.RemoveAll(h.sockDir); err != nil {
			return fmt.Errorf("plugins: removing the socket directory: %w", err)
		}
	}
	return nil
}

func (h *Host) newProc() *proc {
	return &proc{h: h, launch: make(chan struct{}, 1)}
}

// newIsolated returns a process lineage for one instance.
func (h *Host) newIsolated() (*proc, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, errHostClosed
	}
	p := h.newProc()
	h.isolated[p] = struct{}{}
	return p, nil
}

func (h *Host) dropIsolated(p *proc) {
	h.mu.Lock()
	delete(h.isolated, p)
	h.mu.Unlock()
	p.shutdown()
}

var errHostClosed = fmt.Errorf("%w: plugin host closed", ErrPluginExited)

// proc is one line of plugin processes: the current one (a gen) and the
// relaunch policy.
type proc struct {
	h      *Host
	launch chan struct{} // one launch at a time

	mu       sync.Mutex
	cur      *gen
	failures int // consecutive processes that died young or failed to start
	closed   bool
}

func (p *proc) current() *gen {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur == nil || p.cur.isDead() {
		return nil
	}
	return p.cur
}

// ensure returns the live process, launching one (after the backoff delay)
// if there is none.
func (p *proc) ensure(ctx context.Context) (*gen, error) {
	select {
	case p.launch <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("plugins: waiting for plugin start: %w", context.Cause(ctx))
	}
	defer func() { <-p.launch }()
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, errHostClosed
	}
	if g := p.cur; g != nil && !g.isDead() {
		p.mu.Unlock()
		return g, nil
	}
	var delay time.Duration
	if p.failures > 0 {
		delay = min(p.h.cfg.MinBackoff<<min(p.failures-1, 30), p.h.cfg.MaxBackoff)
	}
	p.mu.Unlock()
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("plugins: relaunch backoff (%s): %w", delay, context.Cause(ctx))
		}
	}
	g, err := p.h.start(ctx, p)
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		p.failures++
		return nil, err
	}
	if p.closed {
		p.h.bg.Go(func() { g.shutdown(p.h.cfg.StopTimeout) })
		return nil, errHostClosed
	}
	kind := ProcessStarted
	if p.cur != nil {
		kind = ProcessRelaunched
	}
	p.cur = g
	p.h.notify(ProcessEvent{Kind: kind, Pid: g.pid})
	return g, nil
}

// died records the death of g for the backoff.
func (p *proc) died(g *gen) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if time.Since(g.started) < p.h.cfg.BackoffReset {
		p.failures++
	} else {
		p.failures = 0
	}
}

func (p *proc) shutdown() {
	p.mu.Lock()
	p.closed = true
	g := p.cur
	p.mu.Unlock()
	if g != nil {
		g.shutdown(p.h.cfg.StopTimeout)
	}
}

// start launches one plugin process.
func (h *Host) startProcess(ctx context.Context, p *proc) (*gen, error) {
	cmd := exec.Command(h.cfg.Path, h.cfg.Args...)
	cmd.Env = append(os.Environ(), h.cfg.Env...)
	if h.sockDir != "" {
		cmd.Env = append(cmd.Env, plugin.EnvUnixSocketDir+"="+h.sockDir)
	}
	cmd.SysProcAttr = procutil.SysProcAttr()
	var sec *plugin.SecureConfig
	if h.pin != nil {
		sec = &plugin.SecureConfig{Checksum: h.pin, Hash: sha256.New()}
	}
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  handshake,
		Plugins:          plugin.PluginSet{pluginName: &grpcPlugin{}},
		Cmd:              cmd,
		SecureConfig:     sec,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         !h.cfg.DisableAutoMTLS,
		StartTimeout:     h.cfg.StartTimeout,
		Logger:           logbridge.HCLog(h.cfg.Logger),
		Stderr:           io.Discard,
		SyncStdout:       logbridge.LineWriter(h.logger, slog.LevelInfo, "stdout"),
		SyncStderr:       logbridge.LineWriter(h.logger, slog.LevelWarn, "stderr"),
		// cmd.Env already holds the host's environment with Config.Env
		// overriding it; go-plugin would append the host's again after it.
		SkipHostEnv: true,
	})
	fail := func(err error) (*gen, error) {
		if cmd.Process != nil {
			_ = procutil.KillGroup(cmd.Process.Pid)
		}
		client.Kill()
		return nil, err
	}
	var (
		conn      *grpc.ClientConn
		rpcClient plugin.ClientProtocol
		err       error
	)
	h.onSpawner(func() { rpcClient, err = client.Client() }) // forks the plugin
	if err != nil {
		if errors.Is(err, plugin.ErrChecksumsDoNotMatch) {
			return fail(resource.ConfigError("SHA256", h.cfg.SHA256,
				"plugin %s has SHA-256 %s: refusing to run a binary that does not match the pin", h.cfg.Path, fileSHA256(h.cfg.Path)))
		}
		return fail(fmt.Errorf("plugins: starting plugin %s: %w", h.cfg.Path, err))
	}
	raw, err := rpcClient.Dispense(pluginName)
	if err != nil {
		return fail(fmt.Errorf("plugins: plugin %s: %w", h.cfg.Path, err))
	}
	pid := cmd.Process.Pid
	if gc, ok := rpcClient.(*plugin.GRPCClient); ok {
		conn = gc.Conn
	}
	g, err := h.newGen(ctx, p, raw.(pb.ResourcePluginClient), pid,
		func() { _ = procutil.KillGroup(pid) }, client.Kill)
	if err != nil {
		return fail(err)
	}
	g.conn = conn
	return g, nil
}

// newGen checks a freshly connected plugin (Info) and opens its event
// stream. killGroup kills the process group at once; stop stops the plugin
// gracefully (go-plugin's Kill) and reaps it.
func (h *Host) newGen(ctx context.Context, p *proc, rpc pb.ResourcePluginClient, pid int, killGroup, stop func()) (*gen, error) {
	ictx, cancel := context.WithTimeout(ctx, h.cfg.StartTimeout)
	info, err := rpc.Info(ictx, &pb.InfoRequest{})
	cancel()
	if err != nil {
		return nil, fmt.Errorf("plugins: plugin %s: Info: %w", h.cfg.Path, err)
	}
	if info.GetProtocol() != protocolVersion {
		return nil, fmt.Errorf("plugins: plugin %s speaks protocol %d, host %d", h.cfg.Path, info.GetProtocol(), protocolVersion)
	}
	g := &gen{
		proc:      p,
		rpc:       rpc,
		pid:       pid,
		info:      info,
		started:   time.Now(),
		members:   make(map[uint64]*proxy),
		killGroup: killGroup,
		stop:      stop,
	}
	g.ctx, g.cancel = context.WithCancelCause(context.Background())
	evCtx, evCancel := context.WithCancel(context.Background())
	g.evCancel = evCancel
	stream, err := rpc.Events(evCtx, &pb.EventsRequest{})
	if err != nil {
		evCancel()
		return nil, fmt.Errorf("plugins: plugin %s: Events: %w", h.cfg.Path, err)
	}
	h.logger.Debug("plugin started", "pid", pid)
	go g.readEvents(stream)
	go g.heartbeat(h.cfg.HeartbeatInterval, h.cfg.HeartbeatTimeout)
	return g, nil
}

func fileSHA256(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	defer f.Close()
	s := sha256.New()
	if _, err := io.Copy(s, f); err != nil {
		return "unknown (" + err.Error() + ")"
	}
	return hex.EncodeToString(s.Sum(nil))
}

// gen is one plugin process.
type gen struct {
	proc      *proc
	rpc       pb.ResourcePluginClient
	conn      *grpc.ClientConn // go-plugin's connection (nil in-process); benchmarks
	killGroup func()           // kill the process group now; nil-safe no-op in-process
	stop      func()           // graceful stop and reap
	pid       int
	info      *pb.InfoResponse
	started   time.Time
	ctx       context.Context // canceled with the death error when the process is gone
	cancel    context.CancelCauseFunc
	evCancel  context.CancelFunc

	mu      sync.Mutex
	dead    bool
	closing bool
	members map[uint64]*proxy
}

func (g *gen) isDead() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.dead
}

// deathErr is the error calls through g fail with once it is dead.
func (g *gen) deathErr() error {
	if err := context.Cause(g.ctx); err != nil {
		return err
	}
	return ErrPluginExited
}

// add routes events of instance id to p; false when g is already dead.
func (g *gen) add(id uint64, p *proxy) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.dead {
		return false
	}
	g.members[id] = p
	return true
}

func (g *gen) remove(id uint64) {
	g.mu.Lock()
	delete(g.members, id)
	g.mu.Unlock()
}

func (g *gen) readEvents(stream pb.ResourcePlugin_EventsClient) {
	for {
		ev, err := stream.Recv()
		if err != nil {
			g.mu.Lock()
			closing := g.closing
			g.mu.Unlock()
			if !closing {
				g.die(fmt.Errorf("%w (pid %d): %v", ErrPluginExited, g.pid, err))
			}
			return
		}
		g.mu.Lock()
		p := g.members[ev.GetInstance()]
		g.mu.Unlock()
		if p != nil {
			p.onEvent(g, ev)
		}
	}
}

// heartbeat pings the plugin until g dies; a plugin that does not answer
// in time is killed. It is what notices a frozen plugin while no call is in
// flight (the plugin-side polling needs no calls).
func (g *gen) heartbeat(every, timeout time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-g.ctx.Done():
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(g.ctx, timeout)
		_, err := g.rpc.Ping(ctx, &pb.Empty{})
		cancel()
		if err == nil || g.ctx.Err() != nil || status.Code(err) == codes.Unimplemented {
			continue // Unimplemented: a plugin without Ping answered, so it lives
		}
		g.mu.Lock()
		closing := g.closing
		g.mu.Unlock()
		if closing {
			return
		}
		g.kill(fmt.Sprintf("heartbeat: no answer within %s: %v", timeout, err))
		return
	}
}

// die marks g dead, fails every instance it hosted at once, and kills what
// is left of its process group.
func (g *gen) die(err error) {
	g.mu.Lock()
	if g.dead {
		g.mu.Unlock()
		return
	}
	g.dead = true
	closing := g.closing
	members := make([]*proxy, 0, len(g.members))
	for _, p := range g.members {
		members = append(members, p)
	}
	g.mu.Unlock()
	g.cancel(err)
	if !closing {
		for _, p := range members {
			p.procDied(g, err)
		}
		g.proc.h.logger.Error("plugin process exited", "pid", g.pid, "error", err, "instances", len(members))
		g.proc.died(g)
		g.proc.h.notify(ProcessEvent{Kind: ProcessExited, Pid: g.pid, Err: err})
	}
	g.killGroup()
	g.evCancel()
	g.proc.h.bg.Go(g.stop) // reaps; the group is dead, so it does not block
}

// kill kills the process group at once (a deadlocked call) and fails the
// instances.
func (g *gen) kill(reason string) {
	g.killGroup()
	g.die(fmt.Errorf("%w (pid %d): killed by the host: %s", ErrPluginExited, g.pid, reason))
}

// shutdown stops g gracefully within timeout, then kills its group.
func (g *gen) shutdown(timeout time.Duration) {
	g.mu.Lock()
	if g.dead {
		g.mu.Unlock()
		return
	}
	g.closing = true
	g.mu.Unlock()
	g.evCancel() // an open stream would hold up the plugin's graceful stop
	done := make(chan struct{})
	go func() {
		defer close(done)
		g.stop()
	}()
	t := time.NewTimer(timeout)
	select {
	case <-done:
		t.Stop()
	case <-t.C:
		g.proc.h.logger.Warn("plugin did not stop in time, killing its process group", "pid", g.pid, "timeout", timeout)
	}
	g.killGroup()
	<-done
	g.die(errHostClosed)
}
