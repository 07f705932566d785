// Command sftd is sft's example host under a name of its own:
//
//	go install github.com/sftkit/sft/examples/host/sftd@latest
//	sftd help
//
// It is the very program `go run ./examples/host` runs (see that
// directory's README.md); only the binary's name differs.
package main

import (
	"os"

	"github.com/sftkit/sft/examples/host/cli"
	"github.com/sftkit/sft/examples/host/node"
)

func main() {
	node.PluginMain() // re-executed as its own plugin process: serve and exit
	os.Exit(cli.Main(os.Args[1:], cli.Env{Stdout: os.Stdout, Stderr: os.Stderr}))
}
