package monitor_test

// Regression tests for issue 8 (monitor bugs 1-12, and the monitor side of
// 18 and 20). Each reproduces the bug as reported; the ones about a race
// between two things due at the same instant repeat the scenario, so that
// either order is exercised.

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sftkit/sft/monitor"
	"github.com/sftkit/sft/policy"
	"github.com/sftkit/sft/resource"
	rt "github.com/sftkit/sft/resource/resourcetest"
)

func groupFailed(e monitor.Event) bool { return e.Kind == monitor.EventGroupFailed }

// issue 8 bug 1: a retry already due when Offline is processed must not
// bring the group back online after Offline returned.
func TestBug01_RetryDueAtOfflineIsStale(t *testing.T) {
	for range 20 {
		synctest.Test(t, func(t *testing.T) {
			x := newRig(t, "g", r("a", restart(policy.Restart{Action: policy.NoRestart, RetryPeriod: time.Minute})))
			a := x.fakes["a"]
			x.online("g")
			a.PushFailure(errors.New("crashed"))
			ev := x.waitEvent("group failure", groupFailed)
			require.Equal(t, time.Minute, ev.RetryAfter)
			time.Sleep(time.Until(ev.Time.Add(ev.RetryAfter))) // the retry instant
			require.NoError(t, x.m.Offline(context.Background(), "g"))
			time.Sleep(time.Hour)
			synctest.Wait()
			st, _ := x.m.GroupStatus("g")
			require.False(t, a.Up(), "back online after Offline returned")
			require.Equal(t, resource.StateOffline, st.Target)
			require.Contains(t, []resource.State{resource.StateOffline, resource.StateFailed}, st.State)
		})
	}
}

// issue 8 bug 2: a health check that answers exactly at its call timeout is
// on time: no timeout, no deadlock, no killed host (plain and instant
// resources).
func TestBug02_CheckReturningAtCallTimeoutIsNotDeadlocked(t *testing.T) {
	tm := policy.Timing{CallTimeout: 2 * time.Second, IsAliveInterval: 10 * time.Second, LooksAliveInterval: 10 * time.Second}
	for _, inst := range []bool{false, true} {
		synctest.Test(t, func(t *testing.T) {
			d := r("a", timing(tm))
			if inst {
				d = instant(d)
			}
			x := newRig(t, "g", d)
			a := x.fakes["a"]
			x.online("g")
			a.SetDelay(rt.MethodIsAlive, tm.CallTimeout)
			a.SetDelay(rt.MethodLooksAlive, tm.CallTimeout)
			time.Sleep(2 * time.Minute)
			synctest.Wait()
			evs := x.drain()
			require.Empty(t, kinds(evs, monitor.EventCallDeadlocked), "instant=%v", inst)
			require.Empty(t, kinds(evs, monitor.EventCallTimedOut), "instant=%v", inst)
			require.Empty(t, a.Kills(), "instant=%v", inst)
			require.Positive(t, a.Calls(rt.MethodIsAlive))
			st, _ := x.m.GroupStatus("g")
			require.Equal(t, resource.StateOnline, st.Resources[0].State, "%v", evs)
			require.Zero(t, st.Resources[0].Restarts)
		})
	}
}

// issue 8 bug 3: RemoveGroup and Close with a ctx that is already done
// still stop the group, and return; Close honours its ctx while waiting and
// terminates what is left.
func TestBug03_RemoveAndCloseHonourCtx(t *testing.T) {
	done, cancel := context.WithCancel(context.Background())
	cancel()
	for range 10 {
		synctest.Test(t, func(t *testing.T) {
			x := newRig(t, "g", r("a"))
			x.online("g")
			errc := make(chan error, 1)
			go func() { errc <- x.m.RemoveGroup(done, "g") }()
			var err error
			select {
			case err = <-errc:
			case <-time.After(time.Hour):
				t.Fatal("RemoveGroup with a done ctx hangs")
			}
			synctest.Wait()
			require.False(t, x.fakes["a"].Up(), "removed with a done ctx: terminated (err %v)", err)
			_, err = x.m.GroupStatus("g")
			require.ErrorIs(t, err, monitor.ErrNoSuchGroup)
		})
	}
	synctest.Test(t, func(t *testing.T) {
		x := newRig(t, "g", r("a", timing(policy.Timing{PendingTimeout: time.Minute})))
		a := x.fakes["a"]
		x.online("g")
		a.Block(rt.MethodOffline, 1, rt.Cancelable)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		start := time.Now()
		err := x.m.Close(ctx)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.Less(t, time.Since(start), 5*time.Second, "Close ignored its 1 s ctx")
		require.False(t, a.Up(), "what was left is terminated before Close returns")
		synctest.Wait()
		require.True(t, a.Closed())
	})
	synctest.Test(t, func(t *testing.T) {
		x := newRig(t, "g", r("a"))
		x.online("g")
		done, cancel := context.WithCancel(context.Background())
		cancel()
		require.Error(t, x.m.Close(done))
		require.False(t, x.fakes["a"].Up())
		synctest.Wait() // the group closes its resources once their calls are over
	})
}

// issue 8 bug 4: RemoveGroup and Close at once: no data race (run with
// -race), and each resource closed exactly once (the rig checks the fake's
// contract violations, "Close called twice" among them).
func TestBug04_RemoveGroupAndCloseOverlap(t *testing.T) {
	for range 10 {
		synctest.Test(t, func(t *testing.T) {
			x := newRig(t, "g", r("a"), r("b", dependsOn("a")))
			x.online("g")
			var wg sync.WaitGroup
			wg.Go(func() { _ = x.m.RemoveGroup(context.Background(), "g") })
			wg.Go(func() { require.NoError(t, x.m.Close(context.Background())) })
			wg.Wait()
			for n, f := range x.fakes {
				require.Equal(t, 1, f.Calls(rt.MethodClose), "%s closed %d times", n, f.Calls(rt.MethodClose))
			}
		})
	}
}

// issue 8 bug 5: a failed Offline followed by a failed Terminate is not
// "offline": the resource is StopFailed, Offline says so (ErrStopFailed),
// an event tells, and a plugin-backed resource's host is killed first.
func TestBug05_FailedStopIsStopFailed(t *testing.T) {
	t.Run("in-process resource", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			x := newRig(t, "g", resDef{name: "vip", wrap: func(f *rt.Fake) resource.Resource { return rt.Hidden(f, rt.CapProcessKiller) }})
			f := x.fakes["vip"]
			x.online("g")
			f.SetError(rt.MethodOffline, errors.New("netlink: busy"))
			f.SetError(rt.MethodTerminate, errors.New("netlink: still busy"))
			err := x.m.Offline(context.Background(), "g")
			require.ErrorIs(t, err, monitor.ErrStopFailed)
			st, _ := x.m.GroupStatus("g")
			require.Equal(t, resource.StateStopFailed, st.State)
			require.Equal(t, resource.StateStopFailed, st.Resources[0].State)
			require.NotEmpty(t, kinds(x.drain(), monitor.EventStopFailed))
			require.ErrorIs(t, x.m.Online(context.Background(), "g"), monitor.ErrStopFailed, "no Online over a resource that may still run")
			// Once Terminate works, Offline again stops it for good.
			f.SetError(rt.MethodTerminate, nil)
			require.NoError(t, x.m.Offline(context.Background(), "g"))
			st, _ = x.m.GroupStatus("g")
			require.Equal(t, resource.StateOffline, st.State)
		})
	})
	t.Run("host killed, then cleaned up", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			x := newRig(t, "g", r("vip"))
			f := x.fakes["vip"]
			x.online("g")
			f.SetError(rt.MethodOffline, errors.New("netlink: busy"))
			f.FailNext(rt.MethodTerminate, 1, errors.New("netlink: still busy"))
			require.NoError(t, x.m.Offline(context.Background(), "g"))
			require.Len(t, f.Kills(), 1, "escalated to killing the hosting process")
			require.Equal(t, 2, f.Calls(rt.MethodTerminate), "Terminate again on the relaunched host, to clean up")
			require.False(t, f.Up())
		})
	})
	t.Run("host killed, cleanup fails", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			x := newRig(t, "g", r("vip"))
			f := x.fakes["vip"]
			x.online("g")
			f.SetError(rt.MethodOffline, errors.New("netlink: busy"))
			f.SetError(rt.MethodTerminate, errors.New("netlink: still busy"))
			// The dead process's address is still bound: not down.
			require.ErrorIs(t, x.m.Offline(context.Background(), "g"), monitor.ErrStopFailed)
			require.Len(t, f.Kills(), 1)
			st, _ := x.m.GroupStatus("g")
			require.Equal(t, resource.StateStopFailed, st.State)
			f.SetError(rt.MethodTerminate, nil)
		})
	})
	t.Run("host cannot be killed", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			x := newRig(t, "g", r("vip"))
			f := x.fakes["vip"]
			x.online("g")
			f.SetError(rt.MethodOffline, errors.New("netlink: busy"))
			f.SetError(rt.MethodTerminate, errors.New("netlink: still busy"))
			f.SetError(rt.MethodKillProcess, errors.New("EPERM"))
			require.ErrorIs(t, x.m.Offline(context.Background(), "g"), monitor.ErrStopFailed)
			f.SetError(rt.MethodTerminate, nil)
			res, err := x.m.Fence(context.Background(), "g")
			require.NoError(t, err)
			require.True(t, res.Down)
		})
	})
	t.Run("failure while online", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			x := newRig(t, "g", resDef{name: "vip", wrap: func(f *rt.Fake) resource.Resource { return rt.Hidden(f, rt.CapProcessKiller) }})
			f := x.fakes["vip"]
			x.online("g")
			f.SetError(rt.MethodTerminate, errors.New("cannot remove address"))
			f.PushFailure(errors.New("link down"))
			x.waitEvent("stop failed", func(e monitor.Event) bool { return e.Kind == monitor.EventStopFailed })
			synctest.Wait()
			st, _ := x.m.GroupStatus("g")
			require.Equal(t, resource.StateStopFailed, st.State)
			require.True(t, st.Failed)
			require.False(t, st.FailedAndStopped())
			require.Empty(t, kinds(x.drain(), monitor.EventGroupFailed), "not failed-and-stopped while a stop failed")
			f.SetError(rt.MethodTerminate, nil)
			require.NoError(t, x.m.Offline(context.Background(), "g"))
		})
	})
}

// issue 8 bug 6: EventGroupFailed comes once everything is offline.
func TestBug06_GroupFailedOnlyWhenStopped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		x := newRig(t, "g", r("vip"), r("app", dependsOn("vip"), restart(policy.Restart{Action: policy.NoRestart})))
		vip, app := x.fakes["vip"], x.fakes["app"]
		x.online("g")
		vip.SetDelay(rt.MethodOffline, 10*time.Second)
		failedAt := time.Now()
		app.PushFailure(errors.New("crashed"))
		ev := x.waitEvent("group failure", groupFailed)
		require.False(t, vip.Up(), "EventGroupFailed while the address was still up")
		require.GreaterOrEqual(t, ev.Time.Sub(failedAt), 10*time.Second)
		st, _ := x.m.GroupStatus("g")
		require.True(t, st.FailedAndStopped())
		require.Equal(t, resource.StateFailed, st.State)
	})
}

// issue 8 bug 7: Offline during OnlinePending cancels the pending Online;
// the Online caller learns it was superseded.
func TestBug07_OfflineCancelsPendingOnline(t *testing.T) {
	for _, def := range []func(string, ...resOpt) resDef{r, boundRes} { // boundRes: the call runs inline (bound_test.go)
		synctest.Test(t, func(t *testing.T) {
			x := newRig(t, "g", def("a", timing(policy.Timing{PendingTimeout: time.Minute})))
			a := x.fakes["a"]
			a.Block(rt.MethodOnline, 1, rt.Cancelable)
			onlineErr := make(chan error, 1)
			go func() { onlineErr <- x.m.Online(context.Background(), "g") }()
			require.NoError(t, a.WaitBlocked(context.Background(), rt.MethodOnline))
			start := time.Now()
			require.NoError(t, x.m.Offline(context.Background(), "g"))
			require.Less(t, time.Since(start), time.Second, "Offline waited for the pending Online")
			err := <-onlineErr
			require.ErrorIs(t, err, monitor.ErrSuperseded)
			require.NotErrorIs(t, err, monitor.ErrGroupFailed)
			st, _ := x.m.GroupStatus("g")
			require.False(t, st.Failed)
			require.Equal(t, resource.StateOffline, st.State)
			require.Zero(t, st.Resources[0].Restarts)
			require.False(t, a.Up())
		})
	}
}

// issue 8 bug 8: an instant LooksAlive that hangs is bounded by the call
// timeout and does not stall the rest of its group's polling.
func TestBug08_InstantLooksAliveIsBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		x := newRig(t, "g", instant(r("a")), instant(r("b")))
		a, b := x.fakes["a"], x.fakes["b"]
		t.Cleanup(func() { a.ReleaseAll() })
		x.online("g")
		synctest.Wait()
		a.Block(rt.MethodLooksAlive, 1, rt.Deadlock)
		time.Sleep(time.Second)
		synctest.Wait()
		n := b.Calls(rt.MethodLooksAlive)
		time.Sleep(10 * time.Second)
		synctest.Wait()
		// Once a's call overruns its timeout (2 s) the sweep goes on without
		// it: b misses a round or two, not every round.
		require.GreaterOrEqual(t, b.Calls(rt.MethodLooksAlive)-n, 7, "b's polling stalled behind a's hung LooksAlive")
		evs := x.drain()
		require.NotEmpty(t, kinds(evs, monitor.EventCallTimedOut))
		require.NotEmpty(t, kinds(evs, monitor.EventCallDeadlocked), "the hung call is abandoned")
		require.NotEmpty(t, a.Kills())
	})
}

// deadlineRes records the deadlines of the contexts it is called with.
type deadlineRes struct {
	*rt.Fake
	mu                  sync.Mutex
	online, looks       []time.Duration // deadline - call start
	onlineAfterProgress time.Duration
}

func deadlineOf(ctx context.Context) time.Duration {
	d, ok := ctx.Deadline()
	if !ok {
		return -1
	}
	return time.Until(d)
}

func (d *deadlineRes) Online(ctx context.Context) error {
	d.mu.Lock()
	d.online = append(d.online, deadlineOf(ctx))
	d.mu.Unlock()
	time.Sleep(30 * time.Second)
	resource.ReportProgress(ctx, "half way")
	time.Sleep(time.Millisecond) // the monitor takes the report
	d.mu.Lock()
	d.onlineAfterProgress = deadlineOf(ctx)
	d.mu.Unlock()
	return d.Fake.Online(ctx)
}

func (d *deadlineRes) LooksAlive(ctx context.Context) error {
	d.mu.Lock()
	d.looks = append(d.looks, deadlineOf(ctx))
	d.mu.Unlock()
	return d.Fake.LooksAlive(ctx)
}

// issue 8 bug 9: the ctx a resource gets carries its deadline: the pending
// timeout for Online (moved by a progress report), the call timeout for
// health checks.
func TestBug09_CtxCarriesDeadline(t *testing.T) {
	for _, bound := range []bool{false, true} { // bound: the call runs inline (bound_test.go)
		synctest.Test(t, func(t *testing.T) {
			var d *deadlineRes
			x := newRig(t, "g", resDef{name: "a", wrap: func(f *rt.Fake) resource.Resource {
				d = &deadlineRes{Fake: f}
				if bound {
					return struct {
						*deadlineRes
						returnsAtEnd
					}{d, returnsAtEnd{}}
				}
				return d
			}, opts: []resOpt{timing(policy.Timing{PendingTimeout: 40 * time.Second, CallTimeout: 3 * time.Second})}})
			x.online("g")
			time.Sleep(3 * time.Second)
			d.mu.Lock()
			defer d.mu.Unlock()
			require.Equal(t, []time.Duration{40 * time.Second}, d.online)
			require.Equal(t, 40*time.Second-time.Millisecond, d.onlineAfterProgress, "progress moves the deadline")
			require.NotEmpty(t, d.looks)
			for _, l := range d.looks {
				require.Equal(t, 3*time.Second, l)
			}
		})
	}
}

// issue 8 bug 10: Clear on a healthy online group leaves it online.
func TestBug10_ClearKeepsOnlineGroupOnline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		x := newRig(t, "g", r("a"))
		a := x.fakes["a"]
		x.online("g")
		require.NoError(t, x.m.Clear(context.Background(), "g"))
		synctest.Wait()
		st, _ := x.m.GroupStatus("g")
		require.Equal(t, resource.StateOnline, st.State)
		require.Equal(t, resource.StateOnline, st.Target)
		require.True(t, a.Up())
		require.Zero(t, a.Calls(rt.MethodOffline))
	})
}

// issue 8 bug 11: a type's deadlock hint does not survive a larger call
// timeout set by the user: the group is accepted and the deadlock timeout
// derives from the final call timeout.
func TestBug11_TypeDeadlockHintBelowUserCallTimeout(t *testing.T) {
	m := monitor.New(monitor.Config{})
	defer m.Close(context.Background())
	err := m.AddGroup(monitor.GroupSpec{Name: "g", Resources: []monitor.ResourceSpec{{
		Name: "a", Resource: rt.NewFake("a"),
		Timing:     policy.Timing{CallTimeout: 10 * time.Second},
		TypeTiming: resource.Timing{CallTimeout: 4 * time.Second, DeadlockTimeout: 8 * time.Second},
	}}})
	require.NoError(t, err)
}

// classRes fails Online with a node-local error once its ctx ends.
type classRes struct{ *rt.Fake }

func (c classRes) Online(ctx context.Context) error {
	<-ctx.Done()
	return resource.NodeLocal(errors.New("address held by another host"))
}

// issue 8 bug 12: the class of an error returned just after the timeout is
// kept, and EventGroupFailed and GroupStatus carry the failure class; the
// monitor's errors agree with errors.Is.
func TestBug12_FailureClassKept(t *testing.T) {
	for _, bound := range []bool{false, true} { // bound: the call runs inline (bound_test.go)
		synctest.Test(t, func(t *testing.T) {
			x := newRig(t, "g", resDef{name: "vip", wrap: func(f *rt.Fake) resource.Resource {
				if bound {
					return struct {
						classRes
						returnsAtEnd
					}{classRes{f}, returnsAtEnd{}}
				}
				return classRes{f}
			}, opts: []resOpt{timing(policy.Timing{PendingTimeout: 5 * time.Second})}})
			err := x.m.Online(context.Background(), "g")
			require.ErrorIs(t, err, monitor.ErrGroupFailed)
			require.ErrorIs(t, err, resource.ErrNodeLocal)
			require.Equal(t, resource.ClassNodeLocal, resource.ClassOf(err))
			ev := kinds(x.drain(), monitor.EventGroupFailed)
			require.Len(t, ev, 1)
			require.Equal(t, "node-local", ev[0].Class)
			st, _ := x.m.GroupStatus("g")
			require.Equal(t, "node-local", st.Class)
			require.Equal(t, 0, st.Resources[0].Restarts, "node-local: no restart here")
		})
	}
	synctest.Test(t, func(t *testing.T) {
		x := newRig(t, "g", r("a", restart(policy.Restart{Action: policy.NoRestart})))
		x.fakes["a"].SetError(rt.MethodOnline, errors.New("plain"))
		err := x.m.Online(context.Background(), "g")
		require.ErrorIs(t, err, resource.ErrTransient, "an unclassified failure is transient, for errors.Is too")
		st, _ := x.m.GroupStatus("g")
		require.Equal(t, "transient", st.Class)
	})
}

// issue 8 bug 18 (monitor side): a collateral failure restarts the
// resource without counting against its threshold.
func TestBug18_CollateralFailureNotCounted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		x := newRig(t, "g", r("a", restart(policy.Restart{Threshold: 1, Delay: -1})))
		a := x.fakes["a"]
		x.online("g")
		for i := range 5 {
			a.PushFailure(resource.Collateral(errors.New("plugin process killed for another resource")))
			x.waitEvent("restart", func(e monitor.Event) bool { return e.Kind == monitor.EventRestart })
			x.waitResource("a", resource.StateOnline)
			st, _ := x.m.GroupStatus("g")
			require.False(t, st.Failed, "collateral failure %d escalated", i+1)
		}
		// An own failure still counts: one restart, then the group fails.
		a.PushFailure(errors.New("crashed"))
		x.waitResource("a", resource.StateOnline)
		a.PushFailure(errors.New("crashed again"))
		x.waitEvent("group failure", groupFailed)
	})
}

// schedRes is a resource.PollScheduler.
type schedRes struct {
	*rt.Fake
	mu    sync.Mutex
	sched []resource.Timing
	at    []int // Online calls when scheduled
}

func (s *schedRes) SetPollSchedule(t resource.Timing) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sched = append(s.sched, t)
	s.at = append(s.at, s.Calls(rt.MethodOnline))
}

// issue 8 bug 20 (monitor side): a PollScheduler gets its final timing
// before its first Online, and again when the spec changes it.
func TestBug20_PollScheduleIsFinalTiming(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := monitor.New(monitor.Config{})
		s := &schedRes{Fake: rt.NewFake("a")}
		spec := monitor.GroupSpec{Name: "g", Resources: []monitor.ResourceSpec{{
			Name: "a", Resource: s, Timing: policy.Timing{IsAliveInterval: 5 * time.Second},
			TypeTiming: resource.Timing{LooksAliveInterval: 3 * time.Second, CallTimeout: 4 * time.Second},
		}}}
		require.NoError(t, m.AddGroup(spec))
		require.NoError(t, m.Online(context.Background(), "g"))
		want := resource.Timing{LooksAliveInterval: 3 * time.Second, IsAliveInterval: 5 * time.Second,
			CallTimeout: 4 * time.Second, PendingTimeout: time.Minute, DeadlockTimeout: 8 * time.Second}
		s.mu.Lock()
		require.Equal(t, []resource.Timing{want}, s.sched)
		require.Equal(t, []int{0}, s.at, "scheduled before the first Online")
		s.mu.Unlock()
		spec.Resources[0].Timing.IsAliveInterval = 7 * time.Second
		_, err := m.UpdateGroup(context.Background(), spec)
		require.NoError(t, err)
		want.IsAliveInterval = 7 * time.Second
		s.mu.Lock()
		require.Len(t, s.sched, 2)
		require.Equal(t, want, s.sched[1])
		s.mu.Unlock()
		require.NoError(t, m.Close(context.Background()))
	})
}
