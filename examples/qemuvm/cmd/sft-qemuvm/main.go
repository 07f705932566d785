// Command sft-qemuvm is the plugin binary serving the "qemuvm" resource
// type (package github.com/sftkit/sft/examples/qemuvm) to an sft host. List
// it under plugins.external in the host's config; see ../../README.md.
package main

import (
	"fmt"
	"os"

	"github.com/sftkit/sft/examples/qemuvm"
	"github.com/sftkit/sft/plugins"
)

func main() {
	if err := plugins.Serve(plugins.ServeConfig{}, qemuvm.New()); err != nil {
		fmt.Fprintln(os.Stderr, err) // e.g. run by hand instead of by a host
		os.Exit(1)
	}
}
