package monitor_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sftkit/sft/monitor"
	"github.com/sftkit/sft/policy"
	"github.com/sftkit/sft/resource"
	rt "github.com/sftkit/sft/resource/resourcetest"
)

// Issue 15: polling stops (the group goes offline) while a health check
// hangs on the poller's worker: the check's watchdog still holds. It is
// abandoned at the deadlock timeout and the host killed, which lets the
// Offline go on.
func TestWatchdogOutlivesStoppedPolling(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		x := newRig(t, "g", r("a", timing(policy.Timing{CallTimeout: 2 * time.Second, DeadlockTimeout: 4 * time.Second})))
		a := x.fakes["a"]
		x.online("g")
		synctest.Wait()
		a.Block(rt.MethodLooksAlive, 1, rt.Deadlock)
		stuck := time.Now().Add(time.Second) // the next LooksAlive
		time.Sleep(1500 * time.Millisecond)
		synctest.Wait()
		require.Equal(t, 1, a.Blocked(rt.MethodLooksAlive))
		done := make(chan error, 1)
		go func() { done <- x.m.Offline(context.Background(), "g") }()
		ev := x.waitEvent("deadlock", func(e monitor.Event) bool { return e.Kind == monitor.EventCallDeadlocked })
		require.Equal(t, monitor.MethodLooksAlive, ev.Method)
		require.Equal(t, 4*time.Second, ev.Time.Sub(stuck), "abandoned at the deadlock timeout")
		require.Len(t, a.Kills(), 1)
		require.NoError(t, <-done)
		st, err := x.m.GroupStatus("g")
		require.NoError(t, err)
		require.Equal(t, resource.StateOffline, st.State)
	})
}

// Stopping polling cancels the context of the check in flight: an Offline
// does not wait for a hung (but cancelable) LooksAlive's timeout.
func TestStoppedPollingCancelsCheckInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		x := newRig(t, "g", r("a", timing(policy.Timing{CallTimeout: 10 * time.Second})))
		a := x.fakes["a"]
		x.online("g")
		synctest.Wait()
		a.Block(rt.MethodLooksAlive, 1, rt.Cancelable)
		time.Sleep(1500 * time.Millisecond)
		synctest.Wait()
		require.Equal(t, 1, a.Blocked(rt.MethodLooksAlive))
		start := time.Now()
		require.NoError(t, x.m.Offline(context.Background(), "g"))
		require.Equal(t, start, time.Now(), "the check was cancelled at once")
		require.Empty(t, kinds(x.drain(), monitor.EventCallTimedOut))
	})
}
