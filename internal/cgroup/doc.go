// Package cgroup contains process trees in Linux control groups: it finds
// the hierarchies in /proc/self/mountinfo (never a hard-coded path),
// creates a group, starts nothing itself but hands out the directory for
// CLONE_INTO_CGROUP (SysProcAttr.UseCgroupFD), kills a group whole and
// waits for it to be empty, applies memory, CPU and task limits, and
// removes the group.
//
// # Hierarchies
//
// Containment uses cgroup v2 only: a process started into a v2 group, and
// every descendant, stays in it whatever it does (setsid, double fork, new
// process groups); cgroup.kill (Linux 5.14+) kills all of them at once, and
// cgroup.events says when none is left ("populated 0"), which [Group.WaitEmpty]
// watches with inotify instead of polling /proc. Without cgroup.kill,
// [Group.Kill] freezes the group (cgroup.freeze), sends SIGKILL to each
// member and thaws it, so no fork can slip through.
//
// A unified system mounts v2 at /sys/fs/cgroup with the controllers in it. A
// hybrid system (as on our CI machines) mounts v2 at /sys/fs/cgroup/unified
// without controllers and binds memory, pids and cpu to v1 hierarchies
// under /sys/fs/cgroup/<controller>; cgroup.kill and cgroup.events still work
// on the v2 tree. [Group.SetLimits] puts each limit where its controller
// is: in the v2 group when the v2 root enables the controller (it then
// enables it in the group's parents, never in the root itself), else in a
// v1 group of the same name below this process's own v1 group for that
// controller (so the limits of whatever contains the caller still apply),
// else nowhere, with the reason in the returned [Applied]. Processes reach
// v1 groups by [Group.SyncV1], which moves every member of the v2 group
// until a pass finds none missing (v1 has no CLONE_INTO_CGROUP).
//
// [Claim] hands out an instance's group, locked (flock) so that a second
// live owner of the same name is seen, killing the leftovers of dead
// owners. It finds a name's siblings in an index of the parent directory
// that this process lists once and keeps exact with inotify, not by
// listing the parent at every Claim (quadratic with a thousand instances
// under one node).
//
// Directory names come from [EscapeName]: letters, digits, '_' and '-'
// stay, every other byte becomes %XX, so a name never contains '/' or '.'
// and never collides with an interface file.
package cgroup
