package plugins

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/hashicorp/go-plugin"

	"github.com/sftkit/sft/plugins/internal/inproc"
	pb "github.com/sftkit/sft/plugins/internal/proto/sftresourcev1"
	"github.com/sftkit/sft/resource"
)

func init() {
	inproc.PluginSet = pluginSet
	inproc.Connect = func(ctx context.Context, cfg any, c plugin.ClientProtocol, stop func()) (any, error) {
		conf, ok := cfg.(Config)
		if !ok {
			return nil, fmt.Errorf("plugins: in-process: config is %T, want plugins.Config", cfg)
		}
		return connectInProcess(ctx, conf, c, stop)
	}
}

// errNotRelaunched is the start error of an in-process plugin that stopped.
var errNotRelaunched = fmt.Errorf("%w: an in-process plugin is not relaunched", ErrPluginExited)

// pluginSet returns go-plugin's plugin map serving types (see inproc).
func pluginSet(logger *slog.Logger, types ...resource.Type) (plugin.PluginSet, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	srv, err := newGRPCServer(types, logger)
	if err != nil {
		return nil, err
	}
	return plugin.PluginSet{pluginName: &grpcPlugin{server: srv}}, nil
}

// connectInProcess returns a Pool for a plugin served in this process over
// a go-plugin connection (see inproc.Connect). Config.Path only names the
// plugin in messages.
func connectInProcess(ctx context.Context, cfg Config, c plugin.ClientProtocol, stop func()) (*Pool, error) {
	if cfg.Path == "" {
		cfg.Path = "in-process"
	}
	cfg, pin, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	h := newPool(cfg, pin)
	var once sync.Once
	stopOnce := func() { once.Do(stop) }
	started := false
	h.start = func(ctx context.Context, l *lineage) (*gen, error) {
		if started {
			return nil, errNotRelaunched
		}
		started = true
		raw, err := c.Dispense(pluginName)
		if err != nil {
			return nil, fmt.Errorf("plugins: in-process plugin: %w", err)
		}
		rpc, ok := raw.(pb.ResourcePluginClient)
		if !ok {
			return nil, fmt.Errorf("plugins: in-process plugin: dispensed %T, not a resource plugin (use inproc.PluginSet)", raw)
		}
		g, err := h.newGen(ctx, l, rpc, 0, stopOnce, stopOnce)
		if err == nil {
			h.notify(ProcessEvent{Kind: l.forked()})
		}
		return g, err
	}
	h.shared = h.newLineage()
	return h.init(ctx)
}
