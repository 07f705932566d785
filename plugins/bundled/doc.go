// Package bundled serves sft's bundled resource types (genericapp,
// genericservice, ipaddress) from the host's own binary: one binary to ship,
// still one process per plugin.
//
// A host program's main calls Main first; when the process was started as
// the plugin (the host re-executing itself), Main serves the bundled types
// and exits; otherwise it returns and main goes on as the host, which calls
// Launch to start that plugin process:
//
//	func main() {
//		bundled.Main()
//		reg := &resource.Registry{}
//		host, err := bundled.Launch(ctx, plugins.Config{Logger: logger}, reg)
//		...
//		defer host.Close()
//	}
//
// Types returns the same types in-process, e.g. for validating a
// configuration without starting a process.
package bundled
