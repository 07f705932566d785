// Package inproc carries the in-process entry points of package plugins to
// the test harnesses under plugins/ (package plugintest, the package's own
// tests): a plugin served in the test process over go-plugin's test
// connection, with the real gRPC shims and no child process. They are
// go-plugin-typed and only tests need them, so they stay out of the public
// API. Package plugins sets the hooks in its init; this package cannot
// import plugins (plugins imports it), hence the untyped Config and Host.
package inproc

import (
	"context"
	"log/slog"

	"github.com/hashicorp/go-plugin"

	"github.com/sftkit/sft/resource"
)

var (
	// PluginSet returns go-plugin's plugin map serving types in this
	// process; logs of the types go to logger (nil discards).
	PluginSet func(logger *slog.Logger, types ...resource.Type) (plugin.PluginSet, error)

	// Connect returns a *plugins.Pool for a plugin served in this process
	// over c (plugin.TestPluginGRPCConn with PluginSet). cfg is a
	// plugins.Config. stop stops the in-process server; KillProcess calls it
	// to emulate a process death, and such a plugin is never relaunched.
	Connect func(ctx context.Context, cfg any, c plugin.ClientProtocol, stop func()) (any, error)
)
