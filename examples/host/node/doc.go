// Package node runs the example host's node: it opens the configured
// resources (in plugin processes, this binary re-executed, or in-process),
// runs their groups on a monitor, serves the control API and the
// Prometheus metrics, writes the structured event log and fires alerts.
//
// The resource types are wired in one place, types.go: BundledTypes,
// PluginMain (the self re-exec hook main calls first) and openTypes.
package node
