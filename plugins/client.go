package plugins

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sftkit/sft/internal/callhint"
	pb "github.com/sftkit/sft/plugins/internal/proto/sftresourcev1"
	"github.com/sftkit/sft/resource"
)

// remoteType is a resource.Type served by a plugin process.
type remoteType struct {
	h        *Pool
	name     string
	timing   resource.Timing
	isolated bool
}

var (
	_ resource.Type           = (*remoteType)(nil)
	_ resource.TimingProvider = (*remoteType)(nil)
)

func (t *remoteType) Name() string { return t.name }

// DefaultTiming is the plugin-side type's DefaultTiming, as announced in Info.
func (t *remoteType) DefaultTiming() resource.Timing { return t.timing }

// splitProps removes the host-side properties and returns the rest as JSON.
func splitProps(props resource.Properties) (isolate bool, js []byte, err error) {
	if v, ok := props[PropIsolate]; ok {
		b, isBool := v.(bool)
		if !isBool {
			return false, nil, resource.ConfigError(PropIsolate, v, "want true or false")
		}
		isolate = b
		props = props.Clone()
		delete(props, PropIsolate)
	}
	js, err = propsToJSON(props)
	return isolate, js, err
}

func (t *remoteType) Validate(ctx context.Context, props resource.Properties) error {
	_, js, err := splitProps(props)
	if err != nil {
		return err
	}
	g, err := t.h.shared.ensure(ctx, false)
	if err != nil {
		return err
	}
	cctx, done := joinCtx(ctx, g)
	defer done()
	_, err = g.rpc.Validate(cctx, &pb.ValidateRequest{Type: t.name, PropertiesJson: js})
	return callErr(ctx, g, "Validate", t.name, err)
}

// Open opens an instance in the plugin process (its own process when the
// type is isolated or the properties ask for it) and returns its proxy.
func (t *remoteType) Open(ctx context.Context, req resource.OpenRequest) (resource.Resource, error) {
	isolate, js, err := splitProps(req.Properties)
	if err != nil {
		return nil, err
	}
	p := &proxy{
		t:      t,
		name:   req.Name,
		props:  js,
		logger: req.Log(),
		line:   t.h.shared,
	}
	if isolate || t.isolated {
		if p.line, err = t.h.newIsolated(); err != nil {
			return nil, err
		}
		p.own = true
	}
	if _, _, _, err := p.attach(ctx, false); err != nil {
		p.mu.Lock()
		p.closed = true // an opening still running releases the instance
		p.mu.Unlock()
		if p.own {
			t.h.dropIsolated(p.line)
		}
		return nil, err
	}
	p.line.use(1)
	return p, nil
}

// schedule returns the plugin-side polling of the instance in g: the
// resource's own timing (resource.PollScheduler, set by the monitor) first,
// then Config, then the type's DefaultTiming, then 1 s / 10 s / 2 s / 2 s.
// Zero intervals (no plugin-side polling) when g's checks are remote.
func (p *proxy) schedule(g *gen) *pb.Schedule {
	if g.remote {
		return &pb.Schedule{}
	}
	p.mu.Lock()
	s := p.sched
	p.mu.Unlock()
	cfg, t := p.t.h.cfg, p.t.timing
	return &pb.Schedule{
		LooksAliveIntervalNs: int64(cmp(s.LooksAliveInterval, cfg.LooksAliveInterval, t.LooksAliveInterval, time.Second)),
		IsAliveIntervalNs:    int64(cmp(s.IsAliveInterval, cfg.IsAliveInterval, t.IsAliveInterval, 10*time.Second)),
		CheckTimeoutNs:       int64(cmp(s.CallTimeout, cfg.CallTimeout, t.CallTimeout, 2*time.Second)),
		DeadlockGraceNs:      int64(cmp(s.DeadlockTimeout-s.CallTimeout, cfg.DeadlockGrace, t.DeadlockTimeout-t.CallTimeout, 2*time.Second)),
	}
}

// SetPollSchedule implements resource.PollScheduler: the plugin polls the
// instance at t's intervals and within t's call timeout. It overrides
// Config's intervals and the type's defaults. Set before Online (as the
// monitor does), it travels with Online; set while the instance is online,
// it is sent to the plugin in the background (SetSchedule) and applies at
// once. It does not block.
func (p *proxy) SetPollSchedule(t resource.Timing) {
	p.mu.Lock()
	p.sched = t
	g, id, online := p.g, p.id, p.online
	p.mu.Unlock()
	if !online || g == nil || g.remote || g.isDead() {
		return // the next Online carries it
	}
	sched := p.schedule(g)
	timeout := p.t.h.cfg.StartTimeout // generous: a loaded host is no reason to lose it
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		cctx, done := joinCtx(ctx, g)
		defer done()
		_, err := g.rpc.SetSchedule(cctx, &pb.InstanceRequest{Instance: id, Schedule: sched})
		if err != nil && status.Code(err) != codes.Unimplemented && !g.isDead() {
			p.logger.Warn("sending the poll schedule to the plugin failed; it applies from the next Online", "error", err)
		}
	}()
}

// cmp returns the first positive duration.
func cmp(ds ...time.Duration) time.Duration {
	for _, d := range ds {
		if d > 0 {
			return d
		}
	}
	return 0
}

// proxy is a resource.Resource whose instance lives in a plugin process.
type proxy struct {
	t      *remoteType
	name   string
	props  []byte
	logger *slog.Logger
	line   *lineage
	own    bool // line belongs to this instance alone

	mu      sync.Mutex
	g       *gen // process holding the instance; may be dead
	id      uint64
	handler func(error)
	online  bool // between a successful Online and Offline/Terminate/failure
	// starting is set while Online is in flight: events that overtake the
	// end of the Online stream (the plugin polls at once) still count.
	starting bool
	looks    error // last result of the plugin-side LooksAlive
	isErr    error // last result of the plugin-side IsAlive
	closed   bool
	// cycle counts Online calls; the plugin tags events with the cycle of
	// the Online they belong to, and onEvent drops those of earlier ones.
	cycle   uint64
	sched   resource.Timing // from SetPollSchedule; zero fields: not set
	opening *opening        // the (re)open in progress, if any
	tree    tree            // the instance's cgroup in g (resource.Contained), if any
	kill    *treeKill       // the kill of tree after g died
	pre     *preTerm        // the plugin's own Terminate after a reported failure
}

// preTerm is the Terminate a plugin runs itself right after an online
// instance reported a failure (pb.Event.terminating): the host's Terminate,
// which the monitor calls next, waits for its end (KIND_TERMINATED)
// instead of a call of its own, one round trip through the plugin less on
// every crash-to-restart (issue 15).
type preTerm struct {
	g     *gen
	id    uint64
	cycle uint64
	done  chan struct{} // closed when err is set
	err   error         // the plugin's Terminate failed or was not done
}

func (t *preTerm) finish(err error) {
	select {
	case <-t.done:
	default:
		t.err = err
		close(t.done)
	}
}

// opening is one (re)open of an instance in a live plugin process: the
// launch if needed, the Open and, for a cleanup, the Terminate of the
// fresh instance. It runs on its own goroutine, so a caller whose ctx ends
// first loses nothing: whoever comes next finds the instance open (an Open
// abandoned half-way used to leave the instance open in the plugin, holding
// its cgroup, and every retry started again from nothing).
type opening struct {
	cleanup bool
	done    chan struct{} // closed when the fields below are set
	err     error         // the launch or the Open failed
	termErr error         // cleanup: the Terminate of the fresh instance failed
}

// maxOpens bounds the Opens in flight per Pool: after a crash of a process
// hosting a thousand instances, every instance is reopened at once, and
// the plugin answers the first ones first instead of all of them late.
const maxOpens = 16

// attach returns the process and instance id, (re)opening the instance in
// a new process when the old one died (see opening). cleanup: the relaunch
// is for Terminate, which does not wait for the backoff, and the fresh
// instance is terminated before it is handed out; cleaned reports that the
// opening this call waited for did that, so Terminate need not call again.
// An error with ctx's cause means the caller gave up while the opening went
// on.
func (p *proxy) attach(ctx context.Context, cleanup bool) (g *gen, id uint64, cleaned bool, err error) {
	for waited := false; ; waited = true {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, 0, false, fmt.Errorf("resource %q: %w: instance closed", p.name, ErrPluginExited)
		}
		if g := p.g; g != nil && !g.isDead() {
			id := p.id
			p.mu.Unlock()
			return g, id, false, nil
		}
		op := p.opening
		if op == nil {
			if waited {
				// The opening we waited for succeeded, and the process
				// died since: report that rather than loop.
				p.mu.Unlock()
				return nil, 0, false, p.exited("Open", p.g)
			}
			if op = p.startOpeningLocked(cleanup); op == nil {
				p.mu.Unlock()
				return nil, 0, false, errPoolClosed
			}
		}
		p.mu.Unlock()
		select {
		case <-op.done:
		case <-ctx.Done():
			return nil, 0, false, fmt.Errorf("resource %q: waiting for the plugin to (re)open the instance: %w", p.name, context.Cause(ctx))
		}
		if op.err != nil {
			return nil, 0, false, op.err
		}
		if op.cleanup && cleanup {
			p.mu.Lock()
			g, id := p.g, p.id
			p.mu.Unlock()
			if g != nil && !g.isDead() {
				return g, id, true, op.termErr
			}
		}
	}
}

// startOpeningLocked starts an opening of p (p.mu held, none running);
// nil once the Pool is closed.
func (p *proxy) startOpeningLocked(cleanup bool) *opening {
	if !p.t.h.beginLaunch() {
		return nil
	}
	op := &opening{cleanup: cleanup, done: make(chan struct{})}
	p.opening = op
	go p.reopen(op, p.g)
	return op
}

// treeKilled waits (bounded by ctx) for the kill of p's tree after dead
// died; nil when there is none.
func (p *proxy) treeKilled(ctx context.Context, dead *gen) (*treeKill, error) {
	select {
	case <-dead.cleared:
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for the kill of its cgroup: %w", context.Cause(ctx))
	}
	p.mu.Lock()
	k := p.kill
	p.mu.Unlock()
	if k == nil || k.g != dead {
		return nil, nil
	}
	select {
	case <-k.done:
		return k, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for the kill of its cgroup: %w", context.Cause(ctx))
	}
}

// preopen reopens p in the background when it still sits in the dead
// process prev (the lineage does this for every instance after a
// relaunch, so the restart after a crash finds them open).
func (p *proxy) preopen(prev *gen) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.g != prev || p.opening != nil {
		return
	}
	p.startOpeningLocked(false)
}

// reopen runs op (see opening) and clears p.opening. old is the process
// the instance was in (nil at the first Open).
func (p *proxy) reopen(op *opening, old *gen) {
	h := p.t.h
	defer h.launches.Done()
	defer close(op.done)
	defer func() {
		p.mu.Lock()
		p.opening = nil
		p.mu.Unlock()
	}()
	if old != nil {
		// Its cgroup is killed and removed first: the kill must not hit
		// what the new process starts there.
		if _, err := p.treeKilled(h.ctx, old); err != nil {
			op.err = errPoolClosed
			return
		}
	}
	g, err := p.line.ensure(h.ctx, op.cleanup)
	if err != nil {
		op.err = fmt.Errorf("resource %q: %w", p.name, err)
		return
	}
	select {
	case h.opens <- struct{}{}:
		defer func() { <-h.opens }()
	case <-g.ctx.Done():
		op.err = fmt.Errorf("resource %q: Open: %w", p.name, g.deathErr())
		return
	case <-h.ctx.Done():
		op.err = errPoolClosed
		return
	}
	ctx, cancel := context.WithTimeout(h.ctx, h.cfg.StartTimeout)
	defer cancel()
	cctx, done := joinCtx(ctx, g)
	defer done()
	sched := p.schedule(g)
	resp, err := g.rpc.Open(cctx, &pb.OpenRequest{
		Type:                 p.t.name,
		Name:                 p.name,
		PropertiesJson:       p.props,
		LooksAliveIntervalNs: sched.GetLooksAliveIntervalNs(),
		IsAliveIntervalNs:    sched.GetIsAliveIntervalNs(),
		CheckTimeoutNs:       sched.GetCheckTimeoutNs(),
		DeadlockGraceNs:      sched.GetDeadlockGraceNs(),
	})
	if err != nil {
		op.err = callErr(ctx, g, "Open", p.name, err)
		if h.ctx.Err() != nil {
			op.err = fmt.Errorf("resource %q: %w", p.name, errPoolClosed)
		}
		return
	}
	id := resp.GetInstance()
	if !g.add(id, p) {
		op.err = fmt.Errorf("resource %q: Open: %w", p.name, g.deathErr())
		return
	}
	p.mu.Lock()
	if p.closed { // closed while it opened: release it again
		p.mu.Unlock()
		g.remove(id)
		_, err := g.rpc.Close(cctx, &pb.InstanceRequest{Instance: id})
		op.err = fmt.Errorf("resource %q: %w: instance closed (%v)", p.name, ErrPluginExited, callErr(ctx, g, "Close", p.name, err))
		return
	}
	p.g, p.id, p.tree = g, id, h.treeOf(resp.GetCgroup())
	p.online, p.looks, p.isErr = false, nil, nil
	p.mu.Unlock()
	if op.cleanup {
		_, err := g.rpc.Terminate(cctx, &pb.InstanceRequest{Instance: id})
		op.termErr = callErr(ctx, g, "Terminate", p.name, err)
	}
}

// joinCtx returns ctx canceled also when g's process dies: a dead plugin
// is an error, never a hang.
func joinCtx(ctx context.Context, g *gen) (context.Context, func()) {
	cctx, cancel := context.WithCancelCause(ctx)
	stop := context.AfterFunc(g.ctx, func() { cancel(g.deathErr()) })
	return cctx, func() { stop(); cancel(nil) }
}

// callErr maps the error of a call through g.
func callErr(ctx context.Context, g *gen, op, name string, err error) error {
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return fmt.Errorf("%s %q: %w", op, name, context.Cause(ctx))
	}
	if g.isDead() {
		return fmt.Errorf("%s %q: %w", op, name, g.deathErr())
	}
	return errorFromStatus(ctx, op, err)
}

func (p *proxy) pending(ctx context.Context, online bool) error {
	op := "Offline"
	if online {
		op = "Online"
	}
	p.mu.Lock()
	p.online, p.starting = false, false
	if p.pre != nil {
		// Online or Offline without the Terminate: the plugin orders
		// them after its own (its call slot).
		p.pre.finish(errors.New("the instance was called again"))
		p.pre = nil
	}
	if online {
		p.starting, p.looks, p.isErr = true, nil, nil
		p.cycle++
	}
	cycle := p.cycle
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.starting = false
		p.mu.Unlock()
	}()
	g, id, _, err := p.attach(ctx, false)
	if err != nil {
		return err
	}
	req := &pb.InstanceRequest{Instance: id}
	if online {
		req.Cycle, req.Schedule = cycle, p.schedule(g)
	}
	if cs := g.callStream(); cs != nil {
		m := pb.CallRequest_METHOD_OFFLINE
		if online {
			m = pb.CallRequest_METHOD_ONLINE
		}
		if err := p.onStream(ctx, g, cs, m, req, op); err != nil {
			return err
		}
	} else if err := p.pendingRPC(ctx, g, req, online, op); err != nil {
		return err
	}
	if online {
		p.mu.Lock()
		if p.g == g && p.id == id {
			p.online = p.starting
		}
		p.mu.Unlock()
	}
	return nil
}

// onStream runs a call on g's call stream: the resource's error as the
// plugin returned it, or the call's own failure mapped as callErr maps a
// failed RPC's. No joinCtx: the stream ends with the process, and the
// call with it.
func (p *proxy) onStream(ctx context.Context, g *gen, cs *callStream, m pb.CallRequest_Method, req *pb.InstanceRequest, op string) error {
	remote, err := cs.call(ctx, m, req)
	if err != nil {
		return callErr(ctx, g, op, p.name, err)
	}
	return remote
}

// pendingRPC runs Online or Offline as a gRPC call of its own (a plugin
// without the call stream).
func (p *proxy) pendingRPC(ctx context.Context, g *gen, req *pb.InstanceRequest, online bool, op string) error {
	cctx, done := joinCtx(ctx, g)
	defer done()
	var stream interface {
		Recv() (*pb.Progress, error)
	}
	var err error
	if online {
		stream, err = g.rpc.Online(cctx, req)
	} else {
		stream, err = g.rpc.Offline(cctx, req)
	}
	if err != nil {
		return callErr(ctx, g, op, p.name, err)
	}
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return callErr(ctx, g, op, p.name, err)
		}
		resource.ReportProgress(ctx, msg.GetMessage())
	}
}

// Online (re)opens the instance in a live plugin process if needed and
// brings it online there. Progress reports reach ctx's progress function.
func (p *proxy) Online(ctx context.Context) error { return p.pending(ctx, true) }

// Offline takes the instance offline in the plugin process.
func (p *proxy) Offline(ctx context.Context) error { return p.pending(ctx, false) }

// LooksAliveInstant implements resource.InstantChecker: while the instance
// is online and checks run in the plugin, LooksAlive answers from memory.
func (p *proxy) LooksAliveInstant() bool {
	p.mu.Lock()
	g, online := p.g, p.online
	p.mu.Unlock()
	return online && g != nil && !g.remote && !g.isDead()
}

// IsAliveInstant implements resource.InstantIsAliveChecker: while the
// instance is online, checks run in the plugin and its LooksAlive passes,
// IsAlive answers from memory too.
func (p *proxy) IsAliveInstant() bool {
	p.mu.Lock()
	g, online, looks := p.g, p.online, p.looks
	p.mu.Unlock()
	return online && looks == nil && g != nil && !g.remote && !g.isDead()
}

// LooksAlive answers from the plugin-side LooksAlive sweep's last result
// without a call (see the package doc), or with a call when
// Config.RemoteChecks is set. A dead plugin process is ErrPluginExited.
func (p *proxy) LooksAlive(ctx context.Context) error {
	p.mu.Lock()
	g, id, looks, isErr, online := p.g, p.id, p.looks, p.isErr, p.online
	p.mu.Unlock()
	if g == nil || g.isDead() {
		return p.exited("LooksAlive", g)
	}
	if online && !g.remote {
		if looks == nil {
			return isErr // a failure the plugin already knows of
		}
		return looks
	}
	// Not online (the monitor does not poll then) or remote mode: ask.
	return p.check(ctx, g, id, false)
}

// IsAlive answers from the plugin-side IsAlive's last result while the
// instance is online and its LooksAlive passes; otherwise (the monitor
// confirming a failed LooksAlive, or Config.RemoteChecks) it calls IsAlive
// in the plugin.
func (p *proxy) IsAlive(ctx context.Context) error {
	p.mu.Lock()
	g, id, online, looks, isErr := p.g, p.id, p.online, p.looks, p.isErr
	p.mu.Unlock()
	if g == nil || g.isDead() {
		return p.exited("IsAlive", g)
	}
	if online && looks == nil && !g.remote {
		return isErr
	}
	return p.check(ctx, g, id, true)
}

func (p *proxy) exited(op string, g *gen) error {
	if g == nil {
		return fmt.Errorf("%s %q: %w", op, p.name, ErrPluginExited)
	}
	return fmt.Errorf("%s %q: %w", op, p.name, g.deathErr())
}

func (p *proxy) check(ctx context.Context, g *gen, id uint64, thorough bool) error {
	req := &pb.InstanceRequest{Instance: id}
	op, m := "LooksAlive", pb.CallRequest_METHOD_LOOKS_ALIVE
	if thorough {
		op, m = "IsAlive", pb.CallRequest_METHOD_IS_ALIVE
	}
	if cs := g.callStream(); cs != nil {
		return p.onStream(ctx, g, cs, m, req, op)
	}
	cctx, done := joinCtx(ctx, g)
	defer done()
	var err error
	if thorough {
		_, err = g.rpc.IsAlive(cctx, req)
	} else {
		_, err = g.rpc.LooksAlive(cctx, req)
	}
	return callErr(ctx, g, op, p.name, err)
}

// Terminate terminates the instance in the plugin, cancelling its calls in
// flight. When the plugin process died, the instance is reopened in a new
// process and terminated there, so the type can remove what the dead one
// left behind (an address, a lock); the dead process's group is already
// killed. A Terminate that gives up (ctx) while that reopening still runs
// reached no live process: its error is marked resource.Collateral (the
// process, not the resource, is at fault), which tells the monitor that
// killing the hosting process would free nothing, and the reopening goes
// on for the next call.
func (p *proxy) Terminate(ctx context.Context) error {
	p.mu.Lock()
	p.online = false
	pre := p.pre // stays set until its end arrives (onEvent)
	if pre != nil && (pre.g != p.g || pre.id != p.id || pre.cycle != p.cycle) {
		pre = nil
	}
	dead, t := p.g, p.tree
	p.mu.Unlock()
	if pre != nil {
		// The plugin terminates the instance already (preTerm).
		select {
		case <-pre.done:
			p.mu.Lock()
			if p.pre == pre {
				p.pre = nil
			}
			p.mu.Unlock()
			if pre.err == nil {
				return nil
			}
			// Not done there: call Terminate as usual.
		case <-pre.g.ctx.Done(): // the process died: as below
		case <-ctx.Done():
			return fmt.Errorf("Terminate %q: waiting for the plugin's Terminate after the failure: %w", p.name, context.Cause(ctx))
		}
	}
	if dead != nil && t != nil && dead.isDead() {
		// Answered here when the process is dead and its group killed,
		// empty and removed.
		k, err := p.treeKilled(ctx, dead)
		if err != nil {
			return fmt.Errorf("Terminate %q: the plugin process died: %w", p.name, err)
		}
		if k != nil && k.err == nil {
			return nil
		}
		if k != nil {
			p.logger.Warn("the plugin process died and the host could not remove the instance's cgroup: relaunching the plugin to clean up", "error", k.err)
		}
	}
	g, id, cleaned, err := p.attach(ctx, true)
	if cleaned || err != nil {
		if err != nil && g == nil && ctx.Err() != nil {
			err = resource.Collateral(fmt.Errorf("Terminate %q: %w", p.name, err))
		}
		return err
	}
	req := &pb.InstanceRequest{Instance: id}
	if cs := g.callStream(); cs != nil {
		return p.onStream(ctx, g, cs, pb.CallRequest_METHOD_TERMINATE, req, "Terminate")
	}
	cctx, done := joinCtx(ctx, g)
	defer done()
	_, err = g.rpc.Terminate(cctx, req)
	return callErr(ctx, g, "Terminate", p.name, err)
}

// SetFailureHandler installs fn. It is called when the resource in the
// plugin reports a failure while online, and for every online instance at
// once when the plugin process dies (ErrPluginExited).
func (p *proxy) SetFailureHandler(fn func(err error)) {
	p.mu.Lock()
	p.handler = fn
	p.mu.Unlock()
}

// ReturnsAtContextEnd implements callhint.ReturnsAtContextEnd: every call
// is a message to the plugin process (or a wait for its opening) that
// selects on its ctx, so it returns at its deadline whatever the resource
// in the plugin does (the plugin itself reports a call that outlives it).
// The monitor runs the calls on the operation's goroutine.
func (p *proxy) ReturnsAtContextEnd() {}

var _ callhint.ReturnsAtContextEnd = (*proxy)(nil)

// KillProcess kills the plugin process hosting the instance (its whole
// process group) without waiting for the hung call; every instance it
// hosted fails with ErrPluginExited. The next Online or Terminate
// relaunches it.
func (p *proxy) KillProcess(reason string) error {
	p.mu.Lock()
	g := p.g
	p.mu.Unlock()
	if g == nil {
		g = p.line.current()
	}
	if g == nil {
		return nil
	}
	p.logger.Warn("killing plugin process", "pid", g.pid, "reason", reason)
	g.kill(reason, p)
	return nil
}

// Close releases the instance in the plugin; an isolated instance's
// process is stopped.
func (p *proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	g, id := p.g, p.id
	p.online = false
	p.mu.Unlock()
	var err error
	if g != nil && !g.isDead() {
		g.remove(id)
		ctx, cancel := context.WithTimeout(context.Background(), p.t.h.cfg.StopTimeout)
		cctx, done := joinCtx(ctx, g)
		_, err = g.rpc.Close(cctx, &pb.InstanceRequest{Instance: id})
		err = callErr(ctx, g, "Close", p.name, err)
		done()
		cancel()
	}
	p.line.use(-1)
	if p.own {
		p.t.h.dropIsolated(p.line)
	}
	return err
}

// killTree starts the kill of the instance's cgroup after its process g
// died (the plugin's own process group is killed already; members that
// left it, setsid or double fork, are not); see tree.
func (p *proxy) killTree(g *gen) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.g != g || p.tree == nil {
		return
	}
	k := &treeKill{g: g, done: make(chan struct{})}
	p.kill = k
	go k.run(p.tree, p.t.h.cfg.StopTimeout)
}

// procDied fails the instance when its process died.
func (p *proxy) procDied(g *gen, err error) {
	p.mu.Lock()
	if p.g != g {
		p.mu.Unlock()
		return
	}
	fire := p.online && p.handler != nil
	fn := p.handler
	p.online = false
	p.mu.Unlock()
	if fire {
		fn(fmt.Errorf("resource %q: %w", p.name, err))
	}
}

func (p *proxy) onEvent(g *gen, ev *pb.Event) {
	if ev.GetKind() == pb.Event_KIND_DEADLOCK {
		// About the process, whatever cycle: only killing it frees the call.
		reason := fmt.Sprintf("resource %q deadlocked: %v", p.name, errorFromDetail(ev.GetError()))
		p.logger.Error("killing plugin process", "pid", g.pid, "reason", reason)
		g.kill(reason, p)
		return
	}
	p.mu.Lock()
	if p.g != g || p.id != ev.GetInstance() || (ev.GetCycle() != 0 && ev.GetCycle() != p.cycle) {
		p.mu.Unlock() // another process, or a late event of an earlier online cycle
		return
	}
	live := p.online || p.starting
	var fire func(error)
	var err error
	switch ev.GetKind() {
	case pb.Event_KIND_FAILURE, pb.Event_KIND_IS_ALIVE_FAILED:
		// Sticky until the next Online: the polls answer it too, which
		// also covers a failure that overtook the end of Online.
		if live {
			p.isErr = errorFromDetail(ev.GetError())
		}
		if p.online {
			fire, err = p.handler, p.isErr
		}
		if ev.GetKind() == pb.Event_KIND_FAILURE && ev.GetTerminating() && live {
			if p.pre != nil {
				p.pre.finish(errors.New("superseded by a later failure"))
			}
			p.pre = &preTerm{g: g, id: p.id, cycle: ev.GetCycle(), done: make(chan struct{})}
		}
	case pb.Event_KIND_TERMINATED:
		if t := p.pre; t != nil && t.cycle == ev.GetCycle() {
			t.finish(errorFromDetail(ev.GetError()))
		}
	case pb.Event_KIND_LOOKS_ALIVE_FAILED:
		if live {
			p.looks = errorFromDetail(ev.GetError())
		}
	case pb.Event_KIND_LOOKS_ALIVE_OK:
		p.looks = nil
	case pb.Event_KIND_IS_ALIVE_OK:
		p.isErr = nil
	}
	p.mu.Unlock()
	if fire != nil && err != nil {
		fire(err)
	}
}

var (
	_ resource.Resource        = (*proxy)(nil)
	_ resource.FailureReporter = (*proxy)(nil)
	_ resource.ProcessKiller   = (*proxy)(nil)
	_ resource.Closer          = (*proxy)(nil)
	_ resource.InstantChecker  = (*proxy)(nil)

	_ resource.InstantIsAliveChecker = (*proxy)(nil)
	_ resource.PollScheduler         = (*proxy)(nil)
)
