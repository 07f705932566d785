package plugins

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	pb "github.com/sftkit/sft/plugins/internal/proto/sftresourcev1"
	"github.com/sftkit/sft/resource"
)

// errUnknownInstance answers a call for an instance the plugin does not hold
// (closed, or opened in an earlier process).
var errUnknownInstance = errors.New("unknown instance")

// errTerminated is the cause of contexts Terminate cancels.
var errTerminated = errors.New("resource terminated")

// grpcServer is the plugin side: it serves the types and holds the
// instances of one plugin process.
type grpcServer struct {
	pb.UnimplementedResourcePluginServer

	types  map[string]resource.Type
	order  []string
	logger *slog.Logger

	mu     sync.Mutex
	nextID uint64
	insts  map[uint64]*instance

	events eventQueue

	// What Info announces; tests change them to play older plugins.
	protocol     uint32
	capabilities []string
	sweepers     map[sweepKey]*sweeper
}

func newGRPCServer(types []resource.Type, logger *slog.Logger) (*grpcServer, error) {
	s := &grpcServer{
		types:  make(map[string]resource.Type, len(types)),
		logger: logger,
		insts:  make(map[uint64]*instance),
		events: newEventQueue(),

		capabilities: []string{capLooksAliveLoop, capEvents, capSchedule, capCycle, capCalls},
	}
	for _, t := range types {
		if t == nil || t.Name() == "" {
			return nil, errors.New("plugins: Serve of a nil Type or a Type without a name")
		}
		if _, dup := s.types[t.Name()]; dup {
			return nil, fmt.Errorf("plugins: type %q served twice", t.Name())
		}
		s.types[t.Name()] = t
		s.order = append(s.order, t.Name())
	}
	if len(s.types) == 0 {
		return nil, errors.New("plugins: Serve needs at least one Type")
	}
	return s, nil
}

func (s *grpcServer) push(ev *pb.Event) { s.events.push(ev) }

func (s *grpcServer) Info(context.Context, *pb.InfoRequest) (*pb.InfoResponse, error) {
	resp := &pb.InfoResponse{
		Protocol:     cmp32(s.protocol, protocolVersion),
		Capabilities: s.capabilities,
		Pid:          int64(os.Getpid()),
	}
	for _, name := range s.order {
		var timing resource.Timing
		if tp, ok := s.types[name].(resource.TimingProvider); ok {
			timing = tp.DefaultTiming()
		}
		resp.Types = append(resp.Types, timingToPB(name, timing))
	}
	return resp, nil
}

func cmp32(v, def uint32) uint32 {
	if v != 0 {
		return v
	}
	return def
}

func (s *grpcServer) typ(name string) (resource.Type, error) {
	t, ok := s.types[name]
	if !ok {
		return nil, resource.ConfigError("type", name, "type not served by this plugin (served: %v)", s.order)
	}
	return t, nil
}

func (s *grpcServer) Validate(ctx context.Context, req *pb.ValidateRequest) (*pb.Empty, error) {
	t, err := s.typ(req.GetType())
	if err != nil {
		return nil, errorToStatus(err)
	}
	props, err := propsFromJSON(req.GetPropertiesJson())
	if err != nil {
		return nil, errorToStatus(err)
	}
	return &pb.Empty{}, errorToStatus(t.Validate(ctx, props))
}

func (s *grpcServer) Open(ctx context.Context, req *pb.OpenRequest) (*pb.OpenResponse, error) {
	t, err := s.typ(req.GetType())
	if err != nil {
		return nil, errorToStatus(err)
	}
	props, err := propsFromJSON(req.GetPropertiesJson())
	if err != nil {
		return nil, errorToStatus(err)
	}
	logger := s.logger.With("resource", req.GetName(), "type", req.GetType())
	res, err := t.Open(ctx, resource.OpenRequest{Name: req.GetName(), Properties: props, Logger: logger})
	if err != nil {
		return nil, errorToStatus(err)
	}
	if res == nil {
		return nil, errorToStatus(fmt.Errorf("type %q: Open returned a nil Resource", req.GetType()))
	}
	s.mu.Lock()
	s.nextID++
	id := s.nextID
	inst := &instance{
		id:       id,
		srv:      s,
		res:      res,
		logger:   logger,
		sem:      make(chan struct{}, 1),
		interval: time.Duration(req.GetLooksAliveIntervalNs()),
		isEvery:  time.Duration(req.GetIsAliveIntervalNs()),
		timeout:  time.Duration(req.GetCheckTimeoutNs()),
		grace:    time.Duration(req.GetDeadlockGraceNs()),
	}
	inst.gen, inst.cancel = context.WithCancelCause(context.Background())
	s.insts[id] = inst
	s.mu.Unlock()
	fr, reports := res.(resource.FailureReporter)
	if reports {
		fr.SetFailureHandler(func(err error) {
			if err == nil {
				err = errors.New("failure reported without an error")
			}
			cycle, online := inst.onlineCycle()
			// An online instance that failed is terminated here at once:
			// the host would call Terminate next, one round trip later
			// (issue 15: a crash-to-restart through a plugin). The type
			// called this handler from its own goroutine, which may have
			// to finish before Terminate can: run it on another.
			s.push(&pb.Event{Instance: id, Kind: pb.Event_KIND_FAILURE, Error: errorToDetail(err), Cycle: cycle, Terminating: online})
			if online {
				go inst.terminateAfterFailure(cycle)
			}
		})
	}
	resp := &pb.OpenResponse{Instance: id, ReportsFailures: reports}
	if c, ok := res.(resource.Contained); ok {
		resp.Cgroup = c.CgroupDir()
	}
	return resp, nil
}

func (s *grpcServer) inst(id uint64) (*instance, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	inst, ok := s.insts[id]
	if !ok {
		return nil, fmt.Errorf("instance %d: %w", id, errUnknownInstance)
	}
	return inst, nil
}

func (s *grpcServer) Close(ctx context.Context, req *pb.InstanceRequest) (*pb.Empty, error) {
	s.mu.Lock()
	inst, ok := s.insts[req.GetInstance()]
	delete(s.insts, req.GetInstance())
	s.mu.Unlock()
	if !ok {
		return &pb.Empty{}, nil
	}
	inst.stopLoop()
	inst.cancel(errTerminated)
	// A plugin-side check that read the loop as active before stopLoop may
	// still be in the resource: Close follows the last call (the
	// contract), so wait for it. It runs under the loop's context, now
	// canceled. The semaphore stays held: the instance is gone, and every
	// other taker gives up without it.
	if err := inst.acquire(ctx); err != nil {
		inst.logger.Error("closing while a call still runs in the resource", "error", err)
	}
	if fr, ok := inst.res.(resource.FailureReporter); ok {
		fr.SetFailureHandler(nil)
	}
	if c, ok := inst.res.(resource.Closer); ok {
		return &pb.Empty{}, errorToStatus(c.Close())
	}
	return &pb.Empty{}, nil
}

type progressStream interface {
	Send(*pb.Progress) error
	Context() context.Context
}

// pending runs Online or Offline, forwarding progress reports on the
// stream. Its error is the resource's (or the server's), not yet a status.
func (s *grpcServer) pending(req *pb.InstanceRequest, stream progressStream, online bool) error {
	inst, err := s.inst(req.GetInstance())
	if err != nil {
		return err
	}
	// The new cycle is set before the call joins the instance's
	// generation: a Terminate after a failure of the previous cycle
	// (terminateAfterFailure) either sees it and does nothing, or comes
	// first and this call joins the generation after it.
	inst.stopLoop()
	gen := inst.setCycle(req.GetCycle(), req.GetSchedule(), online)
	ctx, done := inst.callCtx(stream.Context())
	defer done()
	var (
		mu       sync.Mutex
		finished bool
	)
	ctx = resource.WithProgress(ctx, func(msg string) {
		mu.Lock()
		defer mu.Unlock()
		if !finished {
			_ = stream.Send(&pb.Progress{Message: msg})
		}
	})
	defer func() {
		mu.Lock()
		finished = true
		mu.Unlock()
	}()
	if err := inst.acquire(ctx); err != nil {
		return err
	}
	if online {
		err = inst.watch(ctx, "Online", inst.res.Online)
	} else {
		err = inst.watch(ctx, "Offline", inst.res.Offline)
	}
	inst.release()
	if online && err == nil {
		inst.setOnline(gen, req.GetCycle())
		inst.startLoop()
	}
	return err
}

func (s *grpcServer) Online(req *pb.InstanceRequest, stream pb.ResourcePlugin_OnlineServer) error {
	return errorToStatus(s.pending(req, stream, true))
}

func (s *grpcServer) Offline(req *pb.InstanceRequest, stream pb.ResourcePlugin_OfflineServer) error {
	return errorToStatus(s.pending(req, stream, false))
}

// check runs LooksAlive or IsAlive; its error is not yet a status.
func (s *grpcServer) check(ctx context.Context, req *pb.InstanceRequest, thorough bool) error {
	inst, err := s.inst(req.GetInstance())
	if err != nil {
		return err
	}
	ctx, done := inst.callCtx(ctx)
	defer done()
	if err := inst.acquire(ctx); err != nil {
		return err
	}
	defer inst.release()
	if thorough {
		return inst.watch(ctx, "IsAlive", inst.res.IsAlive)
	}
	return inst.watch(ctx, "LooksAlive", inst.res.LooksAlive)
}

func (s *grpcServer) LooksAlive(ctx context.Context, req *pb.InstanceRequest) (*pb.Empty, error) {
	if err := s.check(ctx, req, false); err != nil {
		return nil, errorToStatus(err)
	}
	return &pb.Empty{}, nil
}

func (s *grpcServer) IsAlive(ctx context.Context, req *pb.InstanceRequest) (*pb.Empty, error) {
	if err := s.check(ctx, req, true); err != nil {
		return nil, errorToStatus(err)
	}
	return &pb.Empty{}, nil
}

// terminate cancels the instance's calls and runs its Terminate; the
// error is not yet a status.
func (s *grpcServer) terminate(ctx context.Context, req *pb.InstanceRequest) error {
	inst, err := s.inst(req.GetInstance())
	if err != nil {
		return err
	}
	inst.terminateCalls()
	return inst.watch(ctx, "Terminate", inst.res.Terminate)
}

func (s *grpcServer) Terminate(ctx context.Context, req *pb.InstanceRequest) (*pb.Empty, error) {
	return &pb.Empty{}, errorToStatus(s.terminate(ctx, req))
}

// SetSchedule replaces the instance's poll schedule; an instance being
// polled (online) is polled with the new one from now on.
func (s *grpcServer) SetSchedule(_ context.Context, req *pb.InstanceRequest) (*pb.Empty, error) {
	inst, err := s.inst(req.GetInstance())
	if err != nil {
		return nil, errorToStatus(err)
	}
	if req.GetSchedule() == nil {
		return &pb.Empty{}, nil
	}
	inst.mu.Lock()
	polling := inst.loop != nil
	inst.mu.Unlock()
	inst.stopLoop()
	inst.mu.Lock()
	inst.setScheduleLocked(req.GetSchedule())
	inst.mu.Unlock()
	if polling {
		inst.startLoop()
	}
	return &pb.Empty{}, nil
}

func (s *grpcServer) Ping(context.Context, *pb.Empty) (*pb.Empty, error) { return &pb.Empty{}, nil }

func (s *grpcServer) Events(_ *pb.EventsRequest, stream pb.ResourcePlugin_EventsServer) error {
	ctx := stream.Context()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.events.ready:
		}
		for _, ev := range s.events.take() {
			if err := stream.Send(ev); err != nil {
				return err
			}
		}
	}
}

// instance is one opened resource in the plugin.
type instance struct {
	id     uint64
	srv    *grpcServer
	res    resource.Resource
	logger *slog.Logger
	// sem serializes every call but Terminate, including the local
	// LooksAlive loop, as the contract promises the resource.
	sem chan struct{}
	mu  sync.Mutex
	// The poll schedule (OpenRequest, replaced by the latest Online's) and
	// the online cycle events are tagged with.
	interval time.Duration // plugin-side LooksAlive; 0: none
	isEvery  time.Duration // plugin-side IsAlive; 0: none
	timeout  time.Duration // of a plugin-side LooksAlive or IsAlive
	grace    time.Duration // deadlock grace after a call's ctx ended
	cycle    uint64
	online   bool // the latest Online succeeded; no Offline or Terminate since

	gen     context.Context // canceled by Terminate; calls run under it
	cancel  context.CancelCauseFunc
	loop    context.CancelFunc // stops the plugin-side LooksAlive; nil when not sweeping
	loopCtx context.Context
	sw      *sweeper // the LooksAlive sweep the instance is in; nil when none
	isw     *sweeper // the IsAlive sweep the instance is in; nil when none
	failing bool     // last plugin-side LooksAlive failed

	isFailing bool // last plugin-side IsAlive failed
	isBusy    bool // a non-instant plugin-side IsAlive is running
}

// watch runs fn(ctx). If fn has not returned grace after ctx ended, the
// resource ignores its context: that is reported to the host
// (KIND_DEADLOCK), which kills this process, the only way to free the call.
// The normal path costs one context.AfterFunc registration.
func (i *instance) watch(ctx context.Context, method string, fn func(context.Context) error) error {
	done := make(chan struct{})
	i.mu.Lock()
	grace, cycle := i.grace, i.cycle
	i.mu.Unlock()
	stop := context.AfterFunc(ctx, func() {
		if grace <= 0 {
			grace = 2 * time.Second
		}
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-done:
		case <-t.C:
			err := fmt.Errorf("%s did not return %s after its context ended (%v)", method, grace, context.Cause(ctx))
			i.logger.Error("resource call deadlocked", "method", method, "grace", grace)
			i.srv.push(&pb.Event{Instance: i.id, Kind: pb.Event_KIND_DEADLOCK, Error: errorToDetail(err), Cycle: cycle})
		}
	})
	err := fn(ctx)
	close(done)
	stop()
	return err
}

// callCtx joins ctx (the RPC's) with the instance's generation, so that
// Terminate cancels every call in flight.
func (i *instance) callCtx(ctx context.Context) (context.Context, func()) {
	i.mu.Lock()
	gen := i.gen
	i.mu.Unlock()
	ctx, cancel := context.WithCancelCause(ctx)
	stop := context.AfterFunc(gen, func() { cancel(context.Cause(gen)) })
	return ctx, func() { stop(); cancel(nil) }
}

func (i *instance) acquire(ctx context.Context) error {
	select {
	case i.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for the previous call: %w", context.Cause(ctx))
	}
}

func (i *instance) release() { <-i.sem }

// terminateCalls cancels the calls in flight and the LooksAlive loop; later
// calls run under a fresh generation.
func (i *instance) terminateCalls() {
	i.mu.Lock()
	i.endGenLocked()
	i.mu.Unlock()
	i.stopLoop()
}

// endGenLocked marks the instance not online, cancels the calls of the
// current generation and starts a new one (i.mu held).
func (i *instance) endGenLocked() {
	i.online = false
	i.cancel(errTerminated)
	i.gen, i.cancel = context.WithCancelCause(context.Background())
}

// setCycle marks the instance not online (Online or Offline starts) and,
// for Online, starts an online cycle: events are tagged with cycle from
// now on, and a non-nil schedule replaces the polling set by Open. The
// loop is stopped (the call stops it before).
// It returns the instance's generation.
func (i *instance) setCycle(cycle uint64, sched *pb.Schedule, online bool) context.Context {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.online = false
	if online {
		i.cycle = cycle
		if sched != nil {
			i.setScheduleLocked(sched)
		}
	}
	return i.gen
}

// setOnline records a successful Online of cycle in generation gen,
// unless a Terminate or another Online came since.
func (i *instance) setOnline(gen context.Context, cycle uint64) {
	i.mu.Lock()
	i.online = i.gen == gen && i.cycle == cycle
	i.mu.Unlock()
}

// onlineCycle returns the current cycle and whether the instance is
// online in it.
func (i *instance) onlineCycle() (uint64, bool) {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.cycle, i.online
}

// terminateAfterFailure terminates the instance after it reported a
// failure while online in cycle, and pushes KIND_TERMINATED (with the
// error if it failed or was not done). It takes the call slot, so no
// Online of a later cycle runs meanwhile, and does nothing if the host
// started one (or terminated the instance) first: the host then sees an
// error and calls Terminate itself.
func (i *instance) terminateAfterFailure(cycle uint64) {
	ev := &pb.Event{Instance: i.id, Kind: pb.Event_KIND_TERMINATED, Cycle: cycle}
	if err := i.terminateIfCycle(cycle); err != nil {
		ev.Error = errorToDetail(err)
		i.logger.Debug("no Terminate after the reported failure: the host terminates", "reason", err)
	}
	i.srv.push(ev)
}

func (i *instance) terminateIfCycle(cycle uint64) error {
	i.mu.Lock()
	gen := i.gen
	i.mu.Unlock()
	tm := i.checkTimeout()
	ctx, cancel := context.WithTimeout(gen, tm)
	defer cancel()
	if err := i.acquire(ctx); err != nil {
		return err
	}
	defer i.release()
	i.mu.Lock()
	if i.cycle != cycle || i.gen != gen || !i.online {
		i.mu.Unlock()
		return errors.New("the host called meanwhile")
	}
	i.endGenLocked()
	i.mu.Unlock()
	i.stopLoop()
	tctx, tcancel := context.WithTimeout(context.Background(), tm)
	defer tcancel()
	return i.watch(tctx, "Terminate", i.res.Terminate)
}

func (i *instance) setScheduleLocked(sched *pb.Schedule) {
	i.interval = time.Duration(sched.GetLooksAliveIntervalNs())
	i.isEvery = time.Duration(sched.GetIsAliveIntervalNs())
	i.timeout = time.Duration(sched.GetCheckTimeoutNs())
	i.grace = time.Duration(sched.GetDeadlockGraceNs())
}

func (i *instance) currentCycle() uint64 {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.cycle
}

// checkTimeout bounds one plugin-side LooksAlive or IsAlive.
func (i *instance) checkTimeout() time.Duration {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.timeout <= 0 {
		return 2 * time.Second
	}
	return i.timeout
}

// startLoop adds the instance to the LooksAlive sweep and to the IsAlive
// sweep of its intervals (see sweeper) while it is online, and runs IsAlive
// once at once.
func (i *instance) startLoop() {
	i.mu.Lock()
	if i.loop != nil || (i.interval <= 0 && i.isEvery <= 0) {
		i.mu.Unlock()
		return
	}
	ctx, cancel := context.WithCancel(i.gen)
	i.loopCtx, i.loop = ctx, cancel
	i.failing, i.isFailing = false, false
	if i.interval > 0 {
		i.sw = i.srv.sweeper(i.interval, false)
	}
	if i.isEvery > 0 {
		i.isw = i.srv.sweeper(i.isEvery, true)
	}
	sw, isw := i.sw, i.isw
	i.mu.Unlock()
	if sw != nil {
		sw.add(i)
	}
	if isw != nil {
		isw.add(i)
		i.isAliveOnce(isw)
	}
}

// isAliveOnce runs one plugin-side IsAlive and pushes a change of its
// result: inline when the resource answers from memory
// (resource.InstantIsAliveChecker) and no other call holds it, else on a
// goroutine of its own under the call timeout (one at a time per
// instance), since an IsAlive may take long and must not hold up the
// sweep.
func (i *instance) isAliveOnce(sw *sweeper) {
	i.mu.Lock()
	loopCtx, cycle := i.loopCtx, i.cycle
	active, busy := i.loop != nil, i.isBusy
	if active && !busy && !instantIsAlive(i.res) {
		i.isBusy = true
		i.mu.Unlock()
		go i.isAliveCall(loopCtx, cycle)
		return
	}
	i.mu.Unlock()
	if !active || busy {
		return
	}
	select {
	case i.sem <- struct{}{}:
	default:
		return // a call from the host is running: skip this round
	}
	if loopCtx.Err() != nil { // stopped (Online, Offline, Close) meanwhile
		i.release()
		return
	}
	sw.started(i)
	err := i.res.IsAlive(loopCtx)
	i.release()
	if loopCtx.Err() != nil || !sw.has(i) {
		return
	}
	i.setIs(err, cycle)
}

// isAliveCall is a non-instant plugin-side IsAlive.
func (i *instance) isAliveCall(ctx context.Context, cycle uint64) {
	defer func() {
		i.mu.Lock()
		i.isBusy = false
		i.mu.Unlock()
	}()
	err := func() error {
		cctx, cancel := context.WithTimeout(ctx, i.checkTimeout())
		defer cancel()
		if err := i.acquire(cctx); err != nil {
			return err
		}
		defer i.release()
		if err := ctx.Err(); err != nil {
			return err // stopped while waiting (select may pick either case)
		}
		return i.watch(cctx, "IsAlive", i.res.IsAlive)
	}()
	if ctx.Err() != nil {
		return
	}
	i.setIs(err, cycle)
}

// instantLooksAlive and instantIsAlive: may the check run inline, without
// a context deadline or a deadlock watch of its own (the sweeper blames an
// inline call that overruns)?
func instantLooksAlive(r resource.Resource) bool {
	c, ok := r.(resource.InstantChecker)
	return ok && c.LooksAliveInstant()
}

func instantIsAlive(r resource.Resource) bool {
	c, ok := r.(resource.InstantIsAliveChecker)
	return ok && c.IsAliveInstant()
}

// stopLoop takes the instance out of the sweep and cancels a LooksAlive the
// sweep has in flight on it.
func (i *instance) stopLoop() {
	i.mu.Lock()
	stop, sw, isw := i.loop, i.sw, i.isw
	i.loop, i.sw, i.isw = nil, nil, nil
	i.mu.Unlock()
	if stop != nil {
		stop()
	}
	if sw != nil {
		sw.remove(i)
	}
	if isw != nil {
		isw.remove(i)
	}
}

// sweepOnce runs one plugin-side LooksAlive under the instance's call
// timeout and pushes a change of its result. An instance busy with a call
// from the host is skipped this round. A LooksAlive that ignores the
// timeout is the deadlock watch's business (watch), and the sweeper's
// (sweeper.run).
func (i *instance) sweepOnce(sw *sweeper) {
	i.mu.Lock()
	loopCtx, cycle := i.loopCtx, i.cycle
	active := i.loop != nil
	i.mu.Unlock()
	if !active {
		return
	}
	select {
	case i.sem <- struct{}{}:
	default:
		return
	}
	if loopCtx.Err() != nil { // stopped (Online, Offline, Close) meanwhile
		i.release()
		return
	}
	sw.started(i)
	var err error
	if instantLooksAlive(i.res) {
		// From memory: no deadline or deadlock watch of its own (their
		// timer and allocations were most of an idle plugin's cost); an
		// overrun is the sweeper's to blame.
		err = i.res.LooksAlive(loopCtx)
	} else {
		ctx, cancel := context.WithTimeout(loopCtx, i.checkTimeout())
		err = i.watch(ctx, "LooksAlive", i.res.LooksAlive)
		cancel()
	}
	i.release()
	if loopCtx.Err() != nil || !sw.has(i) {
		return // stopped, or blamed for overrunning meanwhile
	}
	i.setLooks(err, cycle)
}

func (i *instance) setLooks(err error, cycle uint64) { i.setResult(false, err, cycle) }

// setIs records a plugin-side IsAlive result and pushes a change.
func (i *instance) setIs(err error, cycle uint64) { i.setResult(true, err, cycle) }

// setResult records a plugin-side LooksAlive (or, deep, IsAlive) result
// and pushes a change of it.
func (i *instance) setResult(deep bool, err error, cycle uint64) {
	// The push happens under i.mu, so that pushes reach the queue in the
	// order of the state changes: two setLooks racing (a sweep and the
	// sweeper blaming an overrun) must not leave "failed" queued last while
	// the state says alive, for then nothing would ever push "alive" again.
	// push only takes the queue's own lock and never blocks.
	failing, failed, ok, method := &i.failing, pb.Event_KIND_LOOKS_ALIVE_FAILED, pb.Event_KIND_LOOKS_ALIVE_OK, "LooksAlive"
	if deep {
		failing, failed, ok, method = &i.isFailing, pb.Event_KIND_IS_ALIVE_FAILED, pb.Event_KIND_IS_ALIVE_OK, "IsAlive"
	}
	i.mu.Lock()
	changed := (err != nil) != *failing
	*failing = err != nil
	switch {
	case !changed:
	case err != nil:
		i.srv.push(&pb.Event{Instance: i.id, Kind: failed, Error: errorToDetail(err), Cycle: cycle})
	default:
		i.srv.push(&pb.Event{Instance: i.id, Kind: ok, Cycle: cycle})
	}
	i.mu.Unlock()
	if changed && err != nil {
		i.logger.Debug(method+" failed", "error", err)
	}
}

// sweepKey names a sweeper: its interval, and whether it runs IsAlive.
type sweepKey struct {
	every time.Duration
	deep  bool
}

func (s *grpcServer) sweeper(interval time.Duration, deep bool) *sweeper {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sweepers == nil {
		s.sweepers = make(map[sweepKey]*sweeper)
	}
	k := sweepKey{interval, deep}
	sw, ok := s.sweepers[k]
	if !ok {
		sw = &sweeper{interval: interval, deep: deep, members: make(map[*instance]struct{})}
		s.sweepers[k] = sw
	}
	return sw
}

// sweeper runs LooksAlive (or, deep, IsAlive) on every online instance
// with one interval, all in one pass per tick: one timer wake-up per
// interval instead of one per instance, which is what keeps 1,000
// resources cheap. A check that answers from memory
// (resource.InstantChecker, resource.InstantIsAliveChecker) runs inline,
// with no context or timer of its own; any other LooksAlive runs under its
// instance's call timeout, and any other IsAlive on a goroutine of its own
// (isAliveOnce).
//
// A pass that is still running at the next tick is either slow as a whole
// (many instances, each within its timeout: the tick is skipped and the
// pass goes on, nobody is blamed) or stuck in one LooksAlive that ignores
// its timeout. Only that instance is blamed: the instance whose own call
// has run longer than its call timeout fails ("did not return within its
// call timeout"), leaves the sweep until its next Online, and a fresh pass
// sweeps the rest.
type sweeper struct {
	interval time.Duration
	deep     bool // IsAlive (isAliveOnce), not LooksAlive (sweepOnce)

	mu       sync.Mutex
	members  map[*instance]struct{}
	running  bool      // the ticker goroutine runs
	busy     bool      // a pass is in progress
	pass     uint64    // generation of the current pass
	cur      *instance // instance the current pass is checking
	curStart time.Time // when cur's LooksAlive started
	stop     chan struct{}
	overruns uint64 // ticks skipped because a pass was still running
}

func (sw *sweeper) add(i *instance) {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	sw.members[i] = struct{}{}
	if !sw.running {
		sw.running = true
		sw.stop = make(chan struct{})
		go sw.run(sw.stop)
	}
}

func (sw *sweeper) remove(i *instance) {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	delete(sw.members, i)
	if len(sw.members) == 0 && sw.running {
		sw.running = false
		close(sw.stop)
	}
}

func (sw *sweeper) has(i *instance) bool {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	_, ok := sw.members[i]
	return ok
}

// started records that the current pass begins i's LooksAlive now.
func (sw *sweeper) started(i *instance) {
	sw.mu.Lock()
	if sw.cur == i {
		sw.curStart = time.Now()
	}
	sw.mu.Unlock()
}

func (sw *sweeper) run(stop chan struct{}) {
	t := time.NewTicker(sw.interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		sw.mu.Lock()
		if sw.busy {
			stuck := sw.cur
			if stuck == nil || sw.curStart.IsZero() {
				sw.overruns++
				sw.mu.Unlock()
				continue
			}
			limit := stuck.checkTimeout()
			if ran := time.Since(sw.curStart); ran <= limit {
				sw.overruns++ // slow pass, healthy calls: let it finish
				sw.mu.Unlock()
				continue
			}
			delete(sw.members, stuck)
			sw.pass++ // abandon the stuck pass
			stuck.mu.Lock()
			cycle := stuck.cycle
			stuck.mu.Unlock()
			if sw.deep {
				go stuck.setIs(fmt.Errorf("IsAlive did not return within its call timeout %s", limit), cycle)
			} else {
				go stuck.setLooks(fmt.Errorf("LooksAlive did not return within its call timeout %s", limit), cycle)
			}
		}
		sw.busy = true
		sw.pass++
		pass := sw.pass
		list := make([]*instance, 0, len(sw.members))
		for i := range sw.members {
			list = append(list, i)
		}
		sw.mu.Unlock()
		go sw.sweep(pass, list)
	}
}

func (sw *sweeper) sweep(pass uint64, list []*instance) {
	for _, i := range list {
		sw.mu.Lock()
		if sw.pass != pass {
			sw.mu.Unlock()
			return
		}
		sw.cur, sw.curStart = i, time.Time{}
		sw.mu.Unlock()
		if sw.deep {
			i.isAliveOnce(sw)
		} else {
			i.sweepOnce(sw)
		}
	}
	sw.mu.Lock()
	if sw.pass == pass {
		sw.busy, sw.cur, sw.curStart = false, nil, time.Time{}
	}
	sw.mu.Unlock()
}
