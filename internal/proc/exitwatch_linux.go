package proc

import (
	"errors"
	"os"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// OnExit calls fn once, in a goroutine of its own, when the child has
// exited (not reaped: see [Child.Wait]). Until then nothing stands for
// the child but an entry in one epoll set shared by every child of the
// process: no goroutine and no thread per child (a supervisor of a
// thousand programs otherwise parks a thousand waiter goroutines, about
// 4 MB of stacks, issue 15). One goroutine, parked in the runtime's
// poller on that epoll set, runs while any child is watched; it starts
// with the first OnExit and ends with the last exit.
//
// Call OnExit at most once per child. Reap cancels an OnExit that has not
// fired yet (fn is then never called); reap after fn ran to learn the
// exit. A child without a pidfd is waited for by a goroutine, as with
// Wait.
func (c *Child) OnExit(fn func(Exit, error)) {
	if c.fd < 0 || !exits.add(c, fn) {
		go func() { fn(c.Wait()) }()
	}
}

// exits is the process's exit watcher.
var exits exitWatch

type exitWatch struct {
	mu      sync.Mutex
	epfd    int      // 0 until first use
	ep      *os.File // epfd, pollable (an epoll fd is readable when it has events)
	broken  bool     // no epoll here: every OnExit falls back to a goroutine
	running bool     // the watcher goroutine runs
	waiting map[int]exitEntry
}

type exitEntry struct {
	c  *Child
	fn func(Exit, error)
}

// add registers c; false when the watcher cannot take it.
func (w *exitWatch) add(c *Child, fn func(Exit, error)) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.broken {
		return false
	}
	if w.ep == nil {
		fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
		if err != nil {
			w.broken = true
			return false
		}
		if err := unix.SetNonblock(fd, true); err != nil {
			_ = unix.Close(fd)
			w.broken = true
			return false
		}
		w.epfd, w.ep = fd, os.NewFile(uintptr(fd), "exitwatch-epoll")
		w.waiting = map[int]exitEntry{}
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLONESHOT, Fd: int32(c.fd)}
	if err := unix.EpollCtl(w.epfd, unix.EPOLL_CTL_ADD, c.fd, &ev); err != nil {
		return false
	}
	w.waiting[c.fd] = exitEntry{c: c, fn: fn}
	if !w.running {
		w.running = true
		go w.run()
	}
	return true
}

// remove forgets c (Reap before its exit was reported): its pidfd is
// about to be closed, and its number may come back for another child.
func (w *exitWatch) remove(c *Child) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if e, ok := w.waiting[c.fd]; ok && e.c == c {
		delete(w.waiting, c.fd)
		_ = unix.EpollCtl(w.epfd, unix.EPOLL_CTL_DEL, c.fd, nil)
	}
}

// run reports exits until no child is watched.
func (w *exitWatch) run() {
	rc, err := w.ep.SyscallConn()
	if err != nil {
		w.failAll()
		return
	}
	var evs [64]unix.EpollEvent
	for {
		var n int
		var werr error
		rerr := rc.Read(func(uintptr) bool {
			n, werr = unix.EpollWait(w.epfd, evs[:], 0)
			if errors.Is(werr, syscall.EINTR) {
				return false
			}
			return werr != nil || n > 0
		})
		if rerr != nil || werr != nil {
			// Not expected; hand every child to a goroutine of its own.
			w.failAll()
			return
		}
		for _, ev := range evs[:n] {
			w.fired(int(ev.Fd))
		}
		w.mu.Lock()
		if len(w.waiting) == 0 {
			w.running = false
			w.mu.Unlock()
			return
		}
		w.mu.Unlock()
	}
}

// fired handles a readable pidfd: the child exited (or, spuriously, not
// yet: then it is armed again).
func (w *exitWatch) fired(fd int) {
	w.mu.Lock()
	e, ok := w.waiting[fd]
	if !ok {
		w.mu.Unlock()
		return
	}
	var info siginfo
	err := unix.Waitid(unix.P_PIDFD, fd, (*unix.Siginfo)(unsafe.Pointer(&info)),
		unix.WEXITED|unix.WNOWAIT|unix.WNOHANG, nil)
	if err == nil && info.Pid == 0 { // not exited: arm again
		ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLONESHOT, Fd: int32(fd)}
		if unix.EpollCtl(w.epfd, unix.EPOLL_CTL_MOD, fd, &ev) == nil {
			w.mu.Unlock()
			return
		}
	}
	delete(w.waiting, fd)
	_ = unix.EpollCtl(w.epfd, unix.EPOLL_CTL_DEL, fd, nil)
	w.mu.Unlock()
	if err != nil || info.Pid == 0 {
		go func() { e.fn(e.c.Wait()) }()
		return
	}
	ex, xerr := exitOf(e.c.Pid, &info)
	go e.fn(ex, xerr)
}

// failAll hands every watched child to a waiting goroutine of its own and
// stops using epoll.
func (w *exitWatch) failAll() {
	w.mu.Lock()
	left := w.waiting
	w.waiting = map[int]exitEntry{}
	w.broken, w.running = true, false
	for fd := range left {
		_ = unix.EpollCtl(w.epfd, unix.EPOLL_CTL_DEL, fd, nil)
	}
	w.mu.Unlock()
	for _, e := range left {
		go func() { e.fn(e.c.Wait()) }()
	}
}

// watched reports how many children the watcher holds (tests).
func (w *exitWatch) watched() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.waiting)
}
