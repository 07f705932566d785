package plugins_test

import (
	"context"
	"log/slog"
	"os"

	"github.com/sftkit/sft/plugins"
	"github.com/sftkit/sft/resource"
)

// A plugin binary serves its types; the host starts it.
func ExampleServe() {
	var myType resource.Type // your type
	if err := plugins.Serve(plugins.ServeConfig{}, myType); err != nil {
		os.Exit(1) // started by hand, not by a host
	}
}

// A host launches a plugin binary and uses its types like in-process ones.
func ExampleLaunch() {
	ctx := context.Background()
	host, err := plugins.Launch(ctx, plugins.Config{
		Path:   "/usr/lib/myapp/filelock-plugin",
		Logger: slog.Default(),
	})
	if err != nil {
		return
	}
	defer host.Close()
	reg := &resource.Registry{}
	_ = host.Register(reg)
	r, err := reg.Open(ctx, "filelock", resource.OpenRequest{Name: "web/lock", Properties: resource.Properties{"path": "/run/web.lock"}})
	if err != nil {
		return
	}
	_ = r.Online(ctx) // runs in the plugin process
}

// One binary that is host and plugin: main calls Main first, and the host
// re-executes itself (empty Config.Path).
func ExampleMain() {
	var myType resource.Type
	plugins.Main(myType) // serves and exits when started as the plugin
	host, err := plugins.Launch(context.Background(), plugins.Config{})
	if err != nil {
		return
	}
	defer host.Close()
}
