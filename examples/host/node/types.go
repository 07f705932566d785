package node

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/sftkit/sft/examples/host/config"
	"github.com/sftkit/sft/plugins"
	"github.com/sftkit/sft/plugins/genericapp"
	"github.com/sftkit/sft/plugins/genericservice"
	"github.com/sftkit/sft/plugins/ipaddress"
	"github.com/sftkit/sft/resource"
)

// BundledTypes returns the bundled resource types, in-process. They are
// what the plugin process serves (PluginMain) and what `validate` and the
// inprocess mode use.
func BundledTypes() []resource.Type {
	return []resource.Type{genericapp.New(), genericservice.New(), ipaddress.NewType()}
}

// PluginMain is the hook main calls first: when this process was started
// by a host as its plugin (self re-exec), it serves the bundled types and
// exits; otherwise it returns at once.
func PluginMain() { plugins.Main(BundledTypes()...) }

// ValidationRegistry is the registry configs are validated against: the
// bundled types, in-process (validation has no side effects, so no plugin
// process is needed).
func ValidationRegistry() *resource.Registry {
	reg, err := resource.NewRegistry(BundledTypes()...)
	if err != nil {
		panic(err) // the bundled types have distinct names
	}
	return reg
}

// openTypes returns the registry the node opens resources from: in plugin
// processes (this binary re-executed) or in-process, by mode. stop
// releases the plugin processes.
func openTypes(ctx context.Context, pc config.Plugins, log *slog.Logger) (reg *resource.Registry, host *plugins.Host, err error) {
	switch mode := pc.Mode; mode {
	case config.PluginModeInProcess:
		return ValidationRegistry(), nil, nil
	case config.PluginModeProcess, "":
		h, err := plugins.Launch(ctx, plugins.Config{Logger: log, DisableAutoMTLS: !pc.AutoMTLSOn()})
		if err != nil {
			return nil, nil, fmt.Errorf("starting the bundled plugin process: %w", err)
		}
		reg := &resource.Registry{}
		if err := h.Register(reg); err != nil {
			_ = h.Close()
			return nil, nil, err
		}
		return reg, h, nil
	}
	return nil, nil, fmt.Errorf("plugins.mode %q: want process or inprocess", pc.Mode)
}
