// Package fdwatch calls a function when a file descriptor turns readable,
// for many descriptors at once, with no goroutine or thread of their own:
// a Set is one epoll set, with one goroutine parked in the runtime's
// network poller on it (an epoll descriptor is itself pollable) while
// anything is watched. Separate concerns use separate Sets, so that one
// whose callbacks can block (writing logs) never delays another's
// (process exits). A supervisor of a thousand programs watches a
// thousand pidfds and two thousand output pipes this way instead of
// parking three thousand goroutines (issue 15: about 4 KB of stack each).
//
// A Set's callbacks run one at a time on its goroutine: they must be quick and
// must not block (read what is there, hand longer work to a goroutine).
// They may call Add and Remove. A descriptor number reused after Remove
// and close never reaches the old callback (each Add has a generation in
// the event's data).
package fdwatch

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// Level-triggered readiness: a callback that leaves data unread is called
// again. Oneshot: the descriptor is removed before its callback runs.
const (
	Level   = false
	Oneshot = true
)

// ErrUnsupported: epoll is not available here; callers fall back to a
// goroutine of their own.
var ErrUnsupported = errors.New("fdwatch: epoll unavailable")

type entry struct {
	gen     uint32
	oneshot bool
	fn      func()
}

// Set is one epoll set and its goroutine. The zero value is ready; a Set
// must not be copied after first use.
type Set struct {
	mu      sync.Mutex
	epfd    int
	ep      *os.File // epfd, pollable
	wake    int      // an eventfd in the set: Remove of the last fd wakes the goroutine
	broken  bool
	running bool
	gen     uint32
	fds     map[int32]entry
}

// Add watches fd (which the caller keeps open until Remove) and calls fn
// when it is readable or hung up. With oneshot, fd is removed before fn
// runs. Adding a watched fd is an error.
func (w *Set) Add(fd int, oneshot bool, fn func()) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.initLocked(); err != nil {
		return err
	}
	if _, ok := w.fds[int32(fd)]; ok {
		return fmt.Errorf("fdwatch: fd %d watched already", fd)
	}
	w.gen++
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(fd), Pad: int32(w.gen)}
	if oneshot {
		ev.Events |= unix.EPOLLONESHOT
	}
	if err := unix.EpollCtl(w.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		return fmt.Errorf("fdwatch: add fd %d: %w", fd, err)
	}
	w.fds[int32(fd)] = entry{gen: w.gen, oneshot: oneshot, fn: fn}
	if !w.running {
		w.running = true
		go w.run()
	}
	return nil
}

// Remove stops watching fd (a no-op if it is not watched) and reports
// whether it was watched. Call it before closing fd. A callback already
// running may still finish after Remove returns: callbacks check their
// own state (a closed flag under their lock).
func (w *Set) Remove(fd int) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, ok := w.fds[int32(fd)]
	if ok {
		delete(w.fds, int32(fd))
		_ = unix.EpollCtl(w.epfd, unix.EPOLL_CTL_DEL, fd, nil)
		if len(w.fds) == 0 && w.running {
			// Wake the goroutine, parked on the set, so that it ends.
			_, _ = unix.Write(w.wake, []byte{1, 0, 0, 0, 0, 0, 0, 0})
		}
	}
	return ok
}

// Watched is the number of watched descriptors (tests, metrics).
func (w *Set) Watched() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.fds)
}

// Running reports whether the watcher's goroutine runs (tests).
func (w *Set) Running() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.running
}

func (w *Set) initLocked() error {
	if w.broken {
		return ErrUnsupported
	}
	if w.ep != nil {
		return nil
	}
	fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err == nil {
		err = unix.SetNonblock(fd, true)
		if err != nil {
			_ = unix.Close(fd)
		}
	}
	if err != nil {
		w.broken = true
		return fmt.Errorf("%w: %v", ErrUnsupported, err)
	}
	wake, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err == nil {
		ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(wake), Pad: 0}
		if err = unix.EpollCtl(fd, unix.EPOLL_CTL_ADD, wake, &ev); err != nil {
			_ = unix.Close(wake)
		}
	}
	if err != nil {
		_ = unix.Close(fd)
		w.broken = true
		return fmt.Errorf("%w: %v", ErrUnsupported, err)
	}
	w.epfd, w.ep, w.wake = fd, os.NewFile(uintptr(fd), "fdwatch-epoll"), wake
	w.fds = map[int32]entry{}
	return nil
}

func (w *Set) run() {
	rc, rcErr := w.ep.SyscallConn()
	var evs [128]unix.EpollEvent
	for {
		var n int
		var werr error
		wait := func(timeout int) bool {
			n, werr = unix.EpollWait(w.epfd, evs[:], timeout)
			if errors.Is(werr, syscall.EINTR) {
				n, werr = 0, nil
				return false
			}
			return werr != nil || n > 0
		}
		if rcErr != nil || rc.Read(func(uintptr) bool { return wait(0) }) != nil {
			// Not pollable (never seen): wait on a thread instead.
			wait(100)
		}
		if werr != nil {
			n = 0 // EBADF or EINVAL cannot happen on our own set; try again
		}
		for _, ev := range evs[:n] {
			if int(ev.Fd) == w.wake {
				var b [8]byte
				_, _ = unix.Read(w.wake, b[:])
				continue
			}
			w.mu.Lock()
			e, ok := w.fds[ev.Fd]
			if !ok || e.gen != uint32(ev.Pad) {
				w.mu.Unlock()
				continue // removed, or a reused number's stale event
			}
			if e.oneshot {
				delete(w.fds, ev.Fd)
				_ = unix.EpollCtl(w.epfd, unix.EPOLL_CTL_DEL, int(ev.Fd), nil)
			}
			w.mu.Unlock()
			e.fn()
		}
		w.mu.Lock()
		if len(w.fds) == 0 {
			w.running = false
			w.mu.Unlock()
			return
		}
		w.mu.Unlock()
	}
}
