package proc

import (
	"fmt"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// A spawner thread with a descriptor table of its own.
//
// clone copies the forking thread's descriptor table (dup_fd) and the
// child's exec closes every copied descriptor again (they are all
// close-on-exec: filp_flush, dnotify and POSIX-lock checks for each). In a
// plugin that holds a pidfd, two pipes and a cgroup handle per program it
// runs, starting the thousandth program closed about four thousand
// descriptors in the child and copied as many in the parent: the cost of a
// start grew with the number of programs already running, and starting n
// of them cost O(n²) (measured with perf in scalebench's online phase:
// do_close_on_exec was the largest kernel item of the starts).
//
// The thread therefore unshares its table (unshare(CLONE_FILES)) and
// closes its copies of everything but stdio and the epoll sets and
// eventfds (see runtimeKind; without /proc to tell them apart, every
// anonymous kernel object stays). Descriptors created later by other
// threads are not in its table; the few a start names are copied in for
// the start (pidfd_getfd on this process's pidfd, which reads the table of
// the thread group leader, the one every other thread shares) and closed
// after it.
//
// Why epoll sets and eventfds stay: the goroutine locked to this thread
// can end up running runtime code that uses the runtime's own descriptors
// by number (netpoll's epoll descriptor when a GC it triggered restarts
// the world, the eventfd that wakes the poller). They keep their numbers
// in the copy. Anything with a peer or a path (sockets, pipes, files,
// locked files) is closed, so that this thread never keeps a connection or
// a pipe open, or a lock held, after the rest of the process closed it.
//
// The thread must never run another goroutine: it stays locked until its
// goroutine exits, and the runtime then ends it. (The runtime starts new
// threads for a locked one from its template thread, so none inherits this
// table.)
type fdTable struct {
	self int // pidfd of this process, in this thread's table
}

// privateTables switches private tables off (a test compares both).
var privateTables = true

// ownTable gives the calling (locked) thread a table of its own. It
// returns nil if the kernel or a seccomp filter does not allow copying
// descriptors in, in which case nothing has changed. shared are the
// descriptors it opened in the process's table, which the caller closes
// from an ordinary goroutine (this thread can no longer reach them).
func ownTable() (t *fdTable, shared []int) {
	self, err := unix.PidfdOpen(syscall.Getpid(), 0)
	if err != nil {
		return nil, nil
	}
	// Probe pidfd_getfd before unsharing: after that there is no way back.
	probe, err := unix.PidfdGetfd(self, self, 0)
	if err != nil {
		_ = unix.Close(self)
		return nil, nil
	}
	_ = unix.Close(probe)
	// /proc/thread-self resolves to this thread when opened, so the
	// listing shows the private table once unshared.
	dir, err := unix.Open("/proc/thread-self/fd", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		dir = -1 // closeCopies tries every number instead
	}
	if err := unix.Unshare(unix.CLONE_FILES); err != nil {
		if dir >= 0 {
			_ = unix.Close(dir)
		}
		_ = unix.Close(self)
		return nil, nil
	}
	// Both exist in both tables now, with the same numbers.
	shared = []int{self}
	if dir >= 0 {
		shared = append(shared, dir)
	}
	closeCopies(dir, self)
	if dir >= 0 {
		_ = unix.Close(dir)
	}
	return &fdTable{self: self}, shared
}

// closeCopies closes every descriptor of this thread's (private) table
// from 3 up but skip, dir and the poller's (runtimeKind; without /proc,
// every anonymous kernel object). It lists dir (this thread's /proc fd
// directory), or without one tries every number below the descriptor
// limit.
func closeCopies(dir, skip int) {
	var fds []int
	if dir >= 0 {
		buf := make([]byte, 4096)
		for {
			n, err := unix.ReadDirent(dir, buf)
			if err != nil || n <= 0 {
				break
			}
			var names []string
			_, _, names = unix.ParseDirent(buf[:n], -1, names)
			for _, name := range names {
				if fd, err := strconv.Atoi(name); err == nil {
					fds = append(fds, fd)
				}
			}
		}
	} else {
		var rl unix.Rlimit
		limit := 1 << 16
		if unix.Getrlimit(unix.RLIMIT_NOFILE, &rl) == nil && rl.Cur < uint64(limit) {
			limit = int(rl.Cur)
		}
		for fd := 3; fd < limit; fd++ {
			fds = append(fds, fd)
		}
	}
	link := make([]byte, 64)
	for _, fd := range fds {
		if fd <= 2 || fd == dir || fd == skip {
			continue
		}
		if n, err := unix.Readlink("/proc/thread-self/fd/"+strconv.Itoa(fd), link); err == nil {
			if !runtimeKind(string(link[:n])) {
				_ = unix.Close(fd)
			}
			continue
		}
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT == 0 {
			continue // anonymous (no file type bits): no peer, no path
		}
		_ = unix.Close(fd)
	}
}

// runtimeKind: the kinds of descriptor the runtime's poller uses (an epoll
// set and an eventfd). Everything else is closed, also pidfds: a thread
// started while a thousand programs run would otherwise copy a thousand
// pidfds into every clone again.
func runtimeKind(link string) bool {
	return link == "anon_inode:[eventpoll]" || link == "anon_inode:[eventfd]"
}

// startProcess runs syscall.StartProcess with attr's descriptors copied
// into this table. It does not ask for a pidfd (it would be in this
// table); the caller opens one.
func (t *fdTable) startProcess(argv0 string, argv []string, attr *syscall.ProcAttr) (int, error) {
	var copies []int
	defer func() {
		for _, fd := range copies {
			_ = unix.Close(fd)
		}
	}()
	get := func(fd int) (int, error) {
		c, err := unix.PidfdGetfd(t.self, fd, 0)
		if err != nil {
			return -1, fmt.Errorf("descriptor %d for the child: %w", fd, err)
		}
		copies = append(copies, c)
		return c, nil
	}
	a := *attr
	sys := *attr.Sys
	a.Sys = &sys
	a.Files = make([]uintptr, len(attr.Files))
	for i, f := range attr.Files {
		if int(f) < 0 { // closed in the child
			a.Files[i] = f
			continue
		}
		c, err := get(int(f))
		if err != nil {
			return 0, err
		}
		a.Files[i] = uintptr(c)
	}
	if sys.UseCgroupFD {
		c, err := get(sys.CgroupFD)
		if err != nil {
			return 0, err
		}
		sys.CgroupFD = c
	}
	sys.PidFD = nil
	pid, _, err := syscall.StartProcess(argv0, argv, &a)
	return pid, err
}

func (t *fdTable) close() { _ = unix.Close(t.self) }
