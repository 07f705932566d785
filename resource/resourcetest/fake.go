package resourcetest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/sftkit/sft/resource"
)

// Method names an entry point of a Fake, for scripting and for the call log.
type Method string

// The methods of a Fake. The first five are resource.Resource; the others
// come from the optional interfaces.
const (
	MethodOnline            Method = "Online"
	MethodOffline           Method = "Offline"
	MethodLooksAlive        Method = "LooksAlive"
	MethodIsAlive           Method = "IsAlive"
	MethodTerminate         Method = "Terminate"
	MethodClose             Method = "Close"
	MethodKillProcess       Method = "KillProcess"
	MethodSetFailureHandler Method = "SetFailureHandler"
)

// Errors a Fake returns. They are unclassified (so transient) unless a
// script says otherwise; test for them with errors.Is.
var (
	// ErrInjected is the default error of FailNext.
	ErrInjected = errors.New("resourcetest: injected failure")
	// ErrNotAlive is what LooksAlive and IsAlive return after SetAlive(false).
	ErrNotAlive = errors.New("resourcetest: not alive")
	// ErrNotOnline is what LooksAlive and IsAlive return while the fake is
	// not up (before Online, after Offline, Terminate or KillProcess).
	ErrNotOnline = errors.New("resourcetest: not online")
	// ErrTerminated is what a blocked call returns when Terminate releases it.
	ErrTerminated = errors.New("resourcetest: terminated")
	// ErrProcessKilled is what a blocked call returns when KillProcess releases it.
	ErrProcessKilled = errors.New("resourcetest: host killed")
)

// BlockMode says what releases a call blocked by Block.
type BlockMode int

const (
	// Cancelable: the call returns when its ctx is done (an error wrapping
	// ctx.Err()), when Terminate runs (ErrTerminated, unless
	// IgnoreTerminate), when KillProcess runs (ErrProcessKilled), or when the
	// test calls Release (the call then goes on as if never blocked). This
	// is a slow call that honours the contract: "block past the timeout".
	Cancelable BlockMode = iota
	// Deadlock: the call ignores its ctx and Terminate. Only Release,
	// ReleaseAll or KillProcess make it return, like a call stuck in a hung
	// plugin process that only dies when the process is killed. A test
	// whose code under test abandons such a call (no ProcessKiller) must
	// release it before it ends, e.g. t.Cleanup(func() { f.ReleaseAll() }):
	// a synctest bubble refuses to end with a goroutine still blocked.
	Deadlock
)

func (m BlockMode) String() string {
	switch m {
	case Cancelable:
		return "Cancelable"
	case Deadlock:
		return "Deadlock"
	}
	return fmt.Sprintf("BlockMode(%d)", int(m))
}

// Call is one entry of a Fake's call log.
type Call struct {
	Method Method
	// Start and End come from time.Now, so inside a testing/synctest
	// bubble they show the bubble's fake time. End is zero while the call
	// is in flight.
	Start, End time.Time
	// Err is what the call returned (for KillProcess and SetFailureHandler,
	// nil). Valid once Returned is true.
	Err      error
	Returned bool
	// Arg is the argument worth logging: KillProcess's reason, or "nil" /
	// "func" for SetFailureHandler. Empty otherwise.
	Arg string
}

type cause int

const (
	causeNone cause = iota
	causeRelease
	causeStep
	causeTerminate
	causeKill
)

// waiter is one call waiting inside the fake: blocked by Block, or waiting
// for a progress step.
type waiter struct {
	method Method
	mode   BlockMode
	step   bool // waiting for a progress step, not blocked by Block
	done   chan struct{}
	cause  cause
}

type blockRule struct {
	n    int // calls left to block; negative: all until Release
	mode BlockMode
}

type progressRule struct {
	steps int
	every time.Duration
}

// Fake is a scripted, fault-injecting resource.Resource. It also implements
// resource.FailureReporter, resource.Closer and resource.ProcessKiller (use
// Hidden to offer fewer of them).
//
// Unscripted, a Fake behaves like a well-made resource: Online brings it
// "up", Offline and Terminate take it down, LooksAlive and IsAlive return nil
// while it is up and ErrNotOnline otherwise; every method but Terminate
// returns an error wrapping ctx.Err() if its ctx is already done when it is
// called. Scripting methods (FailNext, SetError, SetAlive, Block,
// IgnoreTerminate, SetProgress) change that; they may be called at any time,
// from any goroutine, also while calls are in flight.
//
// A Fake is safe for concurrent use. It starts no goroutines and never sleeps
// in real time: it waits only on channels and on timers (SetProgress with an
// interval), so it works inside a testing/synctest bubble, where its
// blocked calls count as durably blocked. Create it (or the Type that opens
// it) and use it inside one bubble, or entirely outside bubbles.
//
// A Fake also checks how it is driven and records contract violations (see
// Violations): overlapping serialized calls, calls after Close, Close twice.
type Fake struct {
	name string

	mu         sync.Mutex
	changed    chan struct{} // closed and cleared on every change; lazily made
	up         bool
	closed     bool
	handler    func(error)
	calls      map[Method]int
	log        []Call
	queued     map[Method][]error
	persistent map[Method]error
	blocks     map[Method]*blockRule
	progress   map[Method]*progressRule
	delays     map[Method]time.Duration
	waiting    []*waiter
	ignoreTerm bool
	kills      []string
	pushed     int
	inflight   map[int]Method // serialized calls in flight by log index, except deadlocked ones
	violations []string
}

var (
	_ resource.Resource        = (*Fake)(nil)
	_ resource.FailureReporter = (*Fake)(nil)
	_ resource.Closer          = (*Fake)(nil)
	_ resource.ProcessKiller   = (*Fake)(nil)
)

// NewFake returns an unscripted Fake named name. Type.Open calls it; tests
// that need no Type may call it directly.
func NewFake(name string) *Fake {
	return &Fake{
		name:       name,
		calls:      make(map[Method]int),
		queued:     make(map[Method][]error),
		persistent: make(map[Method]error),
		blocks:     make(map[Method]*blockRule),
		progress:   make(map[Method]*progressRule),
		delays:     make(map[Method]time.Duration),
		inflight:   make(map[int]Method),
	}
}

// Name returns the name given to NewFake (the OpenRequest's Name).
func (f *Fake) Name() string { return f.name }

// notify wakes everyone in Wait. f.mu must be held.
func (f *Fake) notify() {
	if f.changed != nil {
		close(f.changed)
		f.changed = nil
	}
}

// ---- scripting ----

// FailNext makes the next n calls of m return err (ErrInjected if err is
// nil), in addition to whatever is already queued. Classify err with
// resource.Transient, NodeLocal or Configuration to test the error classes.
// A failed Online leaves the fake down; a failed Offline leaves it as it
// was; a failed Terminate still takes it down.
func (f *Fake) FailNext(m Method, n int, err error) {
	if err == nil {
		err = ErrInjected
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for range n {
		f.queued[m] = append(f.queued[m], err)
	}
	f.notify()
}

// SetError makes every call of m return err until SetError(m, nil). Errors
// queued by FailNext come first.
func (f *Fake) SetError(m Method, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err == nil {
		delete(f.persistent, m)
	} else {
		f.persistent[m] = err
	}
	f.notify()
}

// SetAlive flips the health checks: SetAlive(false) makes LooksAlive and
// IsAlive return ErrNotAlive (even while up); SetAlive(true) undoes it. Use
// SetError on one of them to make only that check fail.
func (f *Fake) SetAlive(alive bool) {
	var err error
	if !alive {
		err = ErrNotAlive
	}
	f.SetError(MethodLooksAlive, err)
	f.SetError(MethodIsAlive, err)
}

// Block makes the next n calls of m block (n < 0: every call until Release)
// in the given mode; see BlockMode for what releases them. A blocked call
// has been logged and counted already; WaitBlocked tells when it is waiting.
// Once released by Release it goes on normally (queued errors, progress,
// and so on).
func (f *Fake) Block(m Method, n int, mode BlockMode) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.blocks[m] = &blockRule{n: n, mode: mode}
	f.notify()
}

// Release lets every call of m that is blocked now go on, and cancels the
// rest of the Block rule for m. It reports how many calls it released.
func (f *Fake) Release(m Method) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.blocks, m)
	return f.wake(causeRelease, func(w *waiter) bool { return w.method == m && !w.step })
}

// ReleaseAll lets every call blocked now (by Block, in any method, or
// waiting for a progress step) go on, and cancels every Block rule. It
// reports how many calls it released.
func (f *Fake) ReleaseAll() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.blocks)
	return f.wake(causeRelease, func(*waiter) bool { return true })
}

// IgnoreTerminate makes Terminate (when ignore is true) return without
// doing anything: the fake stays up and blocked calls stay blocked. Calls
// are still logged and counted, and Terminate still returns its scripted
// error, if any.
func (f *Fake) IgnoreTerminate(ignore bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ignoreTerm = ignore
	f.notify()
}

// SetDelay makes every later call of m take d (a timer, so fake time in a
// synctest bubble) before it goes on; 0 turns it off. While waiting the
// call behaves as a Cancelable block: its ctx, Terminate (unless
// IgnoreTerminate), KillProcess end it early with an error, Release(m) and
// ReleaseAll end the wait early and let it go on. The delay comes after a
// Block and before progress steps.
func (f *Fake) SetDelay(m Method, d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if d <= 0 {
		delete(f.delays, m)
	} else {
		f.delays[m] = d
	}
	f.notify()
}

// SetProgress makes every later Online or Offline call (m) report progress
// steps times before finishing: before each report it waits for the
// interval every (a timer, so fake time in a synctest bubble) or, when
// every is 0, for the test to call Step(m). While waiting it behaves as a
// Cancelable block (ctx, Terminate, KillProcess end it). Each report calls
// resource.ReportProgress(ctx, "<Method> step i/steps"). steps 0 turns it
// off.
func (f *Fake) SetProgress(m Method, steps int, every time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if steps <= 0 {
		delete(f.progress, m)
	} else {
		f.progress[m] = &progressRule{steps: steps, every: every}
	}
	f.notify()
}

// Step lets one call of m that waits for a progress step (SetProgress with
// every 0) report its next step. It reports whether such a call was waiting.
func (f *Fake) Step(m Method) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, w := range f.waiting {
		if w.method == m && w.step && w.cause == causeNone {
			f.release(w, causeStep)
			return true
		}
	}
	return false
}

// PushFailure calls the handler installed by SetFailureHandler with err,
// synchronously, as a resource does when it detects a failure. It reports
// whether a handler was installed. It changes nothing else: to make the
// health checks agree, also call SetAlive(false).
func (f *Fake) PushFailure(err error) bool {
	f.mu.Lock()
	h := f.handler
	if h != nil {
		f.pushed++
		f.notify()
	}
	f.mu.Unlock()
	if h == nil {
		return false
	}
	h(err)
	return true
}

// ---- state for tests ----

// Up reports whether the fake holds its "resource": an Online succeeded and
// no Offline, Terminate or KillProcess took it down since.
func (f *Fake) Up() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.up
}

// Closed reports whether Close was called.
func (f *Fake) Closed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.closed
}

// HasFailureHandler reports whether a failure handler is installed.
func (f *Fake) HasFailureHandler() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.handler != nil
}

// Calls returns how many times m was called (counted on entry).
func (f *Fake) Calls(m Method) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[m]
}

// Log returns a copy of the call log, in the order the calls began. It
// holds every method, the optional ones (SetFailureHandler, Close,
// KillProcess) included.
func (f *Fake) Log() []Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.log)
}

// Methods returns the methods of the call log in order, e.g.
// [Online LooksAlive IsAlive Terminate].
func (f *Fake) Methods() []Method {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]Method, len(f.log))
	for i, c := range f.log {
		out[i] = c.Method
	}
	return out
}

// Blocked returns how many calls of m wait inside the fake now: blocked by
// Block, waiting out SetDelay, or waiting for a progress step.
func (f *Fake) Blocked(m Method) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, w := range f.waiting {
		if w.method == m && w.cause == causeNone {
			n++
		}
	}
	return n
}

// Kills returns the reasons KillProcess was called with, in order.
func (f *Fake) Kills() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.kills)
}

// Pushed returns how many failures PushFailure delivered to a handler.
func (f *Fake) Pushed() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.pushed
}

// Violations returns the contract violations seen so far: two of Online,
// Offline, LooksAlive and IsAlive in flight at once (a Deadlock-blocked call
// does not count: the monitor is expected to abandon it), a call after Close,
// Close twice. Empty means the fake was driven correctly.
func (f *Fake) Violations() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.violations)
}

// Wait blocks until cond() is true or ctx is done (then it returns
// ctx.Err()). cond is evaluated at once and again after every change in the
// fake (a call beginning or ending, scripting, a state change); it must not
// block and may call the Fake's accessors.
func (f *Fake) Wait(ctx context.Context, cond func() bool) error {
	for {
		f.mu.Lock()
		if f.changed == nil {
			f.changed = make(chan struct{})
		}
		ch := f.changed
		f.mu.Unlock()
		if cond() {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// WaitCalls waits until m has been called at least n times.
func (f *Fake) WaitCalls(ctx context.Context, m Method, n int) error {
	return f.Wait(ctx, func() bool { return f.Calls(m) >= n })
}

// WaitBlocked waits until at least one call of m waits inside the fake
// (see Blocked).
func (f *Fake) WaitBlocked(ctx context.Context, m Method) error {
	return f.Wait(ctx, func() bool { return f.Blocked(m) > 0 })
}

// ---- resource.Resource ----

// Online brings the fake up, unless scripted otherwise.
func (f *Fake) Online(ctx context.Context) error {
	return f.call(ctx, MethodOnline, func(err error) error {
		if err == nil {
			f.up = true
		}
		return err
	})
}

// Offline takes the fake down (idempotent), unless scripted otherwise.
func (f *Fake) Offline(ctx context.Context) error {
	return f.call(ctx, MethodOffline, func(err error) error {
		if err == nil {
			f.up = false
		}
		return err
	})
}

// LooksAlive returns the scripted error, else ErrNotOnline while down, else nil.
func (f *Fake) LooksAlive(ctx context.Context) error {
	return f.call(ctx, MethodLooksAlive, f.health)
}

// IsAlive returns the scripted error, else ErrNotOnline while down, else nil.
func (f *Fake) IsAlive(ctx context.Context) error {
	return f.call(ctx, MethodIsAlive, f.health)
}

func (f *Fake) health(err error) error {
	if err != nil {
		return err
	}
	if !f.up {
		return fmt.Errorf("%s: %w", f.name, ErrNotOnline)
	}
	return nil
}

// Terminate takes the fake down at once and makes every Cancelable-blocked
// call return ErrTerminated, unless IgnoreTerminate is on. It ignores a done
// ctx (it never fails for that reason) and returns nil unless scripted.
func (f *Fake) Terminate(ctx context.Context) error {
	return f.call(ctx, MethodTerminate, func(err error) error {
		if !f.ignoreTerm {
			f.up = false
			f.wake(causeTerminate, func(w *waiter) bool { return w.mode == Cancelable })
		}
		return err
	})
}

// ---- optional interfaces ----

// SetFailureHandler installs fn for PushFailure (nil removes it).
func (f *Fake) SetFailureHandler(fn func(err error)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	arg := "nil"
	if fn != nil {
		arg = "func"
	}
	now := time.Now()
	f.calls[MethodSetFailureHandler]++
	f.log = append(f.log, Call{Method: MethodSetFailureHandler, Start: now, End: now, Returned: true, Arg: arg})
	f.handler = fn
	f.notify()
}

// Close marks the fake closed. It returns the scripted error for
// MethodClose, if any, else nil; Close twice is recorded as a violation.
func (f *Fake) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now()
	if f.closed {
		f.violate("Close called twice")
	}
	f.calls[MethodClose]++
	err := f.outcome(MethodClose)
	f.log = append(f.log, Call{Method: MethodClose, Start: now, End: now, Returned: true, Err: err})
	f.closed = true
	f.notify()
	return err
}

// KillProcess records reason, takes the fake down and makes every blocked call
// (Deadlock ones included) return ErrProcessKilled, like the death of the
// process hosting the resource. It returns the scripted error for
// MethodKillProcess, if any, else nil; it never blocks. Later calls work as on
// a relaunched host.
func (f *Fake) KillProcess(reason string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now()
	f.calls[MethodKillProcess]++
	f.kills = append(f.kills, reason)
	err := f.outcome(MethodKillProcess)
	f.log = append(f.log, Call{Method: MethodKillProcess, Start: now, End: now, Returned: true, Err: err, Arg: reason})
	f.up = false
	f.wake(causeKill, func(*waiter) bool { return true })
	f.notify()
	return err
}

// ---- machinery ----

func (f *Fake) violate(format string, args ...any) {
	f.violations = append(f.violations, fmt.Sprintf(format, args...))
}

// outcome pops the next scripted error of m. f.mu must be held.
func (f *Fake) outcome(m Method) error {
	if q := f.queued[m]; len(q) > 0 {
		f.queued[m] = q[1:]
		return q[0]
	}
	return f.persistent[m]
}

func serialized(m Method) bool {
	switch m {
	case MethodOnline, MethodOffline, MethodLooksAlive, MethodIsAlive:
		return true
	}
	return false
}

// wake releases every waiting call that match selects. f.mu must be held.
func (f *Fake) wake(c cause, match func(*waiter) bool) int {
	n := 0
	for _, w := range f.waiting {
		if w.cause == causeNone && match(w) {
			f.release(w, c)
			n++
		}
	}
	f.notify()
	return n
}

func (f *Fake) release(w *waiter, c cause) {
	w.cause = c
	close(w.done)
	f.notify()
}

func (f *Fake) removeWaiter(w *waiter) {
	f.waiting = slices.DeleteFunc(f.waiting, func(x *waiter) bool { return x == w })
}

// call runs one of the five Resource methods: log, honour a done ctx (not
// for Terminate), block if scripted, report progress if scripted, then
// finish(scripted error) under f.mu decides the result.
func (f *Fake) call(ctx context.Context, m Method, finish func(error) error) error {
	f.mu.Lock()
	idx := len(f.log)
	f.log = append(f.log, Call{Method: m, Start: time.Now()})
	f.calls[m]++
	if f.closed {
		f.violate("%s called after Close", m)
	}
	if serialized(m) {
		if len(f.inflight) > 0 {
			others := slices.Sorted(maps.Values(f.inflight))
			f.violate("%s called while %v in flight (calls must be serialized)", m, others)
		}
		f.inflight[idx] = m
	}
	f.notify()
	f.mu.Unlock()

	err := f.run(ctx, idx, m, finish)

	f.mu.Lock()
	f.log[idx].End = time.Now()
	f.log[idx].Err = err
	f.log[idx].Returned = true
	delete(f.inflight, idx)
	f.notify()
	f.mu.Unlock()
	return err
}

func (f *Fake) run(ctx context.Context, idx int, m Method, finish func(error) error) error {
	if m != MethodTerminate && ctx.Err() != nil {
		return f.ctxErr(ctx, m)
	}

	// Scripted block.
	f.mu.Lock()
	var w *waiter
	if r := f.blocks[m]; r != nil && r.n != 0 {
		if r.n > 0 {
			r.n--
		}
		w = &waiter{method: m, mode: r.mode, done: make(chan struct{})}
		f.waiting = append(f.waiting, w)
		if r.mode == Deadlock {
			// An abandoned deadlocked call does not hold the
			// serialization "lock": the monitor moves on without it.
			delete(f.inflight, idx)
		}
		f.notify()
	}
	f.mu.Unlock()
	if w != nil {
		if err := f.wait(ctx, w, nil); err != nil {
			return err
		}
	}

	// Scripted delay.
	f.mu.Lock()
	delay := f.delays[m]
	if delay > 0 {
		w = &waiter{method: m, mode: Cancelable, done: make(chan struct{})}
		f.waiting = append(f.waiting, w)
		f.notify()
	}
	f.mu.Unlock()
	if delay > 0 {
		timer := time.NewTimer(delay)
		err := f.wait(ctx, w, timer.C)
		timer.Stop()
		if err != nil {
			return err
		}
	}

	// Scripted progress.
	f.mu.Lock()
	var pr progressRule
	if p := f.progress[m]; p != nil && (m == MethodOnline || m == MethodOffline) {
		pr = *p
	}
	f.mu.Unlock()
	for i := 1; i <= pr.steps; i++ {
		w := &waiter{method: m, mode: Cancelable, step: pr.every == 0, done: make(chan struct{})}
		var timer *time.Timer
		var tick <-chan time.Time
		if pr.every > 0 {
			timer = time.NewTimer(pr.every)
			tick = timer.C
		}
		f.mu.Lock()
		f.waiting = append(f.waiting, w)
		f.notify()
		f.mu.Unlock()
		err := f.wait(ctx, w, tick)
		if timer != nil {
			timer.Stop()
		}
		if err != nil {
			return err
		}
		resource.ReportProgress(ctx, fmt.Sprintf("%s step %d/%d", m, i, pr.steps))
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	return finish(f.outcome(m))
}

// wait waits for w to be released (or tick to fire, or ctx to end for a
// Cancelable wait) and removes it from f.waiting.
func (f *Fake) wait(ctx context.Context, w *waiter, tick <-chan time.Time) error {
	done := ctx.Done()
	if w.mode == Deadlock {
		done = nil
	}
	var err error
	select {
	case <-w.done:
	case <-tick:
	case <-done:
		err = f.ctxErr(ctx, w.method)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.removeWaiter(w)
	f.notify()
	if err != nil {
		return err
	}
	switch w.cause {
	case causeTerminate:
		return fmt.Errorf("%s: %s: %w", f.name, w.method, ErrTerminated)
	case causeKill:
		return fmt.Errorf("%s: %s: %w", f.name, w.method, ErrProcessKilled)
	}
	return nil
}

// ctxErr wraps ctx.Err() and, when it differs, the context's cause.
func (f *Fake) ctxErr(ctx context.Context, m Method) error {
	if cause := context.Cause(ctx); cause != nil && cause != ctx.Err() {
		return fmt.Errorf("%s: %s: %w (%w)", f.name, m, ctx.Err(), cause)
	}
	return fmt.Errorf("%s: %s: %w", f.name, m, ctx.Err())
}
