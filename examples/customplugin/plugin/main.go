// Command plugin serves the example "filelock" resource type as an sft
// plugin. It is started by a host (see ../host), not by hand.
package main

import (
	"fmt"
	"os"

	"github.com/sftkit/sft/examples/customplugin/filelock"
	"github.com/sftkit/sft/plugins"
)

func main() {
	if err := plugins.Serve(plugins.ServeConfig{}, filelock.New()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
