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
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"github.com/hashicorp/go-plugin/runner"

	"github.com/sftkit/sft/internal/proc"
	"github.com/sftkit/sft/plugins/internal/logbridge"
	pb "github.com/sftkit/sft/plugins/internal/proto/sftresourcev1"
	"github.com/sftkit/sft/resource"
)

// argv0Prefix starts the argv[0] of every plugin process (see Config.Name).
const argv0Prefix = "sft-plugin: "

// startProcess launches one plugin process and connects to it.
func (h *Pool) startProcess(ctx context.Context, l *lineage) (*gen, error) {
	cmd := exec.Command(h.cfg.Path, h.cfg.Args...)
	cmd.Args[0] = argv0Prefix + h.cfg.Name
	cmd.Env = append(os.Environ(), h.cfg.Env...)
	cmd.SysProcAttr = proc.SysProcAttr()
	if h.pin != nil {
		// go-plugin's SecureConfig checks the command it is given, and
		// with a RunnerFunc that is an empty one: check here.
		if sum := fileSHA256(h.cfg.Path); sum != hex.EncodeToString(h.pin) {
			return nil, resource.ConfigError("SHA256", h.cfg.SHA256,
				"plugin %s has SHA-256 %s: refusing to run a binary that does not match the pin", h.cfg.Path, sum)
		}
	}
	var run *pluginRunner
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig: handshake,
		Plugins:         plugin.PluginSet{pluginName: &grpcPlugin{}},
		// The runner forks on the spawner thread and reaps the process
		// itself, after killing its group (see pluginRunner).
		// go-plugin hands it an empty command carrying the handshake
		// environment (cookie, socket directory, mTLS certificate).
		RunnerFunc: func(_ hclog.Logger, spec *exec.Cmd, sockDir string) (runner.Runner, error) {
			cmd.Env = append(cmd.Env, spec.Env...)
			cmd.Stdin = spec.Stdin
			var err error
			run, err = newPluginRunner(h.spawner, cmd, sockDir)
			return run, err
		},
		// Each process gets its own socket directory inside the Pool's
		// private one; it is removed when the process is reaped.
		UnixSocketConfig: &plugin.UnixSocketConfig{TempDir: h.sockDir},
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
	rpcClient, err := client.Client()
	pid := 0
	if run != nil {
		pid = run.pid
	}
	if pid != 0 {
		h.notify(ProcessEvent{Kind: l.forked(), Pid: pid})
	}
	fail := func(err error) (*gen, error) {
		client.Kill() // kills the group if still needed and reaps
		if pid != 0 {
			h.notify(ProcessEvent{Kind: ProcessExited, Pid: pid, Err: err})
		}
		return nil, err
	}
	if err != nil {
		return fail(h.startError(run, err))
	}
	raw, err := rpcClient.Dispense(pluginName)
	if err != nil {
		return fail(fmt.Errorf("plugins: plugin %s: %w", h.cfg.Path, err))
	}
	g, err := h.newGen(ctx, l, raw.(pb.ResourcePluginClient), pid, run.killGroup, client.Kill)
	if err != nil {
		return fail(err)
	}
	if gc, ok := rpcClient.(*plugin.GRPCClient); ok {
		g.conn = gc.Conn
	}
	return g, nil
}

var pluginVersionRe = regexp.MustCompile(`Plugin version: (\d+)`)

// startError explains a failed start: a protocol version mismatch names
// both versions; a process that died during the handshake says so and how
// (go-plugin's own message would guess at the architecture).
func (h *Pool) startError(run *pluginRunner, err error) error {
	msg := err.Error()
	if m := pluginVersionRe.FindStringSubmatch(msg); m != nil && strings.Contains(strings.ToLower(msg), "incompatible api version") {
		return fmt.Errorf("plugins: plugin %s speaks protocol version %s, this host speaks version %d: rebuild the plugin against a matching sft (%w)",
			h.cfg.Path, m[1], protocolVersion, errProtocolMismatch)
	}
	first, _, _ := strings.Cut(msg, "\n")
	// go-plugin saw the plugin's stdout end: the process was exiting before
	// the host killed anything.
	eof := strings.Contains(msg, "Failed to read any lines") || strings.Contains(msg, "exited before we could connect")
	if run != nil {
		if ex, died := run.diedDuringHandshake(h.cfg.StopTimeout, eof); died {
			return fmt.Errorf("plugins: plugin %s (pid %d) %s during its handshake, before it served: %s", h.cfg.Path, run.pid, ex, first)
		}
	}
	return fmt.Errorf("plugins: starting plugin %s: %s", h.cfg.Path, first)
}

// errProtocolMismatch is wrapped by the error of a plugin speaking another
// protocol version.
var errProtocolMismatch = errors.New("protocol version mismatch")

// newGen checks a freshly connected plugin (Info, capabilities) and opens
// its event stream. killGroup kills the process group at once; stop stops
// the plugin gracefully (go-plugin's Kill) and reaps it.
func (h *Pool) newGen(ctx context.Context, l *lineage, rpc pb.ResourcePluginClient, pid int, killGroup, stop func()) (*gen, error) {
	ictx, cancel := context.WithTimeout(ctx, h.cfg.StartTimeout)
	info, err := rpc.Info(ictx, &pb.InfoRequest{})
	cancel()
	if err != nil {
		return nil, fmt.Errorf("plugins: plugin %s: Info: %w", h.cfg.Path, err)
	}
	if info.GetProtocol() != protocolVersion {
		return nil, fmt.Errorf("plugins: plugin %s speaks protocol version %d, this host speaks version %d: rebuild the plugin against a matching sft (%w)",
			h.cfg.Path, info.GetProtocol(), protocolVersion, errProtocolMismatch)
	}
	caps := info.GetCapabilities()
	events := slices.Contains(caps, capEvents)
	g := &gen{
		line:      l,
		rpc:       rpc,
		pid:       pid,
		info:      info,
		remote:    h.cfg.RemoteChecks || !events || !slices.Contains(caps, capLooksAliveLoop),
		started:   time.Now(),
		members:   make(map[uint64]*proxy),
		cleared:   make(chan struct{}),
		killGroup: killGroup,
		stop:      stop,
	}
	g.ctx, g.cancel = context.WithCancelCause(context.Background())
	evCtx, evCancel := context.WithCancel(context.Background())
	g.evCancel = evCancel
	if events {
		stream, err := rpc.Events(evCtx, &pb.EventsRequest{})
		if err != nil {
			evCancel()
			return nil, fmt.Errorf("plugins: plugin %s: Events: %w", h.cfg.Path, err)
		}
		go g.readEvents(stream)
	} else {
		h.logger.Warn("plugin does not push events: every health check is a call, and a process death is noticed by the heartbeat and the calls", "pid", pid)
	}
	if slices.Contains(caps, capCalls) && !h.cfg.perCallRPCs {
		if g.calls, err = openCallStream(evCtx, rpc); err != nil {
			evCancel()
			return nil, fmt.Errorf("plugins: plugin %s: Calls: %w", h.cfg.Path, err)
		}
	}
	h.logger.Debug("plugin started", "pid", pid, "capabilities", caps)
	go g.heartbeat(h.cfg.HeartbeatInterval, h.cfg.HeartbeatTimeout, h.cfg.HeartbeatMisses)
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

// pluginRunner is go-plugin's runner.Runner for a plugin process. It forks
// on the Pool's spawner thread (Pdeathsig follows that thread) and kills the
// process group race-free, the way package proc documents: a watcher waits
// for the leader's exit without reaping it, kills the group while the
// leader, a zombie, still reserves the group id, and only then does Wait
// reap it. killGroup signals the group only while the leader is unreaped,
// so it can never hit a group that reused the id. The process's socket
// directory is removed once it is reaped.
type pluginRunner struct {
	sp      *proc.Spawner
	cmd     *exec.Cmd
	stdout  io.ReadCloser
	stderr  io.ReadCloser
	sockDir string
	pid     int
	exited  chan struct{} // closed when the leader has exited and its group was killed
	exit    proc.Exit
	exitErr error

	mu     sync.Mutex
	reaped bool
	killed bool // killGroup ran while the process lived (the host killed it)
}

func newPluginRunner(sp *proc.Spawner, cmd *exec.Cmd, sockDir string) (*pluginRunner, error) {
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	return &pluginRunner{sp: sp, cmd: cmd, stdout: stdout, stderr: stderr, sockDir: sockDir, exited: make(chan struct{})}, nil
}

func (r *pluginRunner) Start(context.Context) error {
	if err := r.sp.Start(r.cmd); err != nil {
		return err
	}
	r.pid = r.cmd.Process.Pid
	go r.watch()
	return nil
}

// watch waits for the leader's exit (not reaping it) and kills its group:
// the plugin's leftovers die with it, and the pipes its children may hold
// are closed.
func (r *pluginRunner) watch() {
	r.exit, r.exitErr = proc.WaitExit(r.pid)
	r.mu.Lock()
	_ = proc.SignalGroup(r.pid, syscall.SIGKILL)
	r.mu.Unlock()
	close(r.exited)
}

// killGroup sends SIGKILL to the process group while its leader is unreaped.
func (r *pluginRunner) killGroup() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.reaped || r.pid == 0 {
		return
	}
	if st, err := proc.ReadStat(r.pid); err == nil && !st.Zombie() {
		r.killed = true // it was alive: its end is ours
	}
	_ = proc.SignalGroup(r.pid, syscall.SIGKILL)
}

// diedDuringHandshake waits up to timeout for the process's exit after a
// failed handshake and reports how it ended when the host did not kill it
// (exiting: it was known to be on its way out before the host's kill).
func (r *pluginRunner) diedDuringHandshake(timeout time.Duration, exiting bool) (proc.Exit, bool) {
	if r.pid == 0 {
		return proc.Exit{}, false
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-r.exited:
	case <-t.C:
		return proc.Exit{}, false
	}
	r.mu.Lock()
	killed := r.killed
	r.mu.Unlock()
	// A process that exited on its own, or was killed by another signal,
	// died; a SIGKILL may be ours (the kill after a failed handshake).
	return r.exit, r.exitErr == nil && (exiting || !(killed && r.exit.Signal == syscall.SIGKILL))
}

func (r *pluginRunner) Wait(context.Context) error {
	<-r.exited
	r.mu.Lock()
	r.reaped = true
	r.mu.Unlock()
	err := r.cmd.Wait()
	if r.sockDir != "" {
		_ = os.RemoveAll(r.sockDir)
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return fmt.Errorf("plugin %s", r.exit)
	}
	return err
}

func (r *pluginRunner) Kill(context.Context) error {
	r.killGroup()
	return nil
}

func (r *pluginRunner) Diagnose(context.Context) string { return "" }
func (r *pluginRunner) Stdout() io.ReadCloser           { return r.stdout }
func (r *pluginRunner) Stderr() io.ReadCloser           { return r.stderr }
func (r *pluginRunner) Name() string                    { return r.cmd.Path }

func (r *pluginRunner) ID() string {
	if r.pid == 0 {
		return ""
	}
	return strconv.Itoa(r.pid)
}

func (r *pluginRunner) PluginToHost(network, addr string) (string, string, error) {
	return network, addr, nil
}

func (r *pluginRunner) HostToPlugin(network, addr string) (string, string, error) {
	return network, addr, nil
}
