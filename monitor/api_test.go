package monitor_test

// Tests of the API the cluster layer drives (issue 8, "What the cluster
// layer needs from the monitor").

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

func TestWatchYieldsLatestStateLosslessly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		x := newRig(t, "g", r("a"))
		w := x.m.Watch()
		defer w.Close()
		first, err := w.Next(context.Background())
		require.NoError(t, err)
		require.Len(t, first, 1)
		require.Equal(t, resource.StateOffline, first[0].State)
		// Many changes while nobody reads: the watch coalesces them and
		// keeps the latest.
		for range 20 {
			x.online("g")
			require.NoError(t, x.m.Offline(context.Background(), "g"))
		}
		x.online("g")
		synctest.Wait()
		got, err := w.Next(context.Background())
		require.NoError(t, err)
		require.Len(t, got, 1)
		now, _ := x.m.GroupStatus("g")
		require.Equal(t, now, got[0], "the latest state")
		require.Equal(t, resource.StateOnline, got[0].State)
		require.Greater(t, got[0].Seq, first[0].Seq)
		// Nothing changed since: Next waits.
		ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
		defer cancel()
		_, err = w.Next(ctx)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		// Removal is the last word about a group.
		require.NoError(t, x.m.RemoveGroup(context.Background(), "g"))
		got, err = w.Next(context.Background())
		require.NoError(t, err)
		require.True(t, got[len(got)-1].Removed)
		require.NoError(t, x.m.Close(context.Background()))
		_, err = w.Next(context.Background())
		require.ErrorIs(t, err, monitor.ErrClosed)
	})
}

func TestSequenceNumbersGrow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		x := newRig(t, "g", r("a"), r("b", dependsOn("a")))
		st0, _ := x.m.GroupStatus("g")
		x.online("g")
		st1, _ := x.m.GroupStatus("g")
		require.Greater(t, st1.Seq, st0.Seq)
		evs := x.drain()
		require.NotEmpty(t, evs)
		for i := 1; i < len(evs); i++ {
			require.Greater(t, evs[i].Seq, evs[i-1].Seq, "events in publication order")
		}
	})
}

func TestGenerationsIdentifyRequests(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		x := newRig(t, "g", r("a"))
		g1, err := x.m.Do(context.Background(), "g", monitor.RequestOnline)
		require.NoError(t, err)
		st, _ := x.m.GroupStatus("g")
		require.Equal(t, g1, st.Generation)
		g2, err := x.m.Do(context.Background(), "g", monitor.RequestOffline)
		require.NoError(t, err)
		require.Greater(t, g2, g1)
		f, err := x.m.Fence(context.Background(), "g")
		require.NoError(t, err)
		require.Greater(t, f.Generation, g2)
		st, _ = x.m.GroupStatus("g")
		require.Equal(t, f.Generation, st.Generation)
	})
}

func TestManagedModeNoLocalRetry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		x := newRigWith(t, monitor.Config{Managed: true}, "g",
			r("a", restart(policy.Restart{Action: policy.NoRestart, RetryPeriod: time.Minute})))
		a := x.fakes["a"]
		x.online("g")
		a.PushFailure(resource.NodeLocal(errors.New("interface gone")))
		ev := x.waitEvent("group failure", groupFailed)
		require.Zero(t, ev.RetryAfter, "managed: no retry here")
		require.Equal(t, "node-local", ev.Class)
		time.Sleep(2 * time.Hour)
		synctest.Wait()
		st, _ := x.m.GroupStatus("g")
		require.True(t, st.Managed)
		require.True(t, st.FailedAndStopped())
		require.Equal(t, "node-local", st.Class)
		require.True(t, st.RetryAt.IsZero())
		require.Equal(t, 1, a.Calls(rt.MethodOnline))
	})
}

func TestFenceTerminatesInParallel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		x := newRig(t, "g", r("a"), r("b", dependsOn("a")), r("c"))
		x.online("g")
		for _, f := range x.fakes {
			f.SetDelay(rt.MethodTerminate, time.Second)
		}
		x.fakes["c"].Block(rt.MethodLooksAlive, 1, rt.Cancelable) // busy when fenced
		time.Sleep(1500 * time.Millisecond)
		start := time.Now()
		res, err := x.m.Fence(context.Background(), "g")
		require.NoError(t, err)
		require.True(t, res.Down)
		require.Empty(t, res.StopFailed)
		require.Equal(t, time.Second, time.Since(start), "three 1 s Terminates in parallel")
		for n, f := range x.fakes {
			require.False(t, f.Up(), n)
			require.Zero(t, f.Calls(rt.MethodOffline), "%s: a fence does not go through Offline", n)
		}
		st, _ := x.m.GroupStatus("g")
		require.Equal(t, resource.StateOffline, st.State)
		require.Equal(t, resource.StateOffline, st.Target)
	})
}

func TestFenceReportsStopFailed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hide := func(f *rt.Fake) resource.Resource { return rt.Hidden(f, rt.CapProcessKiller) }
		x := newRig(t, "g", r("a"), resDef{name: "vip", wrap: hide})
		x.online("g")
		x.fakes["vip"].SetError(rt.MethodTerminate, errors.New("cannot remove address"))
		res, err := x.m.Fence(context.Background(), "g")
		require.ErrorIs(t, err, monitor.ErrStopFailed)
		require.False(t, res.Down)
		require.Equal(t, []string{"vip"}, res.StopFailed)
		st, _ := x.m.GroupStatus("g")
		require.Equal(t, resource.StateStopFailed, st.State)
		x.fakes["vip"].SetError(rt.MethodTerminate, nil)
		res, err = x.m.Fence(context.Background(), "g")
		require.NoError(t, err)
		require.True(t, res.Down)
	})
}

// probeRes is a resource.Prober.
type probeRes struct {
	*rt.Fake
	running bool
	err     error
}

func (p probeRes) Probe(context.Context) (bool, error) { return p.running, p.err }

func TestProbeAdoptsRunningGroup(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		x := newRig(t, "g",
			resDef{name: "vip", wrap: func(f *rt.Fake) resource.Resource { return probeRes{Fake: f, running: true} }},
			resDef{name: "app", opts: []resOpt{dependsOn("vip")}, wrap: func(f *rt.Fake) resource.Resource { return probeRes{Fake: f} }})
		require.NoError(t, x.fakes["vip"].Online(context.Background())) // left up by a previous host
		res, err := x.m.Probe(context.Background(), "g")
		require.NoError(t, err)
		require.True(t, res.Adopted)
		require.Equal(t, []string{"vip"}, res.Running)
		require.Equal(t, []string{"app"}, res.NotRunning)
		x.waitEvent("group online", func(e monitor.Event) bool {
			return e.Kind == monitor.EventGroupStateChanged && e.To == resource.StateOnline
		})
		synctest.Wait()
		require.Equal(t, 1, x.fakes["vip"].Calls(rt.MethodOnline), "found running: not started twice")
		require.Equal(t, 1, x.fakes["app"].Calls(rt.MethodOnline))
		_, err = x.m.Probe(context.Background(), "g")
		require.ErrorIs(t, err, monitor.ErrBusy, "only an offline group is probed")
	})
}

func TestProbeWithIsAlive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		x := newRig(t, "g", r("a"), r("b"))
		require.NoError(t, x.fakes["a"].Online(context.Background())) // left running by a previous host
		res, err := x.m.Probe(context.Background(), "g")
		require.NoError(t, err)
		require.Equal(t, []string{"a"}, res.Running)
		require.Equal(t, []string{"b"}, res.NotRunning)
		synctest.Wait()
		require.Equal(t, 1, x.fakes["a"].Calls(rt.MethodOnline), "only the call the previous host made")
		require.True(t, x.fakes["b"].Up())
	})
	synctest.Test(t, func(t *testing.T) {
		x := newRig(t, "g", r("a"),
			resDef{name: "vip", wrap: func(f *rt.Fake) resource.Resource { return probeRes{Fake: f, err: errors.New("netlink: EPERM")} }})
		res, err := x.m.Probe(context.Background(), "g")
		require.NoError(t, err)
		require.False(t, res.Adopted)
		require.Equal(t, []string{"vip"}, res.Unknown)
		synctest.Wait()
		require.Equal(t, 1, x.fakes["vip"].Calls(rt.MethodTerminate), "cannot tell: terminated to be sure")
		st, _ := x.m.GroupStatus("g")
		require.Equal(t, resource.StateOffline, st.State)
	})
}

func TestUpdateGroupLive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := monitor.New(monitor.Config{})
		f := rt.NewFake("a")
		spec := monitor.GroupSpec{Name: "g", Resources: []monitor.ResourceSpec{{Name: "a", Resource: f}}}
		require.NoError(t, m.AddGroup(spec))
		t.Cleanup(func() { _ = m.Close(context.Background()) })
		require.NoError(t, m.Online(context.Background(), "g"))
		spec.Resources[0].Timing = policy.Timing{LooksAliveInterval: 5 * time.Second}
		spec.Resources[0].Restart = policy.Restart{Threshold: 7}
		gen, err := m.UpdateGroup(context.Background(), spec)
		require.NoError(t, err)
		st, _ := m.GroupStatus("g")
		require.Equal(t, gen, st.Generation)
		require.Equal(t, resource.StateOnline, st.State)
		synctest.Wait() // the new poller checks at once
		n := f.Calls(rt.MethodLooksAlive)
		time.Sleep(20*time.Second + time.Millisecond)
		synctest.Wait()
		require.Equal(t, 4, f.Calls(rt.MethodLooksAlive)-n, "the new interval applies live: every 5 s")
		require.Zero(t, f.Calls(rt.MethodOffline), "not taken down")
		require.Equal(t, 1, f.Calls(rt.MethodOnline))

		changed := spec
		changed.Resources = append([]monitor.ResourceSpec{}, spec.Resources...)
		changed.Resources = append(changed.Resources, monitor.ResourceSpec{Name: "b", Resource: rt.NewFake("b")})
		_, err = m.UpdateGroup(context.Background(), changed)
		require.ErrorIs(t, err, monitor.ErrResourceSetChanged)
		bad := spec
		bad.Resources = []monitor.ResourceSpec{{Name: "a", Resource: f, Timing: policy.Timing{CallTimeout: -1}}}
		_, err = m.UpdateGroup(context.Background(), bad)
		require.ErrorContains(t, err, "call_timeout")
	})
}

func TestOfflineSupersedesOnlineAndViceVersa(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		x := newRig(t, "g", r("a"))
		a := x.fakes["a"]
		x.online("g")
		a.Block(rt.MethodOffline, 1, rt.Cancelable)
		var wg sync.WaitGroup
		var offErr error
		wg.Go(func() { offErr = x.m.Offline(context.Background(), "g") })
		require.NoError(t, a.WaitBlocked(context.Background(), rt.MethodOffline))
		a.Release(rt.MethodOffline)
		wg.Wait()
		require.NoError(t, offErr)
		// The Offline caller learns when a later Online replaces its request.
		a.Block(rt.MethodOnline, 1, rt.Cancelable)
		wg.Go(func() { _ = x.m.Online(context.Background(), "g") })
		require.NoError(t, a.WaitBlocked(context.Background(), rt.MethodOnline))
		require.NoError(t, x.m.Offline(context.Background(), "g"))
		wg.Wait()
	})
}
