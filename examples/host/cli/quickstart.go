package cli

import _ "embed"

// Quickstart is the configuration the host runs when given none. The file
// lives here so that every main (examples/host and examples/host/sftd) can
// embed it; examples/host/quickstart.yaml is a symbolic link to it.
//
//go:embed quickstart.yaml
var Quickstart []byte
