// Package health runs readiness and health checks for resources that watch
// something they do not own through a kernel handle: a TCP connect, an HTTP
// GET that must answer an expected status, or a command that must exit 0.
//
// A check is described by a [Config] (decoded from resource properties, for
// example the "readiness" and "health" properties of the genericapp type),
// validated with [Config.Validate] into configuration errors that name the
// property and the bad value, and turned into a [Check] with [New]:
//
//	chk, err := health.New("readiness", health.Config{HTTP: "http://127.0.0.1:8080/healthz"})
//	...
//	err = chk.Check(ctx)              // one attempt, bounded by the timeout
//	err = health.Wait(ctx, chk, chk.Interval(), onAttempt) // until it passes or ctx ends
//
// Exactly one of TCP, HTTP and Command is set in a Config. The defaults are an
// interval of 1 s, a timeout of 2 s per attempt and an expected HTTP status of
// 200.
//
// Behaviour worth knowing:
//   - HTTP checks do not follow redirects (a 301 is compared with the expected
//     status as it is), do not keep connections alive between attempts (a
//     check leaves no idle connection or goroutine behind), and read at most
//     64 KiB of the body.
//   - Command checks run without a shell, in a process group of their own;
//     on timeout or cancellation the whole group is killed with SIGKILL and
//     reaped before Check returns. They run with the checker's own user and
//     environment, with Pdeathsig SIGKILL, started from package proc's
//     spawner thread.
//   - Check errors are plain errors: whether a failed check is transient or
//     node-local is the caller's decision.
//
// The package starts no goroutine that outlives a call.
package health
