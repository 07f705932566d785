package plugins

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/sftkit/sft/plugins/internal/logbridge"
	pb "github.com/sftkit/sft/plugins/internal/proto/sftresourcev1"
	"github.com/sftkit/sft/resource"
)

// Protocol versions. The handshake's ProtocolVersion changes only with a
// breaking change of the wire protocol (a new proto package).
//
// History:
//
//	1: sft.resource.v1 (first release).
const protocolVersion = 1

// Capabilities a plugin announces in Info; the host acts on each (see
// newGen and the proto's InfoResponse). A plugin without "events" or
// "looksalive-loop" is polled with calls; without "schedule" or "cycle" it
// ignores the Online fields of those names, which only makes the host's
// filtering of late events and the per-resource intervals unavailable;
// without "calls" every Online, Offline, LooksAlive, IsAlive and Terminate
// is a gRPC call of its own instead of a message on the Calls stream.
const (
	capLooksAliveLoop = "looksalive-loop"
	capEvents         = "events"
	capSchedule       = "schedule"
	capCycle          = "cycle"
	capCalls          = "calls"
)

// pluginName is the key of the one plugin a process serves in go-plugin's
// plugin map.
const pluginName = "resource"

// handshake is go-plugin's handshake: a host and a plugin of different
// protocol versions refuse each other; the cookie keeps a plugin binary from
// being run by hand (and marks a re-executed host binary as a plugin, see
// Main).
var handshake = plugin.HandshakeConfig{
	ProtocolVersion:  protocolVersion,
	MagicCookieKey:   "SFT_RESOURCE_PLUGIN",
	MagicCookieValue: "8a3c1f0e-sft.resource.v1-5b7d9e2a",
}

// ErrPluginExited is the error of every call made through a plugin process
// that exited, was killed or stopped answering on its connection. The
// resource is down; the host relaunches the process on the next call that
// needs it (Online, Offline, Terminate). Test with errors.Is.
var ErrPluginExited = errors.New("plugin process exited")

// grpcPlugin is the go-plugin glue: plugin.GRPCPlugin for both sides.
type grpcPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	server   *grpcServer // plugin side only
	scrubEnv []string    // plugin process: variables to drop once go-plugin has read them
}

var _ plugin.GRPCPlugin = (*grpcPlugin)(nil)

func (p *grpcPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	if p.server == nil {
		return errors.New("plugins: no server")
	}
	pb.RegisterResourcePluginServer(s, p.server)
	// go-plugin has read its handshake variables by now. Drop them, so the
	// processes the resources start (a genericapp running this very
	// binary, say) do not inherit them and take themselves for plugins.
	for _, k := range p.scrubEnv {
		os.Unsetenv(k)
	}
	return nil
}

func (p *grpcPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return pb.NewResourcePluginClient(c), nil
}

// ServeConfig configures Serve. The zero value is ready to use.
type ServeConfig struct {
	// Level is the lowest level of log records sent to the host. Default
	// slog.LevelInfo. Records travel as hclog JSON lines on stderr and
	// are re-emitted by the host's logger at the same level.
	Level slog.Leveler

	// ParentCheckInterval: the plugin exits when its parent process (the
	// host) changes, checked this often, in addition to the Pdeathsig the
	// host sets. Default 1 s; negative disables the check.
	ParentCheckInterval time.Duration

	// GCPercent is the plugin process's garbage collection target
	// (debug.SetGCPercent) unless the GOGC variable is set (the host's
	// environment, or Config.Env). Default DefaultGCPercent; negative
	// leaves the runtime's own (100).
	GCPercent int

	// stderr and handshake are replaced by tests.
	stderr    io.Writer
	handshake *plugin.HandshakeConfig
}

// DefaultGCPercent is a plugin process's GC target (ServeConfig.GCPercent).
// A plugin is idle nearly all the time and its heap is small: collecting
// at half the runtime's default growth costs it next to nothing (idle CPU
// unchanged, measured with 1,000 apps) and keeps about 2 MB less garbage
// resident per plugin process (issue 15).
const DefaultGCPercent = 50

// Serve serves types as a plugin of the host that started this process and
// returns when the host closes the connection. Call it from a plugin
// binary's main (or use Main in a binary that is also a host). A process
// started by hand (without the host's handshake cookie) gets an error
// explaining that it is a plugin.
func Serve(cfg ServeConfig, types ...resource.Type) error {
	hs := handshake
	if cfg.handshake != nil {
		hs = *cfg.handshake
	}
	if os.Getenv(hs.MagicCookieKey) != hs.MagicCookieValue {
		return errors.New("plugins: this program is an sft resource plugin; it is started by an sft host, not run directly")
	}
	setComm()
	if _, set := os.LookupEnv("GOGC"); !set && cfg.GCPercent >= 0 {
		gc := cfg.GCPercent
		if gc == 0 {
			gc = DefaultGCPercent
		}
		debug.SetGCPercent(gc)
	}
	stderr := cfg.stderr
	if stderr == nil {
		stderr = os.Stderr // captured before plugin.Serve redirects os.Stderr
	}
	level := cfg.Level
	if level == nil {
		level = slog.LevelInfo
	}
	logger := slog.New(logbridge.NewPluginHandler(stderr, level))
	srv, err := newGRPCServer(types, logger)
	if err != nil {
		return err
	}
	if cfg.ParentCheckInterval >= 0 {
		interval := cfg.ParentCheckInterval
		if interval == 0 {
			interval = time.Second
		}
		go watchParent(logger, interval)
	}
	hcl := hclog.New(&hclog.LoggerOptions{
		Name:       "go-plugin",
		Output:     stderr,
		JSONFormat: true,
		Level:      hclog.LevelFromString(logbridge.LevelName(level.Level())),
	})
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: hs,
		Plugins:         plugin.PluginSet{pluginName: &grpcPlugin{server: srv, scrubEnv: pluginEnv(hs)}},
		GRPCServer:      plugin.DefaultGRPCServer,
		Logger:          hcl,
	})
	return nil
}

// pluginComm is the comm (`ps -e`, /proc/PID/comm) of a plugin process, so
// that it is told apart from its host even when both are the same binary;
// the host also sets its argv[0] to "sft-plugin: NAME" (Config.Name).
const pluginComm = "sft-plugin"

// setComm renames the process (its main thread, which /proc/self names) to
// pluginComm. Best effort: outside Linux it does nothing.
func setComm() { _ = os.WriteFile("/proc/self/comm", []byte(pluginComm), 0) }

// watchParent exits the process when the parent that started it is gone
// (the host died and this process was reparented).
func watchParent(logger *slog.Logger, interval time.Duration) {
	ppid := os.Getppid()
	t := time.NewTicker(interval)
	defer t.Stop()
	for range t.C {
		if os.Getppid() != ppid {
			logger.Error("host process is gone, exiting", "host_pid", ppid)
			os.Exit(3)
		}
	}
}

// IsPlugin reports whether this process was started by an sft host as a
// plugin (the handshake cookie is in its environment).
func IsPlugin() bool {
	return os.Getenv(handshake.MagicCookieKey) == handshake.MagicCookieValue
}

// Main is the hook a program's main calls first when the program is both a
// host and the plugin for its own (embedded) types. When the process was
// started as a plugin (see IsPlugin), Main serves types and exits; otherwise
// it returns at once and main continues as the host, which launches plugins
// with an empty Config.Path (re-executing its own binary).
//
//	func main() {
//		plugins.Main(genericapp.New(), myType{})
//		// ... the host program
//	}
func Main(types ...resource.Type) {
	if !IsPlugin() {
		return
	}
	if err := Serve(ServeConfig{}, types...); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// pluginEnv lists the variables a host sets for its plugin process: the
// handshake cookie and go-plugin's PLUGIN_* settings.
func pluginEnv(hs plugin.HandshakeConfig) []string {
	keys := []string{hs.MagicCookieKey}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "PLUGIN_") {
			keys = append(keys, k)
		}
	}
	return keys
}
