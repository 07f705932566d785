// Package systemdsandbox boots the installed systemd as PID 1 inside fresh
// namespaces, for tests that need a real service manager on machines where
// systemd is not PID 1.
//
// Booting systemd loosely on such a machine is destructive: measured here,
// systemd-tmpfiles wiped the machine's whole /tmp and systemd-sysctl changed
// global sysctls. The sandbox therefore:
//
//   - clones a child into new pid, mount, uts, ipc, net and cgroup
//     namespaces, inside a cgroup of its own (cgroup v2, CLONE_INTO_CGROUP);
//   - makes every mount private, binds the host root recursively onto a new
//     root and makes that whole tree read-only (mount_setattr AT_RECURSIVE);
//   - detaches the copies of host mounts below the paths it replaces (the
//     host's /run/netns entries, say, which would pin network namespaces),
//     then mounts fresh tmpfs over /run, /tmp, /var/tmp, /var/log,
//     /var/lib/systemd, /root and /dev/shm, a fresh proc (with /proc/sys,
//     /proc/sysrq-trigger and friends read-only), a fresh read-only sysfs and
//     a cgroup2 hierarchy rooted at the sandbox's cgroup;
//   - binds a pty of its own over /dev/console (the parent reads the
//     master into [Sandbox.Output]) and /dev/null over /dev/kmsg, so nothing
//     reaches the host's console or kernel log;
//   - hides the host's generators and /etc/systemd/system behind empty
//     read-only tmpfs mounts, masks the early-boot units (see [MaskedUnits])
//     in /run/systemd/system.control, and boots a private target
//     (sft-sandbox.target, DefaultDependencies=no) instead of the default one;
//   - drops CAP_SYS_MODULE, CAP_SYS_TIME, CAP_SYS_RAWIO, CAP_SYSLOG,
//     CAP_WAKE_ALARM, CAP_MAC_ADMIN and CAP_MAC_OVERRIDE from the bounding set
//     and sets container=sft-systemd-sandbox, so systemd runs in container
//     mode (no clock, module or console setup);
//   - pivots into the new root and detaches the old one.
//
// Before systemd is exec'ed, the precautions are verified twice: by the child
// itself (every mount outside the tmpfs list is read-only and none is shared
// with the host, writes to /, /etc, /usr, /var and /proc/sys fail with EROFS,
// /tmp is an empty tmpfs that does not show the canary) and then by the
// parent from outside through /proc/PID/mountinfo and /proc/PID/root. Only
// when both pass does the parent let the child exec systemd. A canary file in
// the real /tmp is created before and checked after every boot; [Sandbox.Close]
// reports its loss as an error.
//
// D-Bus: systemd only answers clients inside its PID namespace, so the
// sandbox runs a small byte proxy (this binary again, under
// `nsenter -t PID -p`) that listens on a unix socket in the host's view and
// forwards each connection to /run/systemd/private inside the sandbox.
// [Sandbox.BusAddress] is that socket's D-Bus address; [Sandbox.DialBus]
// returns an authenticated private connection.
//
// Teardown ([Sandbox.Close], also on every failure path of [Start]) kills the
// sandbox's PID 1 by PID (the kernel then kills every process in its PID
// namespace, the proxy included), waits for the sandbox cgroup to empty,
// removes it and the work directory, and checks the canary.
//
// A test binary killed before Close (go test's timeout) cannot clean up: its
// sandbox dies with it (Pdeathsig on PID 1), and the next [Start] removes the
// work directory, empty cgroup and canary of every sandbox whose recorded
// owner process is gone. Work directories are removed entry by entry, never
// recursively (their root directory was a bind mount point of the host root
// inside the sandbox).
//
// Known limit: `systemctl daemon-reexec` (Manager.Reexecute) inside the
// sandbox does not come back (systemd keeps running but the private socket
// answers EOF); tests must not re-execute it.
//
// The child roles run from the same executable: a test binary that uses this
// package must call [Main] first thing in TestMain.
//
// Requirements: root, Linux with mount_setattr (5.12+), a cgroup2 hierarchy
// (pure or hybrid), systemd (Debian package "systemd"), nsenter (Debian
// package "util-linux").
package systemdsandbox
