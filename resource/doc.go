// Package resource defines the contract every sft resource type implements.
//
// It is modelled on the failover-cluster resource DLL API: a [Type] validates
// properties and opens instances (the DLL's Open), and each instance is a
// [Resource] with five entry points:
//
//   - Online brings the resource up (pending until it returns or its context ends).
//   - Offline takes it down gracefully.
//   - LooksAlive is the cheap, frequent check.
//   - IsAlive is the thorough, rarer check.
//   - Terminate tears it down at once, without grace, and may run at any time.
//
// Errors are classified like OCF return codes (see [Class]): a transient error
// means "restart here", a node-local error means "this node cannot host it, move
// it", a configuration error means "retry nowhere". Use [Transient], [NodeLocal],
// [Configuration] and [ConfigError] to classify, and [ClassOf] or errors.Is with
// [ErrTransient], [ErrNodeLocal], [ErrConfiguration] to test.
//
// Resources grow by optional interfaces, never by changing the five methods:
// [FailureReporter] (push a failure the moment it is known), [Closer] (release
// the instance), [ProcessKiller] (kill the process that hosts the resource, used by
// the monitor when a call deadlocks). Long Online/Offline calls report progress
// through the context with [ReportProgress].
//
// This package imports only the standard library and starts no goroutines.
package resource
