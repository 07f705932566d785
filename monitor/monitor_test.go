package monitor_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sftkit/sft/monitor"
	"github.com/sftkit/sft/policy"
	"github.com/sftkit/sft/resource"
	rt "github.com/sftkit/sft/resource/resourcetest"
)

// rig is a monitor with fakes and an event log, inside a synctest bubble.
type rig struct {
	t     *testing.T
	m     *monitor.Monitor
	fakes map[string]*rt.Fake
	sub   *monitor.Subscription
	seen  []monitor.Event
}

type resOpt func(*monitor.ResourceSpec)

func dependsOn(names ...string) resOpt {
	return func(s *monitor.ResourceSpec) { s.DependsOn = names }
}

func restart(r policy.Restart) resOpt { return func(s *monitor.ResourceSpec) { s.Restart = r } }

func timing(t policy.Timing) resOpt { return func(s *monitor.ResourceSpec) { s.Timing = t } }

type resDef struct {
	name    string
	opts    []resOpt
	instant bool
	wrap    func(*rt.Fake) resource.Resource // the resource the monitor gets, if not the fake
}

// instantFake is a Fake whose LooksAlive the monitor may call inline from
// its sweep (resource.InstantChecker).
type instantFake struct{ *rt.Fake }

func (instantFake) LooksAliveInstant() bool { return true }

func instant(d resDef) resDef { d.instant = true; return d }

func r(name string, opts ...resOpt) resDef { return resDef{name: name, opts: opts} }

func newRig(t *testing.T, group string, defs ...resDef) *rig {
	t.Helper()
	return newRigWith(t, monitor.Config{}, group, defs...)
}

func newRigWith(t *testing.T, cfg monitor.Config, group string, defs ...resDef) *rig {
	t.Helper()
	x := &rig{t: t, m: monitor.New(cfg), fakes: map[string]*rt.Fake{}}
	x.sub = x.m.Subscribe(10000)
	spec := monitor.GroupSpec{Name: group}
	for _, d := range defs {
		f := rt.NewFake(d.name)
		x.fakes[d.name] = f
		rs := monitor.ResourceSpec{Name: d.name, Type: "fake", Resource: f}
		if d.instant {
			rs.Resource = instantFake{f}
		}
		if d.wrap != nil {
			rs.Resource = d.wrap(f)
		}
		for _, o := range d.opts {
			o(&rs)
		}
		spec.Resources = append(spec.Resources, rs)
	}
	require.NoError(t, x.m.AddGroup(spec))
	t.Cleanup(func() {
		if err := x.m.Close(context.Background()); !errors.Is(err, monitor.ErrClosed) {
			require.NoError(t, err)
		}
		for n, f := range x.fakes {
			require.False(t, f.Up(), "%s still up after Close", n)
			require.True(t, f.Closed(), "%s not closed after Close", n)
			require.Empty(t, f.Violations(), "%s: contract violations", n)
		}
	})
	return x
}

// drain moves every event delivered so far into x.seen.
func (x *rig) drain() []monitor.Event {
	for {
		select {
		case e, ok := <-x.sub.C():
			if !ok {
				return x.seen
			}
			x.seen = append(x.seen, e)
		default:
			return x.seen
		}
	}
}

// waitEvent waits (in fake time, at most a day) for an event matching
// pred and returns it.
func (x *rig) waitEvent(what string, pred func(monitor.Event) bool) monitor.Event {
	x.t.Helper()
	deadline := time.After(24 * time.Hour)
	for {
		select {
		case e := <-x.sub.C():
			x.seen = append(x.seen, e)
			if pred(e) {
				return e
			}
		case <-deadline:
			x.t.Fatalf("no %s within a day; events: %v", what, x.seen)
		}
	}
}

func (x *rig) waitResource(name string, st resource.State) monitor.Event {
	x.t.Helper()
	return x.waitEvent(name+" "+st.String(), func(e monitor.Event) bool {
		return e.Kind == monitor.EventStateChanged && e.Resource == name && e.To == st
	})
}

func (x *rig) online(group string) {
	x.t.Helper()
	require.NoError(x.t, x.m.Online(context.Background(), group))
}

func kinds(evs []monitor.Event, kind monitor.EventKind) []monitor.Event {
	var out []monitor.Event
	for _, e := range evs {
		if e.Kind == kind {
			out = append(out, e)
		}
	}
	return out
}

func methods(f *rt.Fake) string {
	var s []string
	for _, m := range f.Methods() {
		s = append(s, string(m))
	}
	return strings.Join(s, " ")
}

func TestOnlinePollsAndOffline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		x := newRig(t, "g", r("a"))
		a := x.fakes["a"]
		start := time.Now()
		x.online("g")
		synctest.Wait()
		require.True(t, a.Up())
		// The first LooksAlive runs at once after Online.
		require.Equal(t, 1, a.Calls(rt.MethodLooksAlive))
		require.Equal(t, 0, a.Calls(rt.MethodIsAlive))
		time.Sleep(10*time.Second - time.Since(start) + time.Millisecond)
		synctest.Wait()
		require.Equal(t, 11, a.Calls(rt.MethodLooksAlive), "LooksAlive every second")
		require.Equal(t, 1, a.Calls(rt.MethodIsAlive), "IsAlive every ten seconds")
		st, err := x.m.GroupStatus("g")
		require.NoError(t, err)
		require.Equal(t, resource.StateOnline, st.State)
		require.NoError(t, x.m.Offline(context.Background(), "g"))
		require.False(t, a.Up())
		st, _ = x.m.GroupStatus("g")
		require.Equal(t, resource.StateOffline, st.State)
		// No polling once offline.
		n := a.Calls(rt.MethodLooksAlive)
		time.Sleep(5 * time.Second)
		require.Equal(t, n, a.Calls(rt.MethodLooksAlive))
	})
}

func TestLooksAliveFailureTriggersIsAliveAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		x := newRig(t, "g", r("a"))
		a := x.fakes["a"]
		x.online("g")
		synctest.Wait()
		a.SetError(rt.MethodLooksAlive, errors.New("looks dead"))
		time.Sleep(time.Second)
		synctest.Wait()
		log := a.Log()
		last := log[len(log)-1]
		prev := log[len(log)-2]
		require.Equal(t, rt.MethodLooksAlive, prev.Method)
		require.Error(t, prev.Err)
		require.Equal(t, rt.MethodIsAlive, last.Method, "IsAlive right after the failed LooksAlive")
		require.Equal(t, prev.End, last.Start, "no delay between them")
		require.NoError(t, last.Err)
		// IsAlive said alive: the resource stays online.
		st, _ := x.m.GroupStatus("g")
		require.Equal(t, resource.StateOnline, st.Resources[0].State)
	})
}

func TestRestartWithinThreshold(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		x := newRig(t, "g", r("a", restart(policy.Restart{Threshold: 3, Delay: 500 * time.Millisecond})))
		a := x.fakes["a"]
		x.online("g")
		for i := 1; i <= 3; i++ {
			a.SetAlive(false)
			failedAt := x.waitResource("a", resource.StateFailed).Time
			a.SetAlive(true)
			ev := x.waitEvent("restart", func(e monitor.Event) bool { return e.Kind == monitor.EventRestart })
			require.Equal(t, 500*time.Millisecond, ev.Delay)
			require.Contains(t, ev.Reason, fmt.Sprintf("restart %d of 3", i))
			on := x.waitResource("a", resource.StateOnlinePending)
			require.Equal(t, 500*time.Millisecond, on.Time.Sub(failedAt), "restarted after the delay")
			x.waitResource("a", resource.StateOnline)
		}
		require.Equal(t, 4, a.Calls(rt.MethodOnline))
		require.Equal(t, 3, a.Calls(rt.MethodTerminate), "each failure terminated before the restart")
		st, _ := x.m.GroupStatus("g")
		require.Equal(t, 3, st.Resources[0].Restarts)
		require.Contains(t, st.Resources[0].LastFailure, "not alive")
		require.Empty(t, kinds(x.drain(), monitor.EventGroupFailed))
	})
}

func TestEscalationToGroupFailureAfterThreshold(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		x := newRig(t, "g",
			r("a"),
			r("b", dependsOn("a"), restart(policy.Restart{Threshold: 2, Delay: time.Second})))
		a, b := x.fakes["a"], x.fakes["b"]
		b.SetError(rt.MethodOnline, errors.New("port in use"))
		err := x.m.Online(context.Background(), "g")
		require.ErrorIs(t, err, monitor.ErrGroupFailed)
		require.Contains(t, err.Error(), "restart threshold reached: 2 restarts")
		ev := kinds(x.drain(), monitor.EventGroupFailed)
		require.Len(t, ev, 1)
		require.True(t, ev[0].Failover, "restart-then-failover asks for a move")
		require.Equal(t, "b", ev[0].Resource)
		require.Equal(t, 3, b.Calls(rt.MethodOnline), "first try plus two restarts")
		synctest.Wait()
		require.False(t, a.Up(), "the whole group goes offline here: %v %s", x.drain(), methods(a))
		st, _ := x.m.GroupStatus("g")
		require.True(t, st.Failed)
		require.Equal(t, resource.StateFailed, st.State)
		// Clear resets it; Online then tries again with a fresh count.
		require.NoError(t, x.m.Clear(context.Background(), "g"))
		st, _ = x.m.GroupStatus("g")
		require.False(t, st.Failed)
		require.Equal(t, 0, st.Resources[1].Restarts)
		b.SetError(rt.MethodOnline, nil)
		require.NoError(t, x.m.Online(context.Background(), "g"))
		require.True(t, a.Up())
		require.True(t, b.Up())
	})
}

func TestFailureCountForgottenAfterPeriod(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		x := newRig(t, "g", r("a", restart(policy.Restart{Threshold: 1, Period: time.Minute, Delay: -1})))
		a := x.fakes["a"]
		x.online("g")
		fail := func() {
			a.PushFailure(errors.New("crashed"))
		}
		fail()
		x.waitEvent("restart", func(e monitor.Event) bool { return e.Kind == monitor.EventRestart })
		x.waitResource("a", resource.StateOnline)
		time.Sleep(61 * time.Second) // the first restart is forgotten
		fail()
		ev := x.waitEvent("restart or group failure", func(e monitor.Event) bool {
			return e.Kind == monitor.EventRestart || e.Kind == monitor.EventGroupFailed
		})
		require.Equal(t, monitor.EventRestart, ev.Kind, "a restart older than the period does not count: %v", ev)
		x.waitResource("a", resource.StateOnline)
		time.Sleep(30 * time.Second) // within the period now
		fail()
		ev = x.waitEvent("group failure", func(e monitor.Event) bool {
			return e.Kind == monitor.EventRestart || e.Kind == monitor.EventGroupFailed
		})
		require.Equal(t, monitor.EventGroupFailed, ev.Kind)
		require.Contains(t, ev.Reason, "1 restarts within 1m0s")
	})
}

func TestPendingTimeoutTerminatesAndFails(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		x := newRig(t, "g", r("a",
			timing(policy.Timing{PendingTimeout: 5 * time.Second}),
			restart(policy.Restart{Action: policy.NoRestart, RetryPeriod: -1})))
		a := x.fakes["a"]
		a.Block(rt.MethodOnline, 1, rt.Deadlock) // ignores ctx; Terminate does not help either
		a.IgnoreTerminate(true)
		start := time.Now()
		err := x.m.Online(context.Background(), "g")
		require.ErrorIs(t, err, monitor.ErrGroupFailed)
		evs := x.drain()
		to := kinds(evs, monitor.EventCallTimedOut)
		require.Len(t, to, 1)
		require.Equal(t, monitor.MethodOnline, to[0].Method)
		require.Equal(t, 5*time.Second, to[0].Time.Sub(start))
		// Terminate was called at the pending timeout, while Online hung.
		var term rt.Call
		for _, c := range a.Log() {
			if c.Method == rt.MethodTerminate {
				term = c
				break
			}
		}
		require.Equal(t, 5*time.Second, term.Start.Sub(start))
		failed := slices.IndexFunc(evs, func(e monitor.Event) bool {
			return e.Kind == monitor.EventStateChanged && e.To == resource.StateFailed
		})
		require.GreaterOrEqual(t, failed, 0, "resource marked Failed: %v", evs)
		// Online ignored both its context and Terminate: at the deadlock
		// timeout (4 s = 2 x call timeout, so 2 s past the deadline) the
		// hosting process was killed.
		dl := kinds(evs, monitor.EventCallDeadlocked)
		require.Len(t, dl, 1)
		require.Equal(t, monitor.MethodOnline, dl[0].Method)
		require.Equal(t, 7*time.Second, dl[0].Time.Sub(start))
		require.Len(t, a.Kills(), 1)
		a.Release(rt.MethodOnline)
		a.IgnoreTerminate(false)
	})
}

func TestPendingTimeoutCancelableOnline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		x := newRig(t, "g", r("a",
			timing(policy.Timing{PendingTimeout: 5 * time.Second}),
			restart(policy.Restart{Threshold: 1, Delay: time.Second})))
		a := x.fakes["a"]
		a.Block(rt.MethodOnline, 1, rt.Cancelable)
		start := time.Now()
		x.online("g") // the first Online times out, the restart succeeds
		require.Equal(t, 6*time.Second, time.Since(start), "5 s pending timeout + 1 s restart delay")
		require.Equal(t, 2, a.Calls(rt.MethodOnline))
		require.GreaterOrEqual(t, a.Calls(rt.MethodTerminate), 1)
		require.Len(t, kinds(x.drain(), monitor.EventCallTimedOut), 1)
	})
}

func TestProgressExtendsPendingTimeout(t *testing.T) {
	for _, def := range []func(string, ...resOpt) resDef{r, boundRes} { // boundRes: the call runs inline (bound_test.go)
		synctest.Test(t, func(t *testing.T) {
			x := newRig(t, "g", def("a", timing(policy.Timing{PendingTimeout: 5 * time.Second})))
			a := x.fakes["a"]
			a.SetProgress(rt.MethodOnline, 3, 4*time.Second) // 12 s in all, never 5 s without progress
			start := time.Now()
			x.online("g")
			require.Equal(t, 12*time.Second, time.Since(start))
			require.Empty(t, kinds(x.drain(), monitor.EventCallTimedOut))
		})
	}
}

func TestDeadlockKillsHost(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		x := newRig(t, "g", r("a", timing(policy.Timing{CallTimeout: 2 * time.Second, DeadlockTimeout: 4 * time.Second})))
		a := x.fakes["a"]
		x.online("g")
		synctest.Wait()
		a.Block(rt.MethodLooksAlive, 1, rt.Deadlock)
		stuck := time.Now().Add(time.Second) // the next LooksAlive
		ev := x.waitEvent("deadlock", func(e monitor.Event) bool { return e.Kind == monitor.EventCallDeadlocked })
		require.Equal(t, monitor.MethodLooksAlive, ev.Method)
		require.Equal(t, 4*time.Second, ev.Time.Sub(stuck), "abandoned at the deadlock timeout")
		require.Contains(t, ev.Reason, "host process killed")
		require.Len(t, a.Kills(), 1)
		// The kill released the call; the restart policy brings it back.
		x.waitResource("a", resource.StateFailed)
		x.waitResource("a", resource.StateOnline)
		require.True(t, a.Up())
	})
}

func TestPushedFailureFailsAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		x := newRig(t, "g", r("a"))
		a := x.fakes["a"]
		x.online("g")
		synctest.Wait()
		time.Sleep(300 * time.Millisecond) // between two polls
		pushedAt := time.Now()
		require.True(t, a.PushFailure(resource.Transient(errors.New("exit status 1"))))
		ev := x.waitResource("a", resource.StateFailed)
		require.Equal(t, pushedAt, ev.Time, "no wait for the next poll")
		require.Contains(t, ev.Reason, "exit status 1")
		require.Len(t, kinds(x.drain(), monitor.EventFailurePushed), 1)
		x.waitResource("a", resource.StateOnline)
	})
}

func TestDependencyOrderOnlineAndOffline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// ip <- app <- check, ip <- disk: app and disk come up in parallel.
		x := newRig(t, "g",
			r("check", dependsOn("app")),
			r("app", dependsOn("ip")),
			r("disk", dependsOn("ip")),
			r("ip"))
		f := x.fakes
		f["ip"].Block(rt.MethodOnline, 1, rt.Cancelable)
		f["app"].Block(rt.MethodOnline, 1, rt.Cancelable)
		f["disk"].Block(rt.MethodOnline, 1, rt.Cancelable)
		done := make(chan error, 1)
		go func() { done <- x.m.Online(context.Background(), "g") }()
		synctest.Wait()
		require.Equal(t, 1, f["ip"].Calls(rt.MethodOnline))
		for _, n := range []string{"app", "disk", "check"} {
			require.Zero(t, f[n].Calls(rt.MethodOnline), "%s before its dependency", n)
		}
		f["ip"].Release(rt.MethodOnline)
		synctest.Wait()
		require.Equal(t, 1, f["app"].Blocked(rt.MethodOnline), "app and disk in parallel")
		require.Equal(t, 1, f["disk"].Blocked(rt.MethodOnline), "app and disk in parallel")
		require.Zero(t, f["check"].Calls(rt.MethodOnline))
		f["disk"].Release(rt.MethodOnline)
		synctest.Wait()
		require.Zero(t, f["check"].Calls(rt.MethodOnline), "check waits for app")
		f["app"].Release(rt.MethodOnline)
		require.NoError(t, <-done)

		// Offline in reverse: check, then app and disk, then ip.
		f["check"].Block(rt.MethodOffline, 1, rt.Cancelable)
		f["disk"].Block(rt.MethodOffline, 1, rt.Cancelable)
		go func() { done <- x.m.Offline(context.Background(), "g") }()
		synctest.Wait()
		require.Equal(t, 1, f["check"].Blocked(rt.MethodOffline))
		require.Equal(t, 1, f["disk"].Blocked(rt.MethodOffline), "disk has no dependents: goes at once")
		require.Zero(t, f["app"].Calls(rt.MethodOffline), "app waits for check")
		require.Zero(t, f["ip"].Calls(rt.MethodOffline))
		f["check"].Release(rt.MethodOffline)
		synctest.Wait()
		require.Equal(t, 1, f["app"].Calls(rt.MethodOffline))
		require.Zero(t, f["ip"].Calls(rt.MethodOffline), "ip waits for disk")
		f["disk"].Release(rt.MethodOffline)
		require.NoError(t, <-done)
		require.Equal(t, 1, f["ip"].Calls(rt.MethodOffline))
	})
}

func TestDependentsTakenDownAndRestored(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		x := newRig(t, "g", r("ip"), r("app", dependsOn("ip")), r("web", dependsOn("app")))
		f := x.fakes
		x.online("g")
		synctest.Wait()
		f["ip"].PushFailure(errors.New("address removed"))
		x.waitEvent("restart", func(e monitor.Event) bool { return e.Kind == monitor.EventRestart })
		x.waitEvent("group online", func(e monitor.Event) bool {
			return e.Kind == monitor.EventGroupStateChanged && e.To == resource.StateOnline
		})
		// Every dependent went offline before ip came back, and came back after.
		ipLog := f["ip"].Log()
		ipRestart := ipLog[slices.IndexFunc(ipLog[1:], func(c rt.Call) bool { return c.Method == rt.MethodOnline })+1]
		for _, n := range []string{"app", "web"} {
			require.Equal(t, 2, f[n].Calls(rt.MethodOnline), n)
			require.Equal(t, 1, f[n].Calls(rt.MethodOffline), n)
			var off, on2 rt.Call
			for _, c := range f[n].Log() {
				switch c.Method {
				case rt.MethodOffline:
					off = c
				case rt.MethodOnline:
					on2 = c
				}
			}
			require.False(t, off.End.After(ipRestart.Start), "%s offline before ip restarts", n)
			require.False(t, on2.Start.Before(ipRestart.End), "%s online after ip is back", n)
			require.True(t, f[n].Up())
		}
		// web went offline before app (reverse order), came back after it.
		order := func(n string, m rt.Method) time.Time {
			for _, c := range f[n].Log() {
				if c.Method == m {
					return c.End
				}
			}
			return time.Time{}
		}
		require.False(t, order("web", rt.MethodOffline).After(order("app", rt.MethodOffline)))
		require.Equal(t, 0, f["app"].Calls(rt.MethodTerminate), "dependents are taken offline gracefully")
	})
}

func TestCycleRejected(t *testing.T) {
	t.Parallel()
	m := monitor.New(monitor.Config{})
	defer m.Close(context.Background())
	spec := func(deps map[string][]string, names ...string) monitor.GroupSpec {
		g := monitor.GroupSpec{Name: "g"}
		for _, n := range names {
			g.Resources = append(g.Resources, monitor.ResourceSpec{Name: n, Resource: rt.NewFake(n), DependsOn: deps[n]})
		}
		return g
	}
	for _, tc := range []struct {
		name  string
		deps  map[string][]string
		names []string
		want  string
	}{
		{"cycle of three", map[string][]string{"a": {"b"}, "b": {"c"}, "c": {"a"}}, []string{"a", "b", "c"}, "dependency cycle: a -> b -> c -> a"},
		{"cycle of two", map[string][]string{"x": {"y"}, "y": {"x"}}, []string{"x", "y"}, "dependency cycle: x -> y -> x"},
		{"self", map[string][]string{"a": {"a"}}, []string{"a"}, `resources[0].depends_on[0] "a": a resource cannot depend on itself`},
		{"unknown", map[string][]string{"a": {"nope"}}, []string{"a"}, `resources[0].depends_on[0] "nope": no such resource in the group`},
		{"duplicate name", nil, []string{"a", "a"}, `resources[1].name "a": already used by resources[0]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := m.AddGroup(spec(tc.deps, tc.names...))
			require.ErrorContains(t, err, tc.want)
		})
	}
	require.Empty(t, m.Status().Groups)
}

func TestBadPolicyRejected(t *testing.T) {
	t.Parallel()
	m := monitor.New(monitor.Config{})
	defer m.Close(context.Background())
	err := m.AddGroup(monitor.GroupSpec{Name: "g", Resources: []monitor.ResourceSpec{{
		Name: "a", Resource: rt.NewFake("a"),
		Timing:  policy.Timing{CallTimeout: 5 * time.Second, DeadlockTimeout: time.Second},
		Restart: policy.Restart{Threshold: -1},
	}}})
	require.ErrorContains(t, err, "deadlock_timeout 1s: must be longer than call_timeout (5s)")
	require.ErrorContains(t, err, "threshold -1: must not be negative")
}

func TestSlowSubscriberDoesNotBlock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		x := newRig(t, "g", r("a", restart(policy.Restart{Threshold: 100, Delay: -1})))
		slow := x.m.Subscribe(2) // never read until the end
		a := x.fakes["a"]
		x.online("g")
		for range 20 {
			synctest.Wait()
			a.PushFailure(errors.New("boom"))
			x.waitEvent("restart", func(e monitor.Event) bool { return e.Kind == monitor.EventRestart })
			x.waitResource("a", resource.StateOnline)
		}
		st, _ := x.m.GroupStatus("g")
		require.Equal(t, 20, st.Resources[0].Restarts, "the monitor kept going")
		require.Greater(t, slow.Dropped(), uint64(50))
		// Once it reads, it is told how many it missed.
		<-slow.C()
		<-slow.C()
		missed := slow.Dropped()
		a.PushFailure(errors.New("boom"))
		x.waitResource("a", resource.StateOnline)
		ev := <-slow.C()
		require.Equal(t, monitor.EventsDropped, ev.Kind)
		require.Equal(t, missed, ev.Dropped)
		slow.Close()
		for range slow.C() { // buffered events, then closed (else the bubble deadlocks)
		}
	})
}

func TestStatusSnapshot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		x := newRig(t, "web", r("ip"), r("app", dependsOn("ip")))
		st := x.m.Status()
		require.Len(t, st.Groups, 1)
		require.Equal(t, resource.StateOffline, st.Groups[0].State)
		x.online("web")
		st = x.m.Status()
		g := st.Groups[0]
		require.Equal(t, "web", g.Name)
		require.Equal(t, resource.StateOnline, g.State)
		app, ok := g.Resource("app")
		require.True(t, ok)
		require.Equal(t, []string{"ip"}, app.DependsOn)
		require.Equal(t, resource.StateOnline, app.State)
		_, err := x.m.GroupStatus("nope")
		require.ErrorIs(t, err, monitor.ErrNoSuchGroup)
	})
}

func TestCloseTakesEverythingOfflineInOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := monitor.New(monitor.Config{})
		ip, app := rt.NewFake("ip"), rt.NewFake("app")
		require.NoError(t, m.AddGroup(monitor.GroupSpec{Name: "g", Resources: []monitor.ResourceSpec{
			{Name: "ip", Resource: ip}, {Name: "app", Resource: app, DependsOn: []string{"ip"}},
		}}))
		require.NoError(t, m.Online(context.Background(), "g"))
		require.NoError(t, m.Close(context.Background()))
		require.False(t, ip.Up())
		require.False(t, app.Up())
		require.True(t, ip.Closed())
		appOff := app.Log()[slices.IndexFunc(app.Log(), func(c rt.Call) bool { return c.Method == rt.MethodOffline })]
		ipOff := ip.Log()[slices.IndexFunc(ip.Log(), func(c rt.Call) bool { return c.Method == rt.MethodOffline })]
		require.False(t, ipOff.Start.Before(appOff.End))
		require.ErrorIs(t, m.Online(context.Background(), "g"), monitor.ErrClosed)
		// synctest.Test fails if any goroutine the monitor started is left.
	})
}

func TestInstantLooksAliveSweep(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		x := newRig(t, "g", instant(r("a")), instant(r("b")), r("c"))
		f := x.fakes
		start := time.Now()
		x.online("g")
		time.Sleep(9500*time.Millisecond - time.Since(start))
		synctest.Wait()
		for _, n := range []string{"a", "b", "c"} {
			require.Equal(t, 10, f[n].Calls(rt.MethodLooksAlive), "%s: at once, then every second", n)
			require.Equal(t, 0, f[n].Calls(rt.MethodIsAlive), n)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		for _, n := range []string{"a", "b", "c"} {
			// At 10 s IsAlive is due too; a sweep finding the slot taken by
			// it skips that round, as IsAlive covers LooksAlive.
			require.Contains(t, []int{10, 11}, f[n].Calls(rt.MethodLooksAlive), n)
			require.Equal(t, 1, f[n].Calls(rt.MethodIsAlive), n)
		}
		// A failed inline LooksAlive is confirmed by IsAlive at once.
		f["a"].SetError(rt.MethodLooksAlive, errors.New("looks dead"))
		time.Sleep(time.Second)
		synctest.Wait()
		log := f["a"].Log()
		last, prev := log[len(log)-1], log[len(log)-2]
		require.Equal(t, rt.MethodLooksAlive, prev.Method)
		require.Error(t, prev.Err)
		require.Equal(t, rt.MethodIsAlive, last.Method)
		require.Equal(t, prev.End, last.Start)
		st, _ := x.m.GroupStatus("g")
		require.Equal(t, resource.StateOnline, st.Resources[0].State, "IsAlive said alive")
		// IsAlive agrees that it is dead: failed, terminated, restarted.
		f["a"].SetAlive(false)
		x.waitResource("a", resource.StateFailed)
		f["a"].SetAlive(true)
		x.waitResource("a", resource.StateOnline)
		require.Equal(t, 1, f["a"].Calls(rt.MethodTerminate))
		require.True(t, f["b"].Up())
	})
}

func TestFailedGroupRetriedAfterRetryPeriod(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		x := newRig(t, "g", r("a", restart(policy.Restart{Threshold: 1, Delay: -1, RetryPeriod: time.Hour})))
		a := x.fakes["a"]
		x.online("g")
		a.SetError(rt.MethodOnline, errors.New("disk full"))
		a.PushFailure(errors.New("crashed"))
		ev := x.waitEvent("group failure", func(e monitor.Event) bool { return e.Kind == monitor.EventGroupFailed })
		require.True(t, ev.Failover)
		require.Equal(t, time.Hour, ev.RetryAfter)
		failedAt := ev.Time
		a.SetError(rt.MethodOnline, nil)
		up := x.waitEvent("group online again", func(e monitor.Event) bool {
			return e.Kind == monitor.EventGroupStateChanged && e.To == resource.StateOnline
		})
		require.Equal(t, time.Hour, up.Time.Sub(failedAt), "retried after the retry period")
		require.True(t, a.Up())
	})
}

func TestOfflineCancelsRetry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		x := newRig(t, "g", r("a", restart(policy.Restart{Action: policy.NoRestart, RetryPeriod: time.Minute})))
		a := x.fakes["a"]
		x.online("g")
		a.PushFailure(errors.New("crashed"))
		ev := x.waitEvent("group failure", func(e monitor.Event) bool { return e.Kind == monitor.EventGroupFailed })
		require.False(t, ev.Failover)
		require.Equal(t, time.Minute, ev.RetryAfter)
		require.NoError(t, x.m.Offline(context.Background(), "g"))
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		require.False(t, a.Up(), "taken offline on purpose: no retry")
		require.Equal(t, 1, a.Calls(rt.MethodOnline))
	})
}
