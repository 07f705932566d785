// Command host is sft's example host: it runs a node (groups of resources
// from a YAML config), serves a local control API, Prometheus metrics and a
// structured event log, and fires alerts. Run it with no arguments for the
// quick start (no root needed):
//
//	go run ./examples/host
//
// The same program installs as `sftd` (go install ./examples/host/sftd);
// `go install ./examples/host` would name it "host", like the DNS lookup
// tool. See README.md in this directory.
package main

import (
	"os"

	"github.com/sftkit/sft/examples/host/cli"
	"github.com/sftkit/sft/examples/host/node"
)

func main() {
	// First: when this binary was re-executed as the plugin process of its
	// own host, serve the bundled resource types and exit. (The plugin
	// process drops the handshake variables once connected, so the demo
	// app it starts from this same binary runs as a normal command.)
	node.PluginMain()
	os.Exit(cli.Main(os.Args[1:], cli.Env{Stdout: os.Stdout, Stderr: os.Stderr}))
}
