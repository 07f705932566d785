package monitor_test

// Regression tests for issue 15 (the monitor's part of a plugin crash with
// a thousand resources).

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/require"

	"github.com/sftkit/sft/monitor"
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
