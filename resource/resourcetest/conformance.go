package resourcetest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sftkit/sft/resource"
)

// The rules the suite checks. A failure names the rule it broke (in a line
// "broken rule: ..."), so a test can tell which rule a type broke.
const (
	RuleOnline          = "Online must bring the resource up"
	RuleHealthyWhenUp   = "LooksAlive and IsAlive must return nil while the resource is up"
	RuleDownAfterStop   = "Offline and Terminate must leave nothing behind"
	RuleStaysDown       = "nothing may come back after Offline or Terminate returned"
	RuleNotAliveWhenOff = "LooksAlive and IsAlive must fail once the resource is down"
	RuleOffline         = "Offline must succeed and be idempotent"
	RuleTerminate       = "Terminate must succeed in every state and be idempotent"
	RuleRestart         = "a resource must come online again after Offline or Terminate"
	RuleCanceled        = "a call with a canceled ctx must return nil or an error wrapping context.Canceled"
	RuleReturnOnCtx     = "every method must return when its ctx ends"
	RuleTerminateOnline = "Terminate must make an in-flight Online return"
	RuleOnlineDeadline  = "Online past its ctx deadline must return an error wrapping context.DeadlineExceeded"
	RuleLooksAliveCheap = "LooksAlive must be cheap"
	RuleValidateGood    = "Validate must accept the properties Open accepts"
	RuleOpen            = "Open must accept valid properties"
	RuleBadProperties   = "Validate and Open must reject a bad property with a configuration error naming it"
	RuleClose           = "Close must succeed after Offline or Terminate"
	RuleNoPushOnOffline = "a graceful Offline must not push a failure"
	RuleNoReturn        = "every call must return"
	RuleNoCrash         = "the resource must not make its plugin process exit"
)

// Instance is one instance the suite opened: what the hooks get, so that a
// hook can find what the instance manages (its address, its unit, its file)
// from the properties, across a process boundary too.
type Instance struct {
	// Name is the instance's name (the subtest's name).
	Name string
	// Properties opened it.
	Properties resource.Properties
	// Resource is what the suite drives: the type's own resource, or a
	// plugin proxy.
	Resource resource.Resource
}

// BadProperties is one row of Options.BadProperties: properties that
// Validate and Open must refuse with a configuration error naming Field.
type BadProperties struct {
	Name       string
	Properties resource.Properties
	Field      string
}

// Options configure Suite. Up, the hang hooks and BadProperties are
// required unless their No... field gives the reason they cannot be set: a
// suite that silently skips "leaves nothing behind" lets real bugs through.
type Options struct {
	// Properties returns the properties of a fresh instance (a per-test
	// lock path, say). Nil: no properties.
	Properties func(t *testing.T) resource.Properties

	// Up reports whether what the instance manages exists right now (the
	// address is on the interface, the process runs, the file is there),
	// probed from outside the resource. The suite checks it is true after
	// Online and false after Offline and Terminate, and stays false for
	// Recheck afterwards (nothing recreates it in the background).
	Up   func(t *testing.T, in Instance) bool
	NoUp string

	// HangProperties, if set, turns an instance's properties into ones
	// with which Online hangs: does not return until Terminate or its ctx
	// ends (a readiness check that never passes, a probe that waits an
	// hour). Being properties, they work across a process boundary.
	HangProperties func(t *testing.T, props resource.Properties) resource.Properties
	// Hang, if set, is called after the instance is opened (with
	// HangProperties, if set) and before its hanging Online: it arranges
	// for Online to hang (for example through the state Up probes) and
	// returns a channel closed once Online is hanging, or nil (the suite
	// then waits HangSettle).
	Hang func(t *testing.T, in Instance) <-chan struct{}
	// NoHang: the reason neither hang hook is set. Without a hanging Online
	// the suite cannot check that Terminate cancels it and that Online
	// honours its deadline.
	NoHang string

	// BadProperties are the properties Validate and Open must refuse,
	// each with a configuration error naming the field.
	BadProperties   []BadProperties
	NoBadProperties string

	// CallTimeout is the ctx deadline of the suite's LooksAlive and IsAlive
	// calls, as the monitor's call timeout is: a check that needs longer
	// fails, and one that ignores its ctx is caught Grace later. Default:
	// the type's DefaultTiming().CallTimeout, else 2 s (the monitor's).
	CallTimeout time.Duration
	// Timeout bounds every call that may block: a call that has not
	// returned by then fails (RuleNoReturn). It guards against hangs and
	// is no speed requirement. Default 30 s.
	Timeout time.Duration
	// Grace is how long after its ctx ended a call may take to return
	// (RuleReturnOnCtx, RuleTerminateOnline). Default 2 s, the host's
	// default deadlock grace.
	Grace time.Duration
	// Deadline is the short ctx deadline of the hanging Online and of the
	// health checks in ChecksHonourDeadline. Default 100 ms.
	Deadline time.Duration
	// HangSettle is how long the suite waits after starting a hanging
	// Online when Hang returned no channel. Default 200 ms.
	HangSettle time.Duration
	// LooksAliveBudget: the fastest of 20 LooksAlive calls of an online
	// resource must take no longer (RuleLooksAliveCheap). The contract says
	// "well under a millisecond"; the default, 10 ms, leaves room for a
	// loaded machine. Negative disables the check.
	LooksAliveBudget time.Duration
	// Recheck: after Offline and Terminate, Up is checked 5 times over this
	// window and must stay false (RuleStaysDown). Default 500 ms.
	Recheck time.Duration

	// PluginExits, set by package plugintest, reports the plugin process
	// exits since it was last called: the host kills a plugin whose call
	// outlived its ctx by Grace (RuleReturnOnCtx, which a gRPC deadline
	// would otherwise hide), and a crash is a bug too (RuleNoCrash). The
	// suite asks before each subtest, before reporting a failure (the exit
	// is then the cause reported) and Grace after the last subtest; an exit
	// stops the suite.
	PluginExits func() []string
}

func (o *Options) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&o.CallTimeout, 2*time.Second)
	def(&o.Timeout, 30*time.Second)
	def(&o.Grace, 2*time.Second)
	def(&o.Deadline, 100*time.Millisecond)
	def(&o.HangSettle, 200*time.Millisecond)
	def(&o.LooksAliveBudget, 10*time.Millisecond)
	def(&o.Recheck, 500*time.Millisecond)
}

// required reports the hooks that are neither set nor opted out of.
func (o *Options) required() []string {
	var missing []string
	if o.Up == nil && o.NoUp == "" {
		missing = append(missing, "Up is nil: without it the suite cannot check that Offline and Terminate leave nothing behind; set Up (probe what the resource manages from outside it) or NoUp with the reason")
	}
	if o.Hang == nil && o.HangProperties == nil && o.NoHang == "" {
		missing = append(missing, "Hang and HangProperties are nil: without a hanging Online the suite cannot check that Terminate cancels it or that Online honours its deadline; set one or NoHang with the reason")
	}
	if len(o.BadProperties) == 0 && o.NoBadProperties == "" {
		missing = append(missing, "BadProperties is empty: the suite cannot check that Validate and Open refuse bad properties; list some or set NoBadProperties with the reason")
	}
	return missing
}

// Suite runs the resource contract suite on instances of typ as subtests.
// It uses real time (the resources may be processes or kernel objects) and
// bounds every call by o.Timeout. Each subtest opens a fresh instance named
// after the subtest, and when it ends calls Terminate and Close (if the
// resource is a resource.Closer) and checks that Up is false.
//
// One bug gives one failure: each failure names the rule it broke (the
// Rule... constants), and a later subtest that breaks a rule already
// reported is skipped, saying so, instead of failing again.
//
// The subtests:
//
//   - Properties: Validate accepts o.Properties; every o.BadProperties row
//     fails Validate and Open with a configuration error naming its field.
//   - OnlineThenAlive: Online, LooksAlive, IsAlive return nil; Up is true.
//   - OfflineAfterOnline, TerminateAfterOnline: Offline / Terminate return
//     nil; LooksAlive and IsAlive fail; Up is false and stays false for
//     o.Recheck.
//   - OfflineIdempotent, TerminateBeforeOnline, TerminateAfterOffline,
//     TerminateTwice: Offline and Terminate succeed in every state.
//   - OnlineAfterTerminate, OnlineAfterOffline: it comes online again.
//   - CanceledContext: every call with a canceled ctx returns nil or an
//     error wrapping context.Canceled.
//   - ChecksHonourDeadline: LooksAlive and IsAlive given a ctx with a
//     deadline of o.Deadline return within o.Grace of it.
//   - LooksAliveIsCheap: the fastest of 20 LooksAlive calls is within
//     o.LooksAliveBudget.
//   - CloseAfterOffline, CloseAfterTerminate (resource.Closer),
//     NoFailurePushedOnOffline (resource.FailureReporter).
//   - TerminateWhileOnlineHangs: Terminate of a hanging Online returns nil,
//     and Online then returns an error within o.Grace; Up is false.
//   - OnlineDeadline: a hanging Online with a ctx deadline of o.Deadline
//     returns an error wrapping context.DeadlineExceeded within o.Grace.
//   - NoCallOutlivedItsCtx (o.PluginExits only): no plugin process exited,
//     also o.Grace after the last subtest.
func Suite(t *testing.T, typ resource.Type, o Options) {
	t.Helper()
	if typ == nil {
		t.Fatal("resourcetest.Suite: the type is nil")
	}
	if missing := o.required(); len(missing) > 0 {
		for _, m := range missing {
			t.Errorf("resourcetest.Suite: Options.%s", m)
		}
		t.FailNow()
	}
	if tp, ok := typ.(resource.TimingProvider); ok && o.CallTimeout == 0 {
		o.CallTimeout = tp.DefaultTiming().CallTimeout
	}
	o.defaults()
	s := &suite{o: o, typ: typ, failed: map[string]string{}}
	s.runAll(t)
}

type suite struct {
	o   Options
	typ resource.Type

	mu     sync.Mutex
	failed map[string]string // rule -> the subtest that broke it first
	// stopped: a call did not return or the plugin died; the remaining
	// subtests would only fail the same way, so they are skipped.
	stopped string
	exits   []string // plugin exits told but not yet reported
}

// stopRules are the rules whose breach stops the suite: the remaining
// subtests would hang too, or fail only because the plugin process is gone.
var stopRules = map[string]bool{RuleReturnOnCtx: true, RuleNoReturn: true, RuleTerminateOnline: true, RuleNoCrash: true}

func (s *suite) runAll(t *testing.T) {
	t.Run("Properties", s.properties)
	s.run(t, "OnlineThenAlive", false, func(c *check) {
		c.online()
		c.alive()
		c.up(true, "after Online")
	})
	s.run(t, "OfflineAfterOnline", false, func(c *check) {
		c.online()
		c.offline()
		c.staysDown("Offline")
		c.notAlive("after Offline")
	})
	s.run(t, "OfflineIdempotent", false, func(c *check) {
		c.offline()
		c.online()
		c.offline()
		c.offline()
		c.up(false, "after Offline twice")
	})
	s.run(t, "TerminateBeforeOnline", false, func(c *check) {
		c.terminate()
		c.up(false, "after Terminate")
	})
	s.run(t, "TerminateAfterOnline", false, func(c *check) {
		c.online()
		c.terminate()
		c.staysDown("Terminate")
		c.notAlive("after Terminate")
	})
	s.run(t, "TerminateAfterOffline", false, func(c *check) {
		c.online()
		c.offline()
		c.terminate()
		c.up(false, "after Offline and Terminate")
		c.notAlive("after Offline and Terminate")
	})
	s.run(t, "TerminateTwice", false, func(c *check) {
		c.online()
		c.terminate()
		c.terminate()
		c.up(false, "after Terminate twice")
		c.notAlive("after Terminate twice")
	})
	s.run(t, "OnlineAfterTerminate", false, func(c *check) {
		c.online()
		c.terminate()
		c.must(RuleRestart, "Online after Terminate", c.r.Online)
		c.alive()
		c.up(true, "after Terminate and Online")
		c.offline()
		c.up(false, "after Offline")
	})
	s.run(t, "OnlineAfterOffline", false, func(c *check) {
		c.online()
		c.offline()
		c.must(RuleRestart, "Online after Offline", c.r.Online)
		c.alive()
		c.up(true, "after Offline and Online")
	})
	s.run(t, "CanceledContext", false, s.canceledContext)
	s.run(t, "ChecksHonourDeadline", false, func(c *check) {
		c.online()
		for _, m := range []struct {
			name string
			fn   func(context.Context) error
		}{{"LooksAlive", c.r.LooksAlive}, {"IsAlive", c.r.IsAlive}} {
			ctx, cancel := context.WithTimeout(context.Background(), s.o.Deadline)
			c.callCtx(ctx, m.name+" with a "+s.o.Deadline.String()+" ctx deadline", m.fn)
			cancel()
		}
	})
	s.run(t, "LooksAliveIsCheap", false, func(c *check) {
		if s.o.LooksAliveBudget < 0 {
			c.t.Skip("Options.LooksAliveBudget is negative")
		}
		c.online()
		fastest := time.Duration(1<<63 - 1)
		for range 20 {
			start := time.Now()
			if err := c.check("LooksAlive", c.r.LooksAlive); err != nil {
				c.fail(RuleHealthyWhenUp, "LooksAlive: %v", err)
			}
			fastest = min(fastest, time.Since(start))
		}
		if fastest > s.o.LooksAliveBudget {
			c.fail(RuleLooksAliveCheap, "the fastest of 20 LooksAlive calls took %v, over the budget of %v (Options.LooksAliveBudget); answer from state the resource already holds and leave the I/O to IsAlive", fastest, s.o.LooksAliveBudget)
		}
	})
	s.run(t, "CloseAfterOffline", false, func(c *check) {
		cl := c.closer()
		c.online()
		c.offline()
		c.close(cl)
	})
	s.run(t, "CloseAfterTerminate", false, func(c *check) {
		cl := c.closer()
		c.online()
		c.terminate()
		c.close(cl)
	})
	s.run(t, "NoFailurePushedOnOffline", false, s.noFailurePushed)
	s.run(t, "TerminateWhileOnlineHangs", true, func(c *check) {
		// No deadline: only Terminate may end this Online.
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		res := c.hangOnline(func() context.Context { return ctx })
		c.terminate()
		select {
		case err := <-res:
			if err == nil {
				c.fail(RuleTerminateOnline, "the hanging Online returned nil after Terminate; want an error")
			}
		case <-time.After(s.o.Grace):
			c.fail(RuleTerminateOnline, "the hanging Online did not return within %v (Options.Grace) after Terminate returned", s.o.Grace)
		}
		c.up(false, "after Terminate of a hanging Online")
	})
	s.run(t, "OnlineDeadline", true, func(c *check) {
		// The deadline starts when Online is called, after Options.Hang
		// prepared the hang: a slow Hang (a unit written and reloaded on
		// a loaded machine) must not eat the deadline and the grace.
		var ctx context.Context
		cancel := context.CancelFunc(func() {})
		defer func() { cancel() }()
		res := c.hangOnline(func() context.Context {
			ctx, cancel = context.WithTimeout(context.Background(), s.o.Deadline)
			return ctx
		})
		select {
		case err := <-res:
			if !errors.Is(err, context.DeadlineExceeded) {
				c.fail(RuleOnlineDeadline, "the hanging Online with a %v ctx deadline returned %v", s.o.Deadline, err)
			}
		case <-time.After(time.Until(deadlineOf(ctx)) + s.o.Grace):
			c.fail(RuleReturnOnCtx, "the hanging Online did not return within %v (Options.Grace) after its %v ctx deadline", s.o.Grace, s.o.Deadline)
		}
		if s.o.PluginExits != nil {
			// Across a process boundary the deadline returned the call
			// here; the plugin's Online must end by itself too, before
			// Terminate comes to its rescue.
			time.Sleep(s.o.Grace + s.o.Grace/2)
			if rule, msg, ok := s.pluginExited(0); ok {
				c.fail(rule, "%s", msg)
			}
		}
		c.terminate()
		c.up(false, "after Terminate")
	})
	if s.o.PluginExits != nil {
		// The host kills a plugin whose call outlived its ctx by Grace.
		t.Run("NoCallOutlivedItsCtx", func(t *testing.T) {
			time.Sleep(s.o.Grace + s.o.Grace/2)
			if rule, msg, ok := s.pluginExited(0); ok {
				(&check{t: t, s: s}).fail(rule, "%s", msg)
			}
		})
	}
}

func deadlineOf(ctx context.Context) time.Time {
	d, _ := ctx.Deadline()
	return d
}

func (s *suite) properties(t *testing.T) {
	c := &check{t: t, s: s}
	ctx, cancel := context.WithTimeout(context.Background(), s.o.Timeout)
	defer cancel()
	good := s.props(t)
	if err := c.callCtx(ctx, "Validate", func(ctx context.Context) error { return s.typ.Validate(ctx, good) }); err != nil {
		c.fail(RuleValidateGood, "Validate(%v) = %v; Open accepts these properties", good, err)
	}
	for _, bad := range s.o.BadProperties {
		var opened resource.Resource
		for _, step := range []struct {
			what string
			fn   func(context.Context) error
		}{
			{"Validate", func(ctx context.Context) error { return s.typ.Validate(ctx, bad.Properties) }},
			{"Open", func(ctx context.Context) error {
				r, err := s.typ.Open(ctx, resource.OpenRequest{Name: t.Name(), Properties: bad.Properties})
				opened = r
				return err
			}},
		} {
			err := c.callCtx(ctx, step.what, step.fn)
			var re *resource.Error
			switch {
			case err == nil:
				c.failNoStop(RuleBadProperties, "%s accepted %s %v; want a configuration error naming %q", step.what, bad.Name, bad.Properties, bad.Field)
			case resource.ClassOf(err) != resource.ClassConfiguration || !errors.As(err, &re):
				c.failNoStop(RuleBadProperties, "%s of %s %v: %v (class %s); want a configuration error naming %q", step.what, bad.Name, bad.Properties, err, resource.ClassOf(err), bad.Field)
			case re.Field != bad.Field:
				c.failNoStop(RuleBadProperties, "%s of %s %v: %v names %q; want %q", step.what, bad.Name, bad.Properties, err, re.Field, bad.Field)
			}
		}
		if opened != nil {
			_ = opened.Terminate(ctx)
			if cl, ok := opened.(resource.Closer); ok {
				_ = cl.Close()
			}
		}
	}
}

func (s *suite) canceledContext(c *check) {
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	okOrCanceled := func(what string, err error) {
		if err != nil && !errors.Is(err, context.Canceled) {
			c.fail(RuleCanceled, "%s with a canceled ctx: got %v", what, err)
		}
	}
	err := c.callCtx(canceled, "Online with a canceled ctx", c.r.Online)
	okOrCanceled("Online", err)
	if err != nil {
		c.online() // not online: bring it up for the remaining checks
	}
	okOrCanceled("LooksAlive", c.callCtx(canceled, "LooksAlive with a canceled ctx", c.r.LooksAlive))
	okOrCanceled("IsAlive", c.callCtx(canceled, "IsAlive with a canceled ctx", c.r.IsAlive))
	okOrCanceled("Offline", c.callCtx(canceled, "Offline with a canceled ctx", c.r.Offline))
	c.callCtx(canceled, "Terminate with a canceled ctx", c.r.Terminate) // any result, but it must return
	c.terminate()
	c.up(false, "after Terminate")
}

func (s *suite) noFailurePushed(c *check) {
	fr, ok := c.r.(resource.FailureReporter)
	if !ok {
		c.t.Skip("not a resource.FailureReporter")
	}
	var mu sync.Mutex
	var pushed []error
	fr.SetFailureHandler(func(err error) {
		mu.Lock()
		defer mu.Unlock()
		pushed = append(pushed, err)
	})
	c.online()
	c.offline()
	mu.Lock()
	defer mu.Unlock()
	if len(pushed) > 0 {
		c.fail(RuleNoPushOnOffline, "a graceful Online and Offline pushed failures: %v", pushed)
	}
}

func (s *suite) props(t *testing.T) resource.Properties {
	if s.o.Properties == nil {
		return nil
	}
	return s.o.Properties(t)
}

// check is one subtest's instance and helpers.
type check struct {
	t  *testing.T
	s  *suite
	r  resource.Resource
	in Instance
	// closedAlready: the subtest called Close; nothing may be called after.
	closedAlready bool
}

// run opens a fresh instance (with the hang properties if hang) and runs
// body as subtest name.
func (s *suite) run(t *testing.T, name string, hang bool, body func(c *check)) {
	t.Helper()
	t.Run(name, func(t *testing.T) {
		s.mu.Lock()
		stopped := s.stopped
		s.mu.Unlock()
		if stopped != "" {
			t.Skipf("skipped: %s", stopped)
		}
		if rule, msg, ok := s.pluginExited(0); ok {
			(&check{t: t, s: s}).fail(rule, "before this subtest: %s", msg)
		}
		if hang && s.o.Hang == nil && s.o.HangProperties == nil {
			t.Skipf("no hanging Online: %s", s.o.NoHang)
		}
		props := s.props(t)
		if hang && s.o.HangProperties != nil {
			props = s.o.HangProperties(t, maps.Clone(props))
		}
		c := &check{t: t, s: s}
		var r resource.Resource
		err := c.call("Open", func(ctx context.Context) error {
			var err error
			r, err = s.typ.Open(ctx, resource.OpenRequest{Name: t.Name(), Properties: props})
			return err
		})
		if err != nil {
			c.fail(RuleOpen, "Open(%v): %v", props, err)
		}
		c.r = r
		c.in = Instance{Name: t.Name(), Properties: props, Resource: r}
		t.Cleanup(func() {
			// Leave nothing behind, whatever the subtest did.
			if !c.closedAlready {
				c.cleanupCall("Terminate", r.Terminate)
				if cl, ok := r.(resource.Closer); ok {
					c.cleanupCall("Close", func(context.Context) error { return cl.Close() })
				}
			}
			if s.o.Up != nil && s.o.Up(t, c.in) {
				c.report(RuleDownAfterStop, "Up is true at the end, after Terminate", false)
			}
		})
		body(c)
	})
}

// fail reports a broken rule and ends the subtest. A rule that an earlier
// subtest broke already skips this one instead: one bug, one failure.
func (c *check) fail(rule, format string, args ...any) {
	c.t.Helper()
	c.report(rule, fmt.Sprintf(format, args...), true)
}

// failNoStop reports a broken rule and lets the subtest go on.
func (c *check) failNoStop(rule, format string, args ...any) {
	c.t.Helper()
	c.report(rule, fmt.Sprintf(format, args...), false)
}

func (c *check) report(rule, msg string, stop bool) {
	c.t.Helper()
	if r, m, ok := c.s.pluginExited(500 * time.Millisecond); ok {
		// The plugin process is gone: that is the bug, not what it broke.
		rule, msg, stop = r, m+"\n(seen as: "+msg+")", true
	}
	c.s.mu.Lock()
	first, seen := c.s.failed[rule]
	stopped := c.s.stopped
	if !seen {
		c.s.failed[rule] = c.t.Name()
		if stopRules[rule] {
			c.s.stopped = fmt.Sprintf("%s broke %q, so the remaining subtests would fail the same way", c.t.Name(), rule)
		}
	}
	c.s.mu.Unlock()
	switch {
	case !seen && stopped != "" && !stopRules[rule]:
		// A consequence of the bug that stopped the suite.
		c.t.Logf("also, after the suite stopped (rule: %s): %s", rule, msg)
		if stop {
			c.t.FailNow()
		}
	case seen && first != c.t.Name():
		if stop {
			c.t.Skipf("same bug as %s (rule: %s): %s", first, rule, msg)
		}
		c.t.Logf("same bug as %s (rule: %s): %s", first, rule, msg)
	case seen:
		if stop {
			c.t.FailNow()
		}
	default:
		c.t.Errorf("%s\nbroken rule: %s", msg, rule)
		if stop {
			c.t.FailNow()
		}
	}
}

// callCtx runs fn(ctx) and returns its error. A call that has not returned
// o.Grace after ctx ended breaks RuleReturnOnCtx; one that has not returned
// within o.Timeout breaks RuleNoReturn.
func (c *check) callCtx(ctx context.Context, what string, fn func(context.Context) error) error {
	c.t.Helper()
	done := make(chan error, 1)
	go func() { done <- fn(ctx) }()
	guard := time.NewTimer(c.s.o.Timeout)
	defer guard.Stop()
	ctxDone := ctx.Done()
	var grace <-chan time.Time
	for {
		select {
		case err := <-done:
			return err
		case <-ctxDone:
			ctxDone = nil
			grace = time.After(c.s.o.Grace)
		case <-grace:
			c.fail(RuleReturnOnCtx, "%s did not return within %v (Options.Grace) after its ctx ended (%v)", what, c.s.o.Grace, context.Cause(ctx))
			return nil
		case <-guard.C:
			c.fail(RuleNoReturn, "%s did not return within %v (Options.Timeout)", what, c.s.o.Timeout)
			return nil
		}
	}
}

// call runs fn under a fresh ctx bounded by o.Timeout.
func (c *check) call(what string, fn func(context.Context) error) error {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), c.s.o.Timeout)
	defer cancel()
	return c.callCtx(ctx, what, fn)
}

// cleanupCall is call for t.Cleanup: it reports without stopping.
func (c *check) cleanupCall(what string, fn func(context.Context) error) {
	ctx, cancel := context.WithTimeout(context.Background(), c.s.o.Timeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- fn(ctx) }()
	select {
	case err := <-done:
		if err != nil && what == "Terminate" {
			c.report(RuleTerminate, fmt.Sprintf("Terminate at the end: %v", err), false)
		}
	case <-time.After(c.s.o.Timeout + c.s.o.Grace):
		c.report(RuleNoReturn, what+" at the end did not return", false)
	}
}

func (c *check) must(rule, what string, fn func(context.Context) error) {
	c.t.Helper()
	if err := c.call(what, fn); err != nil {
		c.fail(rule, "%s: %v", what, err)
	}
}

func (c *check) online()    { c.t.Helper(); c.must(RuleOnline, "Online", c.r.Online) }
func (c *check) offline()   { c.t.Helper(); c.must(RuleOffline, "Offline", c.r.Offline) }
func (c *check) terminate() { c.t.Helper(); c.must(RuleTerminate, "Terminate", c.r.Terminate) }

// check runs a health check under a ctx bounded by o.CallTimeout.
func (c *check) check(what string, fn func(context.Context) error) error {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), c.s.o.CallTimeout)
	defer cancel()
	return c.callCtx(ctx, what, fn)
}

func (c *check) alive() {
	c.t.Helper()
	for _, m := range []struct {
		what string
		fn   func(context.Context) error
	}{{"LooksAlive after Online", c.r.LooksAlive}, {"IsAlive after Online", c.r.IsAlive}} {
		if err := c.check(m.what, m.fn); err != nil {
			c.fail(RuleHealthyWhenUp, "%s: %v", m.what, err)
		}
	}
}

func (c *check) notAlive(when string) {
	c.t.Helper()
	if err := c.check("LooksAlive", c.r.LooksAlive); err == nil {
		c.fail(RuleNotAliveWhenOff, "LooksAlive %s returned nil; want an error", when)
	}
	if err := c.check("IsAlive", c.r.IsAlive); err == nil {
		c.fail(RuleNotAliveWhenOff, "IsAlive %s returned nil; want an error", when)
	}
}

func (c *check) up(want bool, when string) {
	c.t.Helper()
	if c.s.o.Up == nil {
		return
	}
	if got := c.s.o.Up(c.t, c.in); got != want {
		rule := RuleDownAfterStop
		if want {
			rule = RuleOnline
		}
		c.fail(rule, "Up %s = %v, want %v", when, got, want)
	}
}

// staysDown checks Up is false now and at 5 points over o.Recheck.
func (c *check) staysDown(after string) {
	c.t.Helper()
	c.up(false, "after "+after)
	if c.s.o.Up == nil {
		return
	}
	for i := 1; i <= 5; i++ {
		time.Sleep(c.s.o.Recheck / 5)
		if c.s.o.Up(c.t, c.in) {
			c.fail(RuleStaysDown, "Up was false right after %s returned but true %v later: something recreated it in the background", after, c.s.o.Recheck*time.Duration(i)/5)
		}
	}
}

func (c *check) closer() resource.Closer {
	cl, ok := c.r.(resource.Closer)
	if !ok {
		c.t.Skip("not a resource.Closer")
	}
	return cl
}

func (c *check) close(cl resource.Closer) {
	c.t.Helper()
	c.closedAlready = true
	if err := c.call("Close", func(context.Context) error { return cl.Close() }); err != nil {
		c.fail(RuleClose, "Close: %v", err)
	}
}

// pluginExited reports a plugin process exit (waiting up to wait for one
// to be told) as the rule it breaks and a message.
func (s *suite) pluginExited(wait time.Duration) (rule, msg string, ok bool) {
	if s.o.PluginExits == nil {
		return "", "", false
	}
	deadline := time.Now().Add(wait)
	var exits []string
	for {
		s.mu.Lock()
		s.exits = append(s.exits, s.o.PluginExits()...)
		exits = s.exits
		s.exits = nil
		s.mu.Unlock()
		if len(exits) > 0 || !time.Now().Before(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(exits) == 0 {
		return "", "", false
	}
	slices.Sort(exits)
	for _, e := range exits {
		if strings.Contains(e, "deadlocked") {
			return RuleReturnOnCtx, fmt.Sprintf("in the plugin, a call outlived its ctx by more than %v (Options.Grace), so the host killed the plugin: %v", s.o.Grace, exits), true
		}
	}
	return RuleNoCrash, fmt.Sprintf("the plugin process exited: %v", exits), true
}

// hangOnline makes Online hang, then starts it with the ctx newCtx
// returns (made only now, so that the time Options.Hang takes does not
// count against a deadline) and returns its result channel once it is
// hanging.
func (c *check) hangOnline(newCtx func() context.Context) <-chan error {
	c.t.Helper()
	var hanging <-chan struct{}
	if c.s.o.Hang != nil {
		hanging = c.s.o.Hang(c.t, c.in)
	}
	ctx := newCtx()
	res := make(chan error, 1)
	go func() { res <- c.r.Online(ctx) }()
	if hanging == nil {
		select {
		case <-time.After(c.s.o.HangSettle):
		case err := <-res:
			res <- err
		}
		return res
	}
	select {
	case <-hanging:
	case err := <-res:
		// Online returned before it was known to hang: put the result
		// back for the caller to judge.
		res <- err
	case <-time.After(c.s.o.Timeout):
		c.t.Fatalf("Online was not hanging within %v (Options.Hang's channel not closed)", c.s.o.Timeout)
	}
	return res
}
