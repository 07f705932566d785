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
// [ErrTransient], [ErrNodeLocal], [ErrConfiguration] to test. One rule decides:
// the outermost classified error in the chain wins (inner classes are shadowed
// for errors.Is too), and an unclassified error is transient ([IsTransient]).
//
// Resources grow by optional interfaces, never by changing the five methods:
// [FailureReporter] (push a failure the moment it is known), [Closer] (release
// the instance), [ProcessKiller] (kill the process that hosts the resource, used by
// the monitor when a call deadlocks or Terminate fails), [Prober] (tell whether
// the resource already runs here, when a node adopts a group), [PollScheduler]
// (run the health checks elsewhere, at the monitor's timing). Long
// Online/Offline calls report progress through the context with
// [ReportProgress]. [Timing] is sft's one timing type; package policy resolves
// and validates it. [StateStopFailed] is a resource that could not be stopped
// and may still run.
//
// [Lifecycle] is the plumbing a type would otherwise write itself: a call's
// context that Terminate cancels, a commit that Terminate's return makes
// impossible (no late write), and an idempotent cleanup under one mutex.
//
// This package imports only the standard library and starts no goroutines.
package resource
