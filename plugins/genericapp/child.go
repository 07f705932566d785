package genericapp

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/sftkit/sft/internal/proc"
)

// Bounds on the cleanup after SIGKILL; a process in uninterruptible sleep
// (D state) can delay its death, and nothing here may hang for ever.
const (
	// groupGoneTimeout bounds the wait for the members of a killed group
	// to be reaped by their parents.
	groupGoneTimeout = 5 * time.Second
	// drainTimeout bounds the wait for the output readers to see EOF
	// once the group is gone (an escaped process may hold the pipe).
	drainTimeout = 250 * time.Millisecond
)

// child is one started process group: its leader, the exit watch on
// it, and the output readers. Its life: started -> exited (leader dead, not
// reaped) -> released (group SIGKILLed, reaping allowed) -> done (leader
// reaped, group gone or given up on, readers finished).
type child struct {
	proc *proc.Child
	pid  int // also the process group id
	box  containment
	log  *slog.Logger
	name string
	// oomBase is box.oomKills() at start; oom (valid after exited) is set
	// when the memory limit's OOM killer killed the leader.
	oomBase  int64
	oom      bool
	memLimit bool // a memory limit is set

	exited chan struct{} // closed once the leader has exited (still a zombie)
	exit   proc.Exit     // valid after exited
	// exitErr is set (before exited closes) if waitid failed, which
	// should never happen.
	exitErr error

	release chan struct{} // closed by killAndRelease
	done    chan struct{} // closed when everything is cleaned up
	leftErr error         // valid after done: members that would not die

	mu       sync.Mutex
	released bool
	stopping bool // Offline or Terminate asked for the exit
	online   bool // Online returned nil for this child

	readers sync.WaitGroup
	pipes   []*outPipe // "log" outputs
}

// onExit is called (by afterExit) when the leader died unasked while online.
type onExitFunc func(c *child, ex proc.Exit)

// startChild starts s's program through the spawner. It opens the output
// destinations and closes the parent's copies of the child's ends.
func startChild(sp *proc.Spawner, s *spec, box containment, log *slog.Logger, name string) (*child, error) {
	c := &child{
		box:      box,
		memLimit: s.limits.MemoryBytes > 0,
		log:      log,
		name:     name,
		exited:   make(chan struct{}),
		release:  make(chan struct{}),
		done:     make(chan struct{}),
	}
	l := &launch{
		path: s.path,
		argv: s.argv,
		attr: syscall.ProcAttr{
			Dir: s.dir,
			Env: s.env,
			Sys: &syscall.SysProcAttr{
				Setpgid:    true,
				Pdeathsig:  syscall.SIGKILL,
				Credential: s.cred,
			},
		},
	}
	if l.attr.Env == nil {
		l.attr.Env = []string{} // clean_env with no env: really empty
	}
	var childEnds []*os.File
	closeChildEnds := func() {
		for _, f := range childEnds {
			_ = f.Close()
		}
	}
	null, err := devNull()
	if err != nil {
		return nil, fmt.Errorf("stdin: %w", err)
	}
	files := [3]*os.File{null, null, null}
	for i, o := range []struct {
		stream string
		dest   string
	}{{"stdout", s.stdout}, {"stderr", s.stderr}} {
		switch o.dest {
		case OutputDiscard:
		case OutputLog:
			r, w, err := newOutPipe(o.stream, log, c.readers.Done)
			if err != nil {
				closeChildEnds()
				c.closePipes()
				return nil, fmt.Errorf("%s pipe: %w", o.stream, err)
			}
			childEnds = append(childEnds, w)
			c.pipes = append(c.pipes, r)
			files[i+1] = w
		default:
			f, err := os.OpenFile(o.dest, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
			if err != nil {
				closeChildEnds()
				c.closePipes()
				return nil, fmt.Errorf("%s: %w", o.stream, err)
			}
			childEnds = append(childEnds, f)
			files[i+1] = f
		}
	}
	for _, f := range files {
		l.attr.Files = append(l.attr.Files, f.Fd())
	}
	c.oomBase = box.oomKills()
	p, err := box.start(sp, l)
	runtime.KeepAlive(files)
	closeChildEnds()
	if err != nil {
		c.closePipes()
		return nil, err
	}
	c.proc = p
	c.pid = p.Pid
	for _, r := range c.pipes {
		c.readers.Add(1) // before: the end may come at once
		if !r.start(c.pid) {
			c.readers.Done()
		}
	}
	return c, nil
}

// launch is how to start a program: the arguments of
// syscall.StartProcess (attr.Files: stdin, stdout, stderr).
type launch struct {
	path string
	argv []string
	attr syscall.ProcAttr
}

// devNull is /dev/null opened once for reading and writing, the stdin of
// every program and the destination of discarded outputs: else it would be
// opened and closed up to three times per start (issue 15: a thousand
// starts at once).
var devNull = sync.OnceValues(func() (*os.File, error) { return os.OpenFile(os.DevNull, os.O_RDWR, 0) })

func (c *child) closePipes() {
	for _, r := range c.pipes {
		r.close()
	}
}

// watch has the leader's exit reported (proc.Child.OnExit: no goroutine
// stands for a running child) to afterExit, which runs on a goroutine of its
// own from then on.
func (c *child) watch(onExit onExitFunc) {
	c.proc.OnExit(func(ex proc.Exit, err error) { c.afterExit(onExit, ex, err) })
}

// afterExit learns of the leader's exit at once (without reaping), reports
// an unasked exit, then waits for the release, reaps the leader, waits
// (bounded) for the rest of the group to be gone and for the output
// readers to finish.
func (c *child) afterExit(onExit onExitFunc, ex proc.Exit, err error) {
	defer close(c.done)
	c.exit, c.exitErr = ex, err
	if ex.Signal == syscall.SIGKILL && c.memLimit {
		c.oom = c.sawOOM()
	}
	close(c.exited)

	c.mu.Lock()
	report := c.online && !c.stopping
	asked := c.stopping
	c.mu.Unlock()
	if report && onExit != nil {
		onExit(c, ex)
	}
	if !asked {
		// The application died on its own: what it left in its group
		// dies with it (the leader is still a zombie, so the group id is
		// still ours).
		c.killAndRelease()
	}
	<-c.release
	if err := c.proc.Reap(); err != nil { // the exit status is already in c.exit
		c.log.Error("reaping the process", "pid", c.pid, "err", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), groupGoneTimeout)
	c.leftErr = c.box.waitEmpty(ctx, c.pid)
	cancel()
	if c.leftErr != nil {
		c.log.Error("processes of the tree survived SIGKILL", "pgid", c.pid, "err", c.leftErr)
	}

	if len(c.pipes) == 0 {
		return // no output readers to wait for
	}
	drained := make(chan struct{})
	go func() { c.readers.Wait(); close(drained) }()
	t := time.NewTimer(drainTimeout)
	select {
	case <-drained:
	case <-t.C:
		// A process that left the group holds the pipe: stop reading.
		c.closePipes()
		<-drained
	}
	t.Stop()
	c.closePipes()
}

// sawOOM reports whether the memory limit's OOM killer killed a process
// since the start. The kernel counts the kill just after it sent SIGKILL
// (and logged it), so a leader that dies at once can be seen dead before
// the count moves: an unasked SIGKILL is checked again for up to 20 ms.
func (c *child) sawOOM() bool {
	for i := 0; ; i++ {
		if c.box.oomKills() > c.oomBase {
			return true
		}
		c.mu.Lock()
		asked := c.stopping || c.released
		c.mu.Unlock()
		if asked || i == 20 {
			return false
		}
		time.Sleep(time.Millisecond)
	}
}

// signal sends sig to the group unless it was already released (the leader
// may then be reaped and the group id is no longer safe to use).
func (c *child) signal(sig syscall.Signal) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.released {
		return nil
	}
	return c.box.signal(c.proc, sig)
}

// killAndRelease sends SIGKILL to the group (once) and lets afterExit reap
// the leader. Safe to call any number of times from any goroutine.
func (c *child) killAndRelease() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.released {
		return
	}
	if err := c.box.kill(c.pid); err != nil {
		c.log.Error("kill process tree", "pgid", c.pid, "err", err)
	}
	c.released = true
	close(c.release)
}

// hasExited reports whether the leader has exited.
func (c *child) hasExited() bool {
	select {
	case <-c.exited:
		return true
	default:
		return false
	}
}

// exitReason describes the leader's exit.
func (c *child) exitReason() string {
	if c.exitErr != nil {
		return fmt.Sprintf("process %d: %v", c.pid, c.exitErr)
	}
	if c.oom {
		return fmt.Sprintf("process %d %s by the memory limit (OOM)", c.pid, c.exit)
	}
	return fmt.Sprintf("process %d %s", c.pid, c.exit)
}
