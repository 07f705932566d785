// Package callhint carries what sft's own resource implementations tell the
// monitor about their calls, beyond the public contract of package resource.
// It is internal: a hint that loosens the monitor's protection is not
// offered to resources sft does not ship.
package callhint

// ReturnsAtContextEnd is implemented by a resource whose calls all return
// as soon as their context ends, whatever the work behind them does: the
// host-side proxy of a plugin resource (its calls are messages to another
// process and select on the context). The monitor runs such a resource's
// calls on the operation's own goroutine instead of a goroutine of their
// own that it could abandon: one goroutine and one grown stack less per
// call in flight. A call that ignored its context would then hang its
// operation, so no other resource may claim it.
type ReturnsAtContextEnd interface {
	ReturnsAtContextEnd()
}
