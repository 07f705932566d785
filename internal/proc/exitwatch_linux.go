package proc

import (
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/sftkit/sft/internal/fdwatch"
)

// OnExit calls fn once, in a goroutine of its own, when the child has
// exited (not reaped: see [Child.Wait]). Until then nothing stands for
// the child but its pidfd in one epoll set for the exits of every child
// (package fdwatch): no goroutine and no thread per child (a supervisor of a
// thousand programs otherwise parks a thousand waiter goroutines, about
// 4 MB of stacks, issue 15).
//
// Call OnExit at most once per child. Reap cancels an OnExit that has not
// fired yet (fn is then never called); reap after fn ran to learn the
// exit. A child without a pidfd is waited for by a goroutine, as with
// Wait.
func (c *Child) OnExit(fn func(Exit, error)) {
	if c.fd < 0 {
		go func() { fn(c.Wait()) }()
		return
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.onExit = fn
	if err := exitSet.Add(c.fd, fdwatch.Oneshot, c.fired); err != nil {
		go func() { fn(c.Wait()) }()
	}
}

// fired runs on the watcher's goroutine when the pidfd turned readable:
// the child exited, or (spuriously) not yet, and then it is watched again.
func (c *Child) fired() {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.reaped.Load() {
		return // Reap came first: cancelled
	}
	fn := c.onExit
	var info siginfo
	err := unix.Waitid(unix.P_PIDFD, c.fd, (*unix.Siginfo)(unsafe.Pointer(&info)),
		unix.WEXITED|unix.WNOWAIT|unix.WNOHANG, nil)
	if err == nil && info.Pid == 0 { // not exited
		if exitSet.Add(c.fd, fdwatch.Oneshot, c.fired) == nil {
			return
		}
	}
	if err != nil || info.Pid == 0 {
		go func() { fn(c.Wait()) }()
		return
	}
	ex, xerr := exitOf(c.Pid, &info)
	go fn(ex, xerr)
}

// exitSet watches the pidfds of every Child with an OnExit: a Set of its
// own, so that no other use's callbacks delay an exit.
var exitSet fdwatch.Set

// unwatch cancels an OnExit that has not fired (Reap, under the child's
// reaped flag).
func (c *Child) unwatch() {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.reaped.Store(true)
	exitSet.Remove(c.fd)
}
