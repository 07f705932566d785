// Package resourcetest helps test code that drives resources, and resource
// types themselves.
//
// For code that drives resources (the monitor, policy glue, a host), [Fake]
// is a scripted, fault-injecting resource.Resource and [Type] a
// resource.Type that opens Fakes. A test scripts faults before or after Open
// and then watches what the code under test did:
//
//   - fail calls: [Fake.FailNext] (the next N calls of a method fail, with a
//     classified error of your choice), [Fake.SetError] (fail until cleared),
//     [Fake.SetAlive] (flip LooksAlive and IsAlive);
//   - hang calls: [Fake.Block] with [Cancelable] (a slow call that honours
//     ctx and Terminate: "block past the timeout") or [Deadlock] (ignores
//     ctx and Terminate; only [Fake.Release], [Fake.ReleaseAll] or KillProcess
//     end it); [Fake.IgnoreTerminate]; slow calls: [Fake.SetDelay];
//   - push a failure: [Fake.PushFailure];
//   - long Online/Offline: [Fake.SetProgress] reports progress on a timer or
//     when the test calls [Fake.Step];
//   - observe: [Fake.Calls], [Fake.Log] (with time.Now timestamps),
//     [Fake.Methods], [Fake.Up], [Fake.Closed], [Fake.Kills],
//     [Fake.Violations] (serialization and Close contract breaches), and
//     wait for any of it with [Fake.Wait], [Fake.WaitCalls],
//     [Fake.WaitBlocked], [Type.WaitInstance].
//
// A Fake waits only on channels and timers and starts no goroutines, so it
// works inside a testing/synctest bubble: a blocked call is durably blocked
// and its timestamps are the bubble's fake time.
//
// For resource types, [Suite] runs the contract of resource.Resource as
// subtests on instances of a resource.Type: Validate and Open refuse bad
// properties naming the field; Online brings the resource up and Offline
// and Terminate leave nothing behind (probed by the Up hook, and again a
// while later); Terminate works from every state and makes a hanging
// Online return; every call returns soon after its ctx ends; LooksAlive is
// cheap. A failure names its rule ([RuleDownAfterStop], ...) once. Package
// plugins/plugintest runs the same suite through the gRPC shims and in a
// plugin process; every bundled type runs it, and so can anyone's plugin.
package resourcetest
