// Package proc controls process groups on Linux: it starts children from a
// thread that never exits (so that Pdeathsig is trustworthy), waits for a
// child's exit without reaping it (so that its pid, which is also its process
// group id, cannot be reused while the group is being signalled), and
// signals, probes and lists process groups. It is the one place for this:
// /proc/PID/stat parsing ([ReadStat], [Alive], [Children], [GroupMembers]),
// the child attributes ([SysProcAttr]) and the spawner threads are shared by
// package plugins (which reaps its plugin processes the race-free way
// below) and package genericapp.
//
// # Why a spawner thread
//
// SysProcAttr.Pdeathsig is delivered when the thread that forked the child
// exits, not when the process exits (go.dev/issue/27505). The Go runtime ends
// a thread when a goroutine that locked it exits without unlocking, which
// code that enters network namespaces does on purpose. A child forked from an
// ordinary runtime thread can therefore receive its "parent death" signal
// while the parent is alive and well. A [Spawner] runs cmd.Start on one of
// [SpawnThreads] goroutines, each locked to its own OS thread for as long as
// any user holds the spawner ([Acquire] / [Spawner.Release]); the threads
// exit only after the last release, when every child its users started is
// already gone. Several threads let starts run in parallel (1,000 programs
// started at once); each is as long-lived as a single one would be.
//
// [Spawner.StartProcess] runs on threads of a second kind, each with a
// descriptor table of its own (unshare(CLONE_FILES)) that holds only stdio
// and the runtime poller's descriptors: a clone copies the forking
// thread's table and the exec closes every copy again, so in a plugin that
// holds a few descriptors per program it runs, each start used to cost
// time in proportion to the programs already running. The descriptors a
// start names are copied in for it (pidfd_getfd, Linux 5.6+); without that
// the threads share the process's table as before. See fdtable_linux.go.
//
// # Why wait without reaping
//
// A process group id is the pid of its leader. Once the leader is reaped its
// number may be handed to a new process, which may make itself the leader of
// a group with the same id; signalling -pgid then hits a stranger. [WaitExit]
// blocks until the leader has exited but leaves it a zombie (waitid with
// WNOWAIT): while it is unreaped, kill(-pgid, ...) can only reach our group.
// Callers signal the group, then reap the leader (cmd.Wait), then only probe
// (signal 0) for leftovers, which is harmless even if the id were reused.
//
// [Spawner.StartProcess] starts a program without os/exec and returns a
// [Child] holding the pidfd the clone made: the one descriptor to wait for
// it (without reaping), signal it and reap it. exec.Cmd keeps a pidfd of
// its own and a waiter needs another, and every descriptor is copied by
// every later fork and closed again by every exec, which a thousand
// programs started at once pay a million times over. [Child.OnExit]
// reports its exit with no goroutine standing for it: its pidfd waits in
// one epoll set for the exits of every child (package fdwatch), whose one
// goroutine is parked in the runtime's poller.
//
// # Limits
//
// A process that calls setsid() or setpgid() leaves the group and escapes
// group signals; only a cgroup (systemd scope, cgroup v2 kill) can follow it.
// This package does not set PR_SET_CHILD_SUBREAPER: a subreaper must reap
// every orphan with wait(-1), which would steal exit statuses from os/exec in
// the same process. Orphaned members of a killed group are reparented to
// init (or the nearest subreaper) and reaped there.
package proc
