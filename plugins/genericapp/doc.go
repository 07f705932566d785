// Package genericapp is the "genericapp" resource type: it runs a program
// (no shell) as a highly available resource, like the Generic Application
// resource of a Windows failover cluster.
//
// [New] returns the [resource.Type]; register it in a resource.Registry or
// serve it as a plugin. The package imports only resource and sft's
// internal packages, so it works in-process as well as in a plugin.
//
// # Properties
//
//	name         default      meaning
//	argv         (required)   program and arguments, no shell; argv[0] without a slash is looked up in PATH
//	                          (env's PATH if given); a missing or non-executable program is a configuration error
//	env          {}           variables added to (and overriding) the environment
//	clean_env    false        start from an empty environment instead of the host process's
//	dir          host's cwd   absolute working directory; must exist
//	user         host's user  user name or numeric uid (needs root); its primary and supplementary groups apply
//	group        user's group group name or numeric gid (needs root)
//	stdout       "log"        "log" (each line to the injected logger, level Info, stream=stdout),
//	                          "discard" (/dev/null) or an absolute file path (appended, created 0644)
//	stderr       "log"        same as stdout, for stderr
//	stop_signal  "SIGTERM"    signal Offline sends to the process group: "SIGTERM", "TERM", "INT", "15", ...
//	stop_grace   10s          how long Offline waits after stop_signal before SIGKILL ("500ms", 2.5 = seconds; 0 = at once)
//	readiness    none         check that gates Online: {"tcp": "127.0.0.1:80"} | {"http": "http://127.0.0.1/healthz",
//	                          "expect_status": 200} | {"command": ["/usr/bin/check"]}, plus "interval" (1s) and
//	                          "timeout" (2s) per attempt; see package internal/health
//	health       readiness    check IsAlive runs (same shape); unset, IsAlive reuses readiness
//
// Every property is validated by Validate and Open; errors are
// resource.ConfigError values naming the property and the bad value.
//
// # Behaviour
//
// Online starts the program in a process group of its own (Setpgid) with
// Pdeathsig SIGKILL, so the program dies with the process that started it
// (the plugin, or the host when in-process) even if that process is
// SIGKILLed. Pdeathsig fires when the forking thread exits, not the
// process; the Go runtime retires threads that a goroutine locked and did
// not unlock (as network-namespace code does), so programs are started from
// one dedicated goroutine locked to its thread for as long as any instance
// is open (see package internal/proc). If a readiness check is set, Online
// returns only when it passes, calling resource.ReportProgress after every
// attempt; if the program exits first, or ctx ends, Online kills the group
// and returns a transient error.
//
// A waiter goroutine waits on the program's pidfd through the runtime
// poller (no OS thread held; blocking waitid on kernels without pidfds) and
// learns of its exit without reaping it (waitid WNOWAIT), so an exit is
// known the moment it happens: LooksAlive answers from that state (no /proc
// scan, no syscall), and an exit while online is pushed at once through the
// resource.FailureReporter handler, with the exit code or signal in the
// reason ("process 1234 killed by signal SIGKILL (9)"). Any exit counts as
// a failure, exit code 0 included: the program must stay in the foreground
// (a daemon that forks and exits is not supported). When the program dies
// on its own, whatever it left in its group is killed with it. IsAlive is
// LooksAlive plus the health check.
//
// Offline sends stop_signal to the group, waits up to stop_grace for the
// leader and every other member to exit, then sends SIGKILL to the group,
// reaps the leader and waits (up to 5 s) until the group is empty.
// Terminate sends SIGKILL to the group at once, cancels an Online in flight
// and waits for it, and reaps. Both are idempotent and safe to call
// concurrently with the other methods; no zombie and no group member
// outlives them. The leader is reaped only after the group got its
// SIGKILL, so the group id (the leader's pid) cannot have been reused by a
// stranger when it is signalled.
//
// # Limits
//
//   - A descendant that calls setsid() or setpgid() leaves the process
//     group and is not reached by group signals; only cgroups could follow
//     it (not used here). Offline and Terminate log and return an error if
//     group members survive SIGKILL for 5 s.
//   - Pdeathsig kills only the program itself when its parent process dies;
//     other members of its group survive that (they are reparented to
//     init). Killing the whole group on parent death would need a small
//     supervising process or a cgroup.
//   - PR_SET_CHILD_SUBREAPER is not set: a subreaper must wait for every
//     orphan, which would race with other users of os/exec in the same
//     process. Orphaned group members are reaped by init.
//   - Pdeathsig is cleared by the kernel when the program execs a set-user-ID
//     or file-capability binary.
//   - Running as another user needs root; without it Online fails with a
//     node-local error (EPERM).
package genericapp
