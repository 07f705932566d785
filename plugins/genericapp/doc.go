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
//	stop_signal  "SIGTERM"    signal Offline sends to every process of the tree: "SIGTERM", "TERM", "INT", "15", ...
//	stop_grace   10s          how long Offline waits after stop_signal before SIGKILL ("500ms", 2.5 = seconds; 0 = at once)
//	readiness    none         check that gates Online: {"tcp": "127.0.0.1:80"} | {"http": "http://127.0.0.1/healthz",
//	                          "expect_status": 200} | {"command": ["/usr/bin/check"]}, plus "interval" (1s) and
//	                          "timeout" (2s) per attempt; see package internal/health
//	health       readiness    check IsAlive runs (same shape); unset, IsAlive reuses readiness
//	stabilize    200ms        without readiness, how long Online watches the program before reporting it online;
//	                          an exit within it fails Online ("0" = report at once)
//	memory_limit none         memory cap of the whole tree: bytes, or "512MiB", "1G", "64k" (powers of 1024; >= 1 MiB)
//	cpu_limit    none         CPU cap of the tree in CPUs (0.5 = half a CPU; 0.01 to 4096)
//	tasks_limit  none         cap on processes and threads of the tree (fork fails beyond it)
//
// Every property is validated by Validate and Open; errors are
// resource.ConfigError values naming the property and the bad value.
//
// # Containment
//
// Each instance has a cgroup v2 group of its own,
// <v2 root>/sft/<node>/<resource> (names escaped: letters, digits, '_' and
// '-' stay, other bytes become %XX). The v2 root is found in
// /proc/self/mountinfo: /sys/fs/cgroup on a unified system,
// /sys/fs/cgroup/unified on a hybrid one. <node> is [Options].Node, else
// $SFT_NODE (hosts set it for their plugin processes, which inherit it),
// else the hostname; <resource> is the OpenRequest name. Open creates the
// group and holds a lock on it (flock on the directory) for as long as the
// instance lives; Close removes it.
//
// The program is cloned straight into the group (CLONE_INTO_CGROUP), so no
// descendant is ever outside it, whatever it does (setsid, double fork, new
// process groups). On kernels without it (before Linux 5.7) the program is
// moved into the group right after it started, with a Warn log: a fork in
// its first instant would escape. Offline sends stop_signal to every
// process of the group (the program through the pidfd it was born with,
// the others each through a pidfd, checked to be in the group), waits up
// to stop_grace for the group to be empty (a group seen empty once is not
// read again), then kills what is left whole
// (cgroup.kill, or freeze, SIGKILL each, thaw on kernels without it) and
// returns once cgroup.events says "populated 0" (watched with inotify, not
// /proc polling). Terminate kills the group at once. Orphans that init reaps late do not delay
// either: a dead process leaves the group when it dies, not when reaped.
//
// What survives a SIGKILL of the host or of the plugin process: the
// program itself dies at once (Pdeathsig); its descendants keep running in
// the group, unsupervised, until the next Open of the same node and
// resource (the relaunched plugin, within milliseconds for a plugin crash;
// the restarted host, when it opens its resources). That Open finds the
// group unlocked (its owner is dead), kills what runs there and waits for it
// to be empty before returning, so there is never a second copy next to an
// old one; it logs "killed the leftover of a previous run" with the pids.
// If the host is never started again, they run until the machine stops. A
// group that a live owner holds (a second host with the same node name on
// this machine) is left alone: the instance takes a sibling group
// <resource>.<pid>_<n> (so leftovers are still found); set SFT_NODE per
// host to avoid that.
//
// Limits (memory_limit, cpu_limit, tasks_limit) go into the v2 group when
// the v2 root enables the controller, else into the controller's v1
// hierarchy (hybrid systems: /sys/fs/cgroup/memory, .../pids, .../cpu, in a
// group of the same name below the plugin's own v1 group), else nowhere:
// each limit that could not be applied is logged at Warn with the reason,
// and [App.Containment] lists every limit and where it went. When the
// memory limit's OOM killer kills the program, the failure says so
// ("killed by signal SIGKILL (9) by the memory limit (OOM)"); the kernel
// counts the kill just after sending it, so with a memory limit set a
// SIGKILL the instance did not send is reported up to 20 ms later while
// the count is checked again.
//
// Without cgroups (no cgroup2 mount, no permission, a container without
// delegation) or with [Options].Containment or $SFT_GENERICAPP_CONTAINMENT
// set to "fallback", containment is weaker, and Open says so in a Warn log
// and in [App.Containment]: the process is made a child subreaper
// (PR_SET_CHILD_SUBREAPER), the program runs in its own process group with
// SFT_GENERICAPP_INSTANCE=<node>/<resource> in its environment, and
// Offline and Terminate signal the group, every descendant of the program
// (by parent pid) and every process carrying that variable, polling /proc
// until none is left. A process that clears its environment and escapes
// the group before it is seen is not followed; after a host or plugin
// SIGKILL, the next Open kills the processes that carry the variable and
// hang (through marked ancestors) below init or below the opening process,
// waiting up to 5 s (polling) for them to die; limits are not applied. The subreaper setting is process-wide
// (the plugin process, or the host when in-process): orphans of other
// children end up there too, and tree members that exit on their own stay
// zombies until the next Offline or Terminate reaps them. "cgroup" makes
// Open fail instead of falling back.
//
// # Behaviour
//
// Online starts the program with Pdeathsig SIGKILL, so the program dies
// with the process that started it (the plugin, or the host when
// in-process) even if that process is SIGKILLed. Pdeathsig fires when the
// forking thread exits, not the process; the Go runtime retires threads
// that a goroutine locked and did not unlock (as network-namespace code
// does), so programs are started from a few dedicated goroutines, each
// locked to its thread for as long as any instance is open (see package
// internal/proc).
// If a readiness check is set, Online returns only when it passes, calling
// resource.ReportProgress after every attempt; if the program exits first,
// or ctx ends, Online kills the tree and returns a transient error. Without
// one, Online waits the stabilization window (stabilize).
//
// The program's pidfd sits in one epoll set shared by every program of
// the process (proc.Child.OnExit: no goroutine or thread per running
// program; a goroutine and a blocking waitid on kernels without pidfds),
// and its exit is learnt without reaping it (waitid WNOWAIT), so an exit is
// known the moment it happens: LooksAlive answers from that state (no /proc
// scan, no syscall), and an exit while online is pushed at once through the
// resource.FailureReporter handler, with the exit code or signal in the
// reason ("process 1234 killed by signal SIGKILL (9)"). Any exit counts as
// a failure, exit code 0 included: the program must stay in the foreground
// (a daemon that forks and exits is not supported). When the program dies
// on its own, whatever it left in its tree is killed with it. IsAlive is
// LooksAlive plus the health check; without one it answers from memory too
// (resource.InstantIsAliveChecker), and the monitor and the plugin call it
// inline from their sweeps.
//
// Offline and Terminate (see Containment) are idempotent and safe to call
// concurrently with the other methods; no zombie and no process of the tree
// outlives them. The leader is reaped only after the tree got its SIGKILL.
//
// # Limits
//
//   - The program must stay in the foreground: any exit of it counts as a
//     failure, and kills the rest of its tree.
//   - Pdeathsig is cleared by the kernel when the program execs a set-user-ID
//     or file-capability binary; the tree is still reclaimed at the next
//     Open.
//   - Running as another user needs root; without it Online fails with a
//     node-local error (EPERM).
//   - Since Linux 6.14 a process cloned into a group that was killed through
//     cgroup.kill is killed at birth; the group is therefore recreated
//     before each start that follows such a kill (internal/cgroup Renew).
package genericapp
