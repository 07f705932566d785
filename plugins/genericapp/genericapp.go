package genericapp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sftkit/sft/internal/health"
	"github.com/sftkit/sft/internal/proc"
	"github.com/sftkit/sft/resource"
)

// TypeName is the name of the type in a resource.Registry.
const TypeName = "genericapp"

// closeTimeout bounds the Terminate that Close runs.
const closeTimeout = 30 * time.Second

// errTerminated is the cause of an Online cancelled by Terminate.
var errTerminated = errors.New("terminated")

// New returns the genericapp resource type with default Options.
func New() resource.Type { return appType{} }

// Options configure the type. The zero value is the default.
type Options struct {
	// Node names this node in cgroup paths
	// (<v2 root>/sft/<node>/<resource>). Default: $SFT_NODE, else the
	// hostname.
	Node string
	// Containment is "auto" (cgroup when possible, else the fallback),
	// "cgroup" (Open fails without cgroups) or "fallback" (never
	// cgroups). Default: $SFT_GENERICAPP_CONTAINMENT, else "auto".
	Containment string
}

// NewWithOptions returns the genericapp resource type configured by o.
func NewWithOptions(o Options) resource.Type { return appType{opts: o} }

type appType struct{ opts Options }

var _ resource.Type = appType{}

func (appType) Name() string { return TypeName }

// node returns the node name for cgroup paths.
func (t appType) node() string {
	if t.opts.Node != "" {
		return t.opts.Node
	}
	if n := os.Getenv(NodeEnv); n != "" {
		return n
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "localhost"
}

// Validate decodes and checks the properties: every field, and that the
// executable, the working directory, the user and group and the output
// directories exist.
func (appType) Validate(ctx context.Context, props resource.Properties) error {
	c, err := decode(props)
	if err != nil {
		return err
	}
	_, err = c.resolve()
	return err
}

// Open validates the properties and returns an instance, not yet online.
// It sets up the instance's containment (see the package documentation):
// a leftover of a previous run of the same node and resource is killed
// here, before anything can start a second copy.
func (t appType) Open(ctx context.Context, req resource.OpenRequest) (resource.Resource, error) {
	c, err := decode(req.Properties)
	if err != nil {
		return nil, err
	}
	s, err := c.resolve()
	if err != nil {
		return nil, err
	}
	log := req.Log() // names the instance already (resource.OpenRequest.Logger)
	box, err := openContainment(ctx, t.opts.Containment, t.node(), req.Name, s.limits, log)
	if err != nil {
		return nil, resource.NodeLocal(fmt.Errorf("genericapp %s: containment: %w", req.Name, err))
	}
	return &App{name: req.Name, log: log, spec: s, box: box}, nil
}

// App is a genericapp instance. It implements resource.Resource,
// resource.FailureReporter and resource.Closer.
type App struct {
	name    string
	log     *slog.Logger
	spec    *spec
	box     containment
	spawner *proc.Spawner // acquired by the first Online, released by Close

	failure atomic.Pointer[func(error)]

	// callMu serializes Online and Offline (the monitor does already);
	// Terminate does not take it.
	callMu sync.Mutex

	mu           sync.Mutex
	cur          *child                  // the current process tree, if any
	cancelOnline context.CancelCauseFunc // set while Online runs
	onlineDone   chan struct{}           // closed when that Online returns
	closed       bool
}

var (
	_ resource.Resource        = (*App)(nil)
	_ resource.FailureReporter = (*App)(nil)
	_ resource.Closer          = (*App)(nil)
	_ resource.Contained       = (*App)(nil)
)

// SetFailureHandler installs fn, called (from the goroutine that learnt of the exit, without
// blocking) when the process exits while online. Nil removes it.
func (a *App) SetFailureHandler(fn func(err error)) {
	if fn == nil {
		a.failure.Store(nil)
		return
	}
	a.failure.Store(&fn)
}

// Containment describes how the instance's process tree is held: the
// cgroup and the limits applied (or why not), or the weaker fallback and
// why cgroups could not be used. It is also logged by Open.
func (a *App) Containment() string { return a.box.describe() }

// CgroupDir implements resource.Contained: the instance's cgroup v2
// directory, "" in the fallback containment.
func (a *App) CgroupDir() string {
	if b, ok := a.box.(*cgroupBox); ok {
		return b.g.Dir()
	}
	return ""
}

// Pid returns the pid (also the process group id) of the running process,
// or 0 when none is running.
func (a *App) Pid() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cur == nil || a.cur.hasExited() {
		return 0
	}
	return a.cur.pid
}

// Online starts the program in its containment (its cgroup, or a process
// group in the fallback) and returns once the readiness check passes
// (reporting progress after each attempt) or, without one, once the
// stabilization window is over. Online of a running instance returns nil.
// If the program exits or the check does not pass before ctx ends, Online
// kills the tree and returns an error.
func (a *App) Online(ctx context.Context) error {
	a.callMu.Lock()
	defer a.callMu.Unlock()

	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return errors.New("genericapp: Online after Close")
	}
	old := a.cur
	a.mu.Unlock()
	if old != nil {
		old.mu.Lock()
		running := old.online && !old.hasExited()
		old.mu.Unlock()
		if running {
			return nil
		}
		// A previous process that died or was abandoned: finish it.
		if err := a.finish(ctx, old); err != nil {
			return err
		}
	}

	if err := ctx.Err(); err != nil {
		return fmt.Errorf("genericapp %s: Online: %w", a.name, ctxErr(ctx))
	}
	a.mu.Lock()
	if a.closed {
		// Checked again in the same critical section that registers
		// this Online, so Close's Terminate either sees and cancels
		// it or Online sees Close.
		a.mu.Unlock()
		return errors.New("genericapp: Online after Close")
	}
	octx, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	a.cancelOnline, a.onlineDone = cancel, done
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		a.cancelOnline, a.onlineDone = nil, nil
		a.mu.Unlock()
		cancel(nil)
		close(done)
	}()

	c, err := a.start(octx)
	if err != nil {
		return err
	}
	if err := a.awaitReady(ctx, octx, c); err != nil {
		a.abandon(c)
		return err
	}
	c.mu.Lock()
	if c.hasExited() {
		c.mu.Unlock()
		a.abandon(c)
		return resource.Transient(fmt.Errorf("genericapp %s: %s during startup", a.name, c.exitReason()))
	}
	c.online = true
	c.mu.Unlock()
	return nil
}

// start starts the process and makes it current, unless Terminate ran
// meanwhile.
func (a *App) start(octx context.Context) (*child, error) {
	s := a.spec
	// The executable may have gone since Open.
	if _, err := lookPath(s.path, s.dir, ""); err != nil {
		return nil, resource.ConfigError("argv", s.argv[0], "%v", err)
	}
	a.mu.Lock()
	if a.spawner == nil {
		a.spawner = proc.Acquire()
	}
	sp := a.spawner
	a.mu.Unlock()
	c, err := startChild(sp, s, a.box, a.log, a.name)
	if err != nil {
		return nil, classifyStart(err)
	}
	c.watch(a.exited)

	a.mu.Lock()
	if octx.Err() != nil {
		a.mu.Unlock()
		a.abandon(c)
		return nil, fmt.Errorf("genericapp %s: Online: %w", a.name, ctxErr(octx))
	}
	a.cur = c
	a.mu.Unlock()
	a.log.Info("started", "pid", c.pid, "argv", s.argv)
	return c, nil
}

// classifyStart classifies an error from starting the process.
func classifyStart(err error) error {
	var ce containErr
	switch {
	case errors.As(err, &ce):
		return resource.Transient(fmt.Errorf("genericapp: start: %w", err))
	case errors.Is(err, syscall.ENOENT), errors.Is(err, syscall.EACCES), errors.Is(err, syscall.ENOEXEC):
		return resource.Configuration(fmt.Errorf("genericapp: start: %w", err))
	case errors.Is(err, syscall.EPERM):
		// Switching user or group without the privilege to.
		return resource.NodeLocal(fmt.Errorf("genericapp: start: %w", err))
	}
	return resource.Transient(fmt.Errorf("genericapp: start: %w", err))
}

// awaitReady runs the readiness check until it passes, the process exits
// or octx ends. Progress goes to ctx (the caller's, which the monitor
// watches).
func (a *App) awaitReady(ctx, octx context.Context, c *child) error {
	chk := a.spec.ready
	if chk == nil {
		return a.stabilize(octx, c)
	}
	wctx, cancel := context.WithCancelCause(octx)
	defer cancel(nil)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		select {
		case <-c.exited:
			cancel(errors.New(c.exitReason()))
		case <-stop:
		}
	}()
	err := health.Wait(wctx, chk, chk.Interval(), func(n int, err error) {
		msg := fmt.Sprintf("readiness %s: attempt %d passed", chk, n)
		if err != nil {
			msg = fmt.Sprintf("readiness attempt %d: %v", n, err)
		}
		resource.ReportProgress(ctx, msg)
		a.log.Debug(msg)
	})
	if err == nil {
		return nil
	}
	if c.hasExited() {
		return resource.Transient(fmt.Errorf("genericapp %s: %s before it was ready", a.name, c.exitReason()))
	}
	return resource.Transient(fmt.Errorf("genericapp %s: %w", a.name, err))
}

// stabilize waits the stabilization window (no readiness check): a
// program that exits within it is not online.
func (a *App) stabilize(octx context.Context, c *child) error {
	if a.spec.stabilize <= 0 {
		return nil
	}
	t := time.NewTimer(a.spec.stabilize)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-c.exited:
		return resource.Transient(fmt.Errorf("genericapp %s: %s within the stabilization window (%v)",
			a.name, c.exitReason(), a.spec.stabilize))
	case <-octx.Done():
		return fmt.Errorf("genericapp %s: Online: %w", a.name, ctxErr(octx))
	}
}

// exited is afterExit's report of an unasked exit while online.
func (a *App) exited(c *child, ex proc.Exit) {
	err := resource.Transient(fmt.Errorf("genericapp %s: %s", a.name, c.exitReason()))
	if fn := a.failure.Load(); fn != nil {
		(*fn)(err)
	}
	a.log.Warn("process exited", "pid", c.pid, "exit", ex.String())
}

// abandon kills c's tree and waits (bounded) until it is cleaned up,
// then forgets it.
func (a *App) abandon(c *child) {
	c.killAndRelease()
	ctx, cancel := context.WithTimeout(context.Background(), groupGoneTimeout+drainTimeout+time.Second)
	defer cancel()
	_ = a.finish(ctx, c)
}

// finish waits for c to be cleaned up (it must have been released or have
// exited unasked) and drops it as the current child.
func (a *App) finish(ctx context.Context, c *child) error {
	c.killAndRelease()
	select {
	case <-c.done:
	case <-ctx.Done():
		return fmt.Errorf("genericapp %s: waiting for process %d to be reaped: %w", a.name, c.pid, ctx.Err())
	}
	a.mu.Lock()
	if a.cur == c {
		a.cur = nil
	}
	a.mu.Unlock()
	return c.leftErr
}

// Offline sends the stop signal to the whole process tree, waits up to the
// grace period for the leader and every other member to exit, then kills
// the tree, reaps the leader and waits (bounded) until no member is left. Offline of a stopped instance returns nil.
func (a *App) Offline(ctx context.Context) error {
	a.callMu.Lock()
	defer a.callMu.Unlock()
	a.mu.Lock()
	c := a.cur
	a.mu.Unlock()
	if c == nil {
		return nil
	}
	c.mu.Lock()
	c.stopping = true
	c.mu.Unlock()
	sig := a.spec.stopSignal
	if err := c.signal(sig); err != nil {
		a.log.Warn("stop signal", "pgid", c.pid, "signal", proc.SignalName(sig), "err", err)
	}
	gctx, cancel := context.WithTimeout(ctx, a.spec.stopGrace)
	graceful := a.awaitTreeExit(gctx, c)
	cancel()
	if !graceful && !c.hasExited() && !a.goneNow(c) {
		a.log.Warn("stop grace period over, killing the process tree", "pgid", c.pid,
			"signal", proc.SignalName(sig), "grace", a.spec.stopGrace)
	}
	c.killAndRelease()
	if ctx.Err() != nil {
		return fmt.Errorf("genericapp %s: Offline: %w", a.name, ctx.Err())
	}
	if err := a.finish(ctx, c); err != nil {
		return resource.Transient(err)
	}
	a.log.Info("stopped", "pid", c.pid, "exit", c.exit.String())
	return nil
}

// awaitTreeExit waits until the leader and every other process of the
// tree have exited (true), or ctx ends (false). With a cgroup it watches
// cgroup.events; the fallback polls /proc.
func (a *App) awaitTreeExit(ctx context.Context, c *child) bool {
	select {
	case <-c.exited:
	case <-ctx.Done():
		return false
	}
	// The leader is gone (a zombie we hold); others may be shutting down.
	return c.box.waitEmpty(ctx, c.pid) == nil
}

// goneNow asks the kernel, not the exit watch, whether the leader has
// exited and the tree is empty: with a thousand programs stopping at once
// the exit notifications lag behind the grace timer on a loaded machine,
// and a program that obeyed the stop signal in time must not be reported
// as killed.
func (a *App) goneNow(c *child) bool {
	if proc.Alive(c.pid) { // the leader is our unreaped child: its pid is not reused
		return false
	}
	done, cancel := context.WithCancel(context.Background())
	cancel()
	return c.box.waitEmpty(done, c.pid) == nil
}

// Terminate kills the process tree at once with SIGKILL, cancels an
// Online in flight and waits for it, reaps the leader and waits (bounded by
// ctx) until no member of the tree is left. It is idempotent and may run
// concurrently with any other method.
func (a *App) Terminate(ctx context.Context) error {
	a.mu.Lock()
	if a.cancelOnline != nil {
		a.cancelOnline(errTerminated)
	}
	od := a.onlineDone
	c := a.cur
	a.mu.Unlock()
	if c != nil {
		c.mu.Lock()
		c.stopping = true
		c.mu.Unlock()
		c.killAndRelease()
	}
	if od != nil {
		select {
		case <-od:
		case <-ctx.Done():
			return fmt.Errorf("genericapp %s: Terminate: waiting for Online: %w", a.name, ctx.Err())
		}
	}
	a.mu.Lock()
	c = a.cur
	a.mu.Unlock()
	if c == nil {
		return nil
	}
	c.mu.Lock()
	c.stopping = true
	c.mu.Unlock()
	if err := a.finish(ctx, c); err != nil {
		return resource.Transient(err)
	}
	return nil
}

// LooksAliveInstant implements resource.InstantChecker: LooksAlive reads
// the exit watch's state from memory.
func (a *App) LooksAliveInstant() bool { return true }

// LooksAlive answers from the exit watch's state: nil while the process runs.
func (a *App) LooksAlive(ctx context.Context) error {
	a.mu.Lock()
	c := a.cur
	a.mu.Unlock()
	if c == nil {
		return resource.Transient(fmt.Errorf("genericapp %s: not running", a.name))
	}
	if c.hasExited() {
		return resource.Transient(fmt.Errorf("genericapp %s: %s", a.name, c.exitReason()))
	}
	return nil
}

// IsAliveInstant implements resource.InstantIsAliveChecker: without a
// health check IsAlive is LooksAlive, from memory.
func (a *App) IsAliveInstant() bool { return a.spec.health == nil }

// IsAlive is LooksAlive plus the health check (the readiness check when no
// health check is set), bounded by its timeout and ctx.
func (a *App) IsAlive(ctx context.Context) error {
	if err := a.LooksAlive(ctx); err != nil {
		return err
	}
	if a.spec.health == nil {
		return nil
	}
	if err := a.spec.health.Check(ctx); err != nil {
		return resource.Transient(fmt.Errorf("genericapp %s: %w", a.name, err))
	}
	return nil
}

// Close terminates the instance (bounded by 30 s) and releases the spawner
// thread. Later Onlines fail; Close is idempotent.
func (a *App) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	a.mu.Lock()
	wasClosed := a.closed
	a.closed = true // no Online starts anything from now on
	a.mu.Unlock()
	err := a.Terminate(ctx)
	if !wasClosed {
		a.mu.Lock()
		sp := a.spawner
		a.mu.Unlock()
		if sp != nil {
			sp.Release()
		}
		if err == nil {
			// The tree is empty: remove the cgroup. After a failed
			// Terminate it stays, and the next Open reclaims it.
			err = a.box.close()
		}
	}
	return err
}

// ctxErr is ctx's cause wrapped with ctx.Err() when they differ.
func ctxErr(ctx context.Context) error {
	cause, err := context.Cause(ctx), ctx.Err()
	if cause == nil || cause == err {
		return err
	}
	return fmt.Errorf("%w (%w)", cause, err)
}

var (
	_ resource.FailureReporter = (*App)(nil)
	_ resource.Closer          = (*App)(nil)
	_ resource.InstantChecker  = (*App)(nil)

	_ resource.InstantIsAliveChecker = (*App)(nil)
)
