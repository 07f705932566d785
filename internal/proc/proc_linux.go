package proc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Exit describes how a process ended.
type Exit struct {
	// Code is the exit code when the process exited normally, else -1.
	Code int
	// Signal is the signal that killed it, else 0.
	Signal syscall.Signal
	// CoreDumped is true when the kill dumped core.
	CoreDumped bool
}

// Signaled reports whether a signal ended the process.
func (e Exit) Signaled() bool { return e.Signal != 0 }

// String reads "exited with code 3" or "killed by signal SIGKILL (9)".
func (e Exit) String() string {
	if e.Signal != 0 {
		s := fmt.Sprintf("killed by signal %s (%d)", SignalName(e.Signal), int(e.Signal))
		if e.CoreDumped {
			s += ", core dumped"
		}
		return s
	}
	return fmt.Sprintf("exited with code %d", e.Code)
}

// SignalName returns "SIGTERM" for syscall.SIGTERM, or "signal 99" for an
// unknown number.
func SignalName(s syscall.Signal) string {
	if n := unix.SignalName(s); n != "" {
		return n
	}
	return "signal " + strconv.Itoa(int(s))
}

// ParseSignal accepts "SIGTERM", "TERM", "sigterm" or "15".
func ParseSignal(s string) (syscall.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return 0, fmt.Errorf("signal number %d out of range 1-64", n)
		}
		return syscall.Signal(n), nil
	}
	up := bytes.ToUpper([]byte(s))
	if !bytes.HasPrefix(up, []byte("SIG")) {
		up = append([]byte("SIG"), up...)
	}
	if sig := unix.SignalNum(string(up)); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("unknown signal %q", s)
}

// siginfo is the SIGCHLD view of the kernel's siginfo_t (64-bit layout).
type siginfo struct {
	Signo  int32
	Errno  int32
	Code   int32
	_      int32
	Pid    int32
	UID    uint32
	Status int32
	_      [100]byte
}

const (
	cldExited = 1
	cldKilled = 2
	cldDumped = 3
)

// WaitExit blocks until the child pid has exited and returns how, without
// reaping it: the child stays a zombie until the caller reaps it (for
// example with cmd.Wait), so its pid and process group id stay reserved.
//
// It waits on a pidfd through the runtime's network poller, so a waiting
// goroutine holds no OS thread (a thousand watched processes cost a
// thousand parked goroutines, not a thousand threads). Where pidfds are
// missing (Linux before 5.10) it falls back to a blocking waitid, which
// holds a thread like cmd.Wait does.
func WaitExit(pid int) (Exit, error) {
	if ex, err, ok := waitExitPidfd(pid); ok {
		return ex, err
	}
	return waitExitBlocking(pid)
}

func waitExitPidfd(pid int) (ex Exit, err error, ok bool) {
	fd, err := unix.PidfdOpen(pid, unix.O_NONBLOCK) // PIDFD_NONBLOCK
	if err != nil {
		return Exit{}, nil, false
	}
	f := os.NewFile(uintptr(fd), "pidfd")
	defer f.Close()
	return waitPidfd(f, pid)
}

// waitPidfd waits (WNOWAIT) for the exit of pid through its pidfd f,
// polled by the runtime's network poller; ok is false when f is not
// pollable.
func waitPidfd(f *os.File, pid int) (ex Exit, err error, ok bool) {
	rc, err := f.SyscallConn()
	if err != nil {
		return Exit{}, nil, false
	}
	var info siginfo
	var werr error
	rerr := rc.Read(func(fd uintptr) bool {
		info = siginfo{}
		werr = unix.Waitid(unix.P_PIDFD, int(fd), (*unix.Siginfo)(unsafe.Pointer(&info)),
			unix.WEXITED|unix.WNOWAIT|unix.WNOHANG, nil)
		if errors.Is(werr, syscall.EINTR) {
			werr = nil
			return false
		}
		// WNOHANG: pid 0 means "not exited yet"; wait until the pidfd
		// turns readable (the process exited) and try again.
		return werr != nil || info.Pid != 0
	})
	if rerr != nil {
		// The pidfd is not pollable here: use the blocking wait.
		return Exit{}, nil, false
	}
	if werr != nil {
		return Exit{}, fmt.Errorf("waitid pidfd %d: %w", pid, werr), true
	}
	ex, err = exitOf(pid, &info)
	return ex, err, true
}

// waitExitBlocking is WaitExit with a blocking waitid(P_PID).
func waitExitBlocking(pid int) (Exit, error) {
	var info siginfo
	for {
		err := unix.Waitid(unix.P_PID, pid, (*unix.Siginfo)(unsafe.Pointer(&info)), unix.WEXITED|unix.WNOWAIT, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return Exit{}, fmt.Errorf("waitid %d: %w", pid, err)
		}
		break
	}
	return exitOf(pid, &info)
}

func exitOf(pid int, info *siginfo) (Exit, error) {
	switch info.Code {
	case cldExited:
		return Exit{Code: int(info.Status)}, nil
	case cldKilled, cldDumped:
		return Exit{Code: -1, Signal: syscall.Signal(info.Status), CoreDumped: info.Code == cldDumped}, nil
	}
	return Exit{}, fmt.Errorf("waitid %d: unexpected si_code %d", pid, info.Code)
}

// The kernel's siginfo_t is 128 bytes; siginfo must overlay it exactly.
var _ [unsafe.Sizeof(unix.Siginfo{}) - unsafe.Sizeof(siginfo{})]byte
var _ [unsafe.Sizeof(siginfo{}) - unsafe.Sizeof(unix.Siginfo{})]byte

// SignalGroup sends sig to every process of group pgid. A group that no
// longer exists is not an error. Only call it while the group leader is
// unreaped (see the package documentation).
func SignalGroup(pgid int, sig syscall.Signal) error {
	if pgid <= 1 {
		return fmt.Errorf("proc: refusing to signal process group %d", pgid)
	}
	err := syscall.Kill(-pgid, sig)
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}

// GroupExists reports whether any process (zombies included) is in group
// pgid, probing with signal 0.
func GroupExists(pgid int) bool {
	if pgid <= 1 {
		return false
	}
	err := syscall.Kill(-pgid, 0)
	return !errors.Is(err, syscall.ESRCH)
}

// WaitGroupGone probes group pgid with signal 0 until it no longer exists
// (ESRCH) or ctx ends. It backs off from 100 us to 10 ms between probes.
// Use it after the group got SIGKILL and its leader was reaped: the members
// are then dying and only wait to be reaped by their parents.
func WaitGroupGone(ctx context.Context, pgid int) error {
	d := 100 * time.Microsecond
	var t *time.Timer
	for GroupExists(pgid) {
		if t == nil {
			t = time.NewTimer(d)
			defer t.Stop()
		} else {
			t.Reset(d)
		}
		select {
		case <-ctx.Done():
			members, _ := GroupMembers(pgid, true)
			return fmt.Errorf("process group %d still has members %v: %w", pgid, members, ctx.Err())
		case <-t.C:
		}
		d = min(2*d, 10*time.Millisecond)
	}
	return nil
}

// GroupMembers lists the pids whose process group is pgid by scanning /proc.
// With zombies false, processes that already exited and only wait to be
// reaped are left out. It is for tests and for shutdown paths, not for
// frequent liveness checks.
func GroupMembers(pgid int, zombies bool) ([]int, error) {
	sts, err := scan(func(st Stat) bool {
		return st.PGID == pgid && (zombies || !st.Zombie())
	})
	out := make([]int, 0, len(sts))
	for _, st := range sts {
		out = append(out, st.PID)
	}
	return out, err
}

// Children lists the processes whose parent is pid, zombies included (for
// leak checks in tests).
func Children(pid int) ([]Stat, error) {
	return scan(func(st Stat) bool { return st.PPID == pid })
}

func scan(keep func(Stat) bool) ([]Stat, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var out []Stat
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := ReadStat(pid)
		if err != nil {
			continue // gone meanwhile
		}
		if keep(st) {
			out = append(out, st)
		}
	}
	return out, nil
}

// Alive reports whether pid exists in /proc and is not a zombie. For tests
// and diagnostics.
func Alive(pid int) bool {
	st, err := ReadStat(pid)
	return err == nil && !st.Zombie()
}

// Stat is what /proc/PID/stat says about a process.
type Stat struct {
	PID   int
	State byte // 'R', 'S', 'Z', ...
	PPID  int
	PGID  int
}

// Zombie reports whether the process has exited and waits to be reaped.
func (s Stat) Zombie() bool { return s.State == 'Z' || s.State == 'X' }

// ReadStat reads /proc/pid/stat.
func ReadStat(pid int) (Stat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return Stat{}, err
	}
	return parseStat(b)
}

// parseStat parses "pid (comm) state ppid pgrp ..."; comm may contain spaces
// and parentheses, so the fields after it are found from the last ')'.
func parseStat(b []byte) (Stat, error) {
	bad := func() (Stat, error) { return Stat{}, fmt.Errorf("proc: bad stat %q", b) }
	i := bytes.LastIndexByte(b, ')')
	j := bytes.IndexByte(b, ' ')
	if i < 0 || j < 0 || i+1 > len(b) {
		return bad()
	}
	pid, err := strconv.Atoi(string(b[:j]))
	if err != nil {
		return bad()
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 3 || len(f[0]) != 1 {
		return bad()
	}
	ppid, err1 := strconv.Atoi(string(f[1]))
	pgid, err2 := strconv.Atoi(string(f[2]))
	if err1 != nil || err2 != nil {
		return bad()
	}
	return Stat{PID: pid, State: f[0][0], PPID: ppid, PGID: pgid}, nil
}

// SysProcAttr returns attributes for a child that leads a process group of
// its own (so SignalGroup reaches its descendants) and is sent SIGKILL when
// the thread that forked it exits (Pdeathsig: start it with a [Spawner] so
// that this means the parent process died).
func SysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// Spawner starts processes from a few goroutines ([SpawnThreads] per
// kind), each locked to its OS thread, so that the thread that forked a
// process (the one Pdeathsig watches) lives until the last user releases
// the spawner. Several threads let starts proceed in parallel (a fork of a
// large process takes a while); every one of them lives as long as the
// spawner, so the Pdeathsig argument is the same as with one. Obtain it
// with Acquire.
//
// There are two kinds of spawner thread, each started at its first use.
// [Spawner.Start] runs exec.Cmd.Start, which opens descriptors its caller
// uses afterwards, on threads that share the process's descriptor table.
// [Spawner.StartProcess] runs on threads with a descriptor table of their
// own (see fdtable_linux.go): a clone copies the forking thread's table and
// the exec closes every copied descriptor again, which in a process that
// holds a descriptor or four per child it runs costs each start time in
// proportion to the number already running (a thousand programs: the
// kernel closed four thousand descriptors per exec).
type Spawner struct {
	once     sync.Once
	released atomic.Bool
}

// SpawnThreads is the number of spawner threads of each kind.
const SpawnThreads = 4

var spawner struct {
	mu      sync.Mutex
	refs    int
	shared  *spawnPool // Start: threads in the process's descriptor table
	private *spawnPool // StartProcess: threads with tables of their own
}

type spawnPool struct {
	reqs chan spawnReq
	done chan struct{}
}

type spawnReq struct {
	// start runs on the spawner thread. t is the thread's own descriptor
	// table, or nil on a thread that shares the process's.
	start func(t *fdTable) error
	res   chan error
}

// Acquire returns a handle on the process-wide spawner threads (started
// at their first use). Every Acquire needs one Release; the threads exit
// after the last Release. Release only when every process started through
// the handle is gone.
func Acquire() *Spawner {
	spawner.mu.Lock()
	defer spawner.mu.Unlock()
	spawner.refs++
	return &Spawner{}
}

// startPool starts a pool's threads and returns once each is set up.
func startPool(private bool) *spawnPool {
	p := &spawnPool{reqs: make(chan spawnReq), done: make(chan struct{})}
	ready := make(chan []int, SpawnThreads)
	var wg sync.WaitGroup
	for range SpawnThreads {
		wg.Go(func() { spawnLoop(&wg, p.reqs, private, ready) })
	}
	go func() { wg.Wait(); close(p.done) }()
	for range SpawnThreads {
		for _, fd := range <-ready { // left in the process's table by ownTable
			_ = unix.Close(fd)
		}
	}
	return p
}

// onMainThread reports whether the calling (locked) goroutine runs on the
// process's main thread (a test overrides it).
var onMainThread = func() bool { return unix.Gettid() == unix.Getpid() }

func spawnLoop(wg *sync.WaitGroup, reqs <-chan spawnReq, private bool, ready chan<- []int) {
	runtime.LockOSThread()
	if private && privateTables && onMainThread() {
		// The main thread's table is the one every other thread shares
		// and the one pidfd_getfd copies from: it must never become
		// private. Keep the main thread locked (so that the goroutine
		// below cannot start on it) until another goroutine has locked
		// another thread for this loop, then let it go.
		moved := make(chan struct{})
		wg.Go(func() {
			runtime.LockOSThread()
			close(moved)
			serveSpawns(reqs, private, ready)
		})
		<-moved
		runtime.UnlockOSThread()
		return
	}
	serveSpawns(reqs, private, ready)
}

// serveSpawns runs a spawner thread's loop; the goroutine is locked to the
// thread once.
func serveSpawns(reqs <-chan spawnReq, private bool, ready chan<- []int) {
	var t *fdTable
	var shared []int
	if private && privateTables {
		t, shared = ownTable()
	}
	ready <- shared
	if t == nil {
		// Unlock before exiting: exiting locked would kill the thread,
		// and with it (through Pdeathsig) any child still alive.
		defer runtime.UnlockOSThread()
	} // else never unlocked: the thread, whose table is its own, must
	// never run another goroutine; it exits with this one.
	for r := range reqs {
		c0 := threadCPU()
		err := r.start(t)
		spawnStats.cpu.Add(int64(threadCPU() - c0))
		spawnStats.starts.Add(1)
		r.res <- err
	}
	if t != nil {
		t.close()
	}
}

// spawnStats counts the starts run by the spawner threads and their CPU.
var spawnStats struct{ starts, cpu atomic.Int64 }

// SpawnStats returns how many starts the spawner threads have run in this
// process and the CPU time (user and system) those threads spent in them:
// preparing the arguments, the clone and its bookkeeping in the kernel, the
// wait for the child's exec. It is the share of starting programs that any
// supervisor pays, measured where it is paid (RUSAGE_THREAD), so that a
// benchmark can tell it from the rest of its cost.
func SpawnStats() (starts int64, cpu time.Duration) {
	return spawnStats.starts.Load(), time.Duration(spawnStats.cpu.Load())
}

// threadCPU is the calling thread's CPU time.
func threadCPU() time.Duration {
	var ru unix.Rusage
	if unix.Getrusage(unix.RUSAGE_THREAD, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Release gives the handle back. It is idempotent per handle.
func (s *Spawner) Release() {
	s.once.Do(func() {
		s.released.Store(true)
		spawner.mu.Lock()
		defer spawner.mu.Unlock()
		spawner.refs--
		if spawner.refs == 0 {
			for _, p := range []*spawnPool{spawner.shared, spawner.private} {
				if p != nil {
					close(p.reqs)
					<-p.done
				}
			}
			spawner.shared, spawner.private = nil, nil
		}
	})
}

// Start runs cmd.Start on a spawner thread. Set cmd.SysProcAttr
// (Setpgid, Pdeathsig) before. Stdin, Stdout and Stderr should be nil or
// *os.File: other kinds make cmd.Start start copying goroutines, which is
// allowed but ties cmd.Wait to the pipes' end.
func (s *Spawner) Start(cmd *exec.Cmd) error {
	return s.run(false, func(*fdTable) error { return cmd.Start() })
}

// run runs start on a spawner thread of the kind asked for.
func (s *Spawner) run(private bool, start func(*fdTable) error) error {
	if s.released.Load() {
		return errors.New("proc: Start on a released spawner")
	}
	spawner.mu.Lock()
	if spawner.refs == 0 {
		spawner.mu.Unlock()
		return errors.New("proc: Start on a released spawner")
	}
	pp := &spawner.shared
	if private {
		pp = &spawner.private
	}
	if *pp == nil {
		*pp = startPool(private)
	}
	reqs := (*pp).reqs
	spawner.mu.Unlock()
	res := make(chan error, 1)
	reqs <- spawnReq{start: start, res: res}
	return <-res
}

// StartProcess starts argv0 with syscall.StartProcess on a spawner thread
// (set attr.Sys: Setpgid, Pdeathsig) and returns the child with a pidfd:
// os/exec without its extra handle. exec.Cmd keeps a pidfd of its own in
// os.Process, and a waiter needs another, two descriptors per child that
// every later fork copies and every exec closes again (a thousand
// programs started at once, issue 15). Errors are *os.PathError with Op
// "fork/exec", as from exec.Cmd.Start. attr.Sys.PidFD is overwritten.
//
// It runs on a thread with a descriptor table of its own: the descriptors
// attr names (Files, Sys.CgroupFD) are copied into it for the start, and
// the child's pidfd is opened afterwards (pidfd_open: the child is
// unreaped, so its pid cannot name another process). Where the kernel or a
// seccomp filter refuses that (Linux before 5.6), the thread shares the
// process's table and the clone makes the pidfd (CLONE_PIDFD).
func (s *Spawner) StartProcess(argv0 string, argv []string, attr *syscall.ProcAttr) (*Child, error) {
	if attr.Sys == nil {
		attr.Sys = &syscall.SysProcAttr{}
	}
	pidfd := -1
	var pid int
	own := false
	err := s.run(true, func(t *fdTable) error {
		var err error
		if t != nil {
			own = true
			pid, err = t.startProcess(argv0, argv, attr)
			return err
		}
		attr.Sys.PidFD = &pidfd
		pid, _, err = syscall.StartProcess(argv0, argv, attr)
		return err
	})
	if err != nil {
		return nil, &os.PathError{Op: "fork/exec", Path: argv0, Err: err}
	}
	if own {
		if fd, err := unix.PidfdOpen(pid, 0); err == nil {
			pidfd = fd
		}
	}
	c := &Child{Pid: pid, fd: -1}
	if pidfd >= 0 {
		if err := unix.SetNonblock(pidfd, true); err == nil {
			c.fd = pidfd
		} else {
			_ = unix.Close(pidfd)
		}
	}
	return c, nil
}

// Child is a process started by [Spawner.StartProcess]: its pid and, where
// the kernel has them (Linux 5.4+), the pidfd it was born with, the one
// handle to wait for it, signal it and reap it (no pid reuse can hit a
// stranger). Wait, then Reap, from one goroutine; Signal from any, until
// Reap.
type Child struct {
	// Pid is the child's pid (also its process group id with Setpgid).
	Pid    int
	fd     int // the pidfd, or -1
	reaped atomic.Bool
	// f is fd as a file of the runtime's poller, made by the first Wait
	// (OnExit needs none: a thousand children do not each hold a file
	// and a poller registration).
	fOnce sync.Once
	f     *os.File
	// wmu guards the OnExit watch against Reap.
	wmu    sync.Mutex
	onExit func(Exit, error)
}

// file returns the pidfd as a pollable file (nil without a pidfd).
func (c *Child) file() *os.File {
	if c.fd < 0 {
		return nil
	}
	c.fOnce.Do(func() { c.f = os.NewFile(uintptr(c.fd), "pidfd") })
	return c.f
}

// Wait blocks until the child has exited and returns how, without reaping
// it (see [WaitExit]). It holds no OS thread while it waits when the child
// has a pidfd.
func (c *Child) Wait() (Exit, error) {
	if f := c.file(); f != nil {
		if ex, err, ok := waitPidfd(f, c.Pid); ok {
			return ex, err
		}
	}
	return waitExitBlocking(c.Pid)
}

// Signal sends sig to the child (not its group) through its pidfd. A child
// that has exited and waits to be reaped is not an error; after Reap it is
// os.ErrProcessDone.
func (c *Child) Signal(sig syscall.Signal) error {
	if c.reaped.Load() {
		return os.ErrProcessDone
	}
	var err error
	if c.fd >= 0 {
		err = unix.PidfdSendSignal(c.fd, sig, nil, 0)
	} else {
		err = syscall.Kill(c.Pid, sig)
	}
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}

// Reap waits for the child's exit and reaps it, then closes its pidfd.
// Call it once, after the last Signal.
func (c *Child) Reap() error {
	if c.reaped.Swap(true) {
		return fmt.Errorf("reap %d: reaped already", c.Pid)
	}
	var err error
	if c.fd >= 0 {
		c.unwatch() // an OnExit not reported yet never will be
		var info siginfo
		for {
			err = unix.Waitid(unix.P_PIDFD, c.fd, (*unix.Siginfo)(unsafe.Pointer(&info)), unix.WEXITED, nil)
			if errors.Is(err, syscall.EAGAIN) {
				// Not exited yet (the pidfd is non-blocking): wait
				// for it, then reap.
				_, _ = c.Wait()
				continue
			}
			if !errors.Is(err, syscall.EINTR) {
				break
			}
		}
		c.fOnce.Do(func() {}) // no Wait makes the file from now on
		if c.f != nil {
			_ = c.f.Close()
		} else {
			_ = unix.Close(c.fd)
		}
	} else {
		var ws syscall.WaitStatus
		for {
			_, err = syscall.Wait4(c.Pid, &ws, 0, nil)
			if !errors.Is(err, syscall.EINTR) {
				break
			}
		}
	}
	if err != nil {
		return fmt.Errorf("reap %d: %w", c.Pid, err)
	}
	return nil
}
