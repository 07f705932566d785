package node

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/sftkit/sft/examples/host/config"
	"github.com/sftkit/sft/plugins"
	"github.com/sftkit/sft/plugins/bundled"
	"github.com/sftkit/sft/plugins/genericapp"
	"github.com/sftkit/sft/resource"
)

// This file is the one place where the host meets its resource types. To
// serve a type of your own as well, wrap bundled.Types() here and pass the
// same list to plugins.Main and to the in-process registry.

// BundledTypes returns the bundled resource types, in-process: genericapp,
// genericservice, ipaddress. They are what the plugin process serves
// (PluginMain) and what `validate` and the inprocess mode use.
func BundledTypes() []resource.Type { return bundled.Types() }

// PluginMain is the hook main calls first: when this process was started
// by a host as its plugin (self re-exec), it serves the bundled types and
// exits; otherwise it returns at once.
func PluginMain() { bundled.Main() }

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

// openTypes returns the registry the node opens resources from: in a plugin
// process (this binary re-executed, see PluginMain) or in-process, by
// pc.Mode. host is the plugin host to close, nil in-process.
// openTypes opens the bundled types in the configured mode. nodeName
// reaches the plugin process as $SFT_NODE, which genericapp uses to name its
// cgroups (<v2 root>/sft/<node>/<resource>), so two nodes on one machine
// never share (or reclaim) each other's application cgroups.
func openTypes(ctx context.Context, pc config.Plugins, nodeName string, log *slog.Logger, onProcess func(plugins.ProcessEvent)) (reg *resource.Registry, host *plugins.Pool, err error) {
	switch pc.Mode {
	case config.PluginModeInProcess:
		if os.Getenv(genericapp.NodeEnv) == "" {
			os.Setenv(genericapp.NodeEnv, nodeName)
		}
		return ValidationRegistry(), nil, nil
	case config.PluginModeProcess, "":
		reg := &resource.Registry{}
		h, err := bundled.Launch(ctx, plugins.Config{Logger: log, DisableAutoMTLS: !pc.AutoMTLSOn(), OnProcess: onProcess, Env: []string{genericapp.NodeEnv + "=" + nodeName}}, reg)
		if err != nil {
			return nil, nil, fmt.Errorf("starting the bundled plugin process: %w", err)
		}
		return reg, h, nil
	}
	return nil, nil, fmt.Errorf("plugins.mode %q: want process or inprocess", pc.Mode)
}
