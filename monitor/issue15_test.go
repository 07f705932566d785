package monitor_test

// Regression tests for issue 15 (the monitor's part of a plugin crash with
// a thousand resources).

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sftkit/sft/monitor"
	"github.com/sftkit/sft/policy"
	"github.com/sftkit/sft/resource"
	rt "github.com/sftkit/sft/resource/resourcetest"
)

// TestCollateralTerminateFailureKillsNothing: a plugin crash with 1,000
// resources ended with every one StopFailed. Each cleanup Terminate waited
// for the relaunched plugin to reopen its instance, some ran out of time,
// and the escalation killed the fresh process shared with all the others,
// which failed and terminated in turn. A Terminate failure marked
// resource.Collateral (it never reached a live hosting process) is now
// retried without killing anything.
func TestCollateralTerminateFailureKillsNothing(t *testing.T) {
	relaunching := resource.Collateral(errors.New("waiting for the plugin to reopen the instance: context deadline exceeded"))
	// An online group whose resource's Offline fails (its plugin died).
	setup := func(t *testing.T, offlineErr string) (*rig, *rt.Fake) {
		x := newRig(t, "g", r("app"))
		f := x.fakes["app"]
		x.online("g")
		f.SetError(rt.MethodOffline, errors.New(offlineErr))
		return x, f
	}
	t.Run("retried without a kill", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			x, f := setup(t, "plugin process exited")
			f.FailNext(rt.MethodTerminate, 1, relaunching)
			require.NoError(t, x.m.Offline(context.Background(), "g"))
			require.Empty(t, f.Kills(), "the hosting process is not killed for a Terminate that never reached it")
			require.Equal(t, 2, f.Calls(rt.MethodTerminate))
			require.Empty(t, kinds(x.drain(), monitor.EventCallDeadlocked), "no kill reported")
			st, _ := x.m.GroupStatus("g")
			require.Equal(t, resource.StateOffline, st.State)
		})
	})
	t.Run("still failing: StopFailed, still no kill", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			x, f := setup(t, "plugin process exited")
			f.SetError(rt.MethodTerminate, relaunching)
			require.ErrorIs(t, x.m.Offline(context.Background(), "g"), monitor.ErrStopFailed)
			require.Empty(t, f.Kills())
			require.Equal(t, 2, f.Calls(rt.MethodTerminate))
			f.SetError(rt.MethodTerminate, nil)
		})
	})
	t.Run("an ordinary failure still escalates", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			x, f := setup(t, "busy")
			f.FailNext(rt.MethodTerminate, 1, errors.New("still busy"))
			require.NoError(t, x.m.Offline(context.Background(), "g"))
			require.Len(t, f.Kills(), 1)
		})
	})
}

// TestStatusCountsWhatEventsDrop: issue 15. A plugin crash with 1,000
// resources publishes about 5,200 events at once; a subscriber with a
// smaller buffer (the example host's was 4,096) misses some, and metrics
// counted from events under-counted. The status carries never-reset
// counters (restarts, failures, pushed failures), level-triggered like
// the rest of it.
func TestStatusCountsWhatEventsDrop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		x := newRig(t, "g", r("a", restart(policy.Restart{Threshold: 100, Delay: time.Millisecond})))
		slow := x.m.Subscribe(1) // never read
		defer slow.Close()
		a := x.fakes["a"]
		x.online("g")
		const n = 5
		for i := range n {
			a.PushFailure(errors.New("crashed"))
			x.waitEvent("restart "+strconv.Itoa(i), func(e monitor.Event) bool { return e.Kind == monitor.EventRestart })
			time.Sleep(time.Second)
			synctest.Wait()
		}
		require.NotZero(t, slow.Dropped(), "the slow subscriber missed events")
		st, _ := x.m.GroupStatus("g")
		rs := st.Resources[0]
		require.Equal(t, resource.StateOnline, rs.State)
		require.Equal(t, uint64(n), rs.Failures)
		require.Equal(t, uint64(n), rs.FailuresPushed)
		require.Equal(t, uint64(n), rs.RestartsTotal)
		require.Equal(t, n, rs.Restarts)

		require.NoError(t, x.m.Clear(context.Background(), "g"))
		st, _ = x.m.GroupStatus("g")
		require.Zero(t, st.Resources[0].Restarts, "the policy's count is cleared")
		require.Equal(t, uint64(n), st.Resources[0].RestartsTotal, "the counter is not")
	})
}
