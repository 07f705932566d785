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

// A resource whose calls return as soon as their ctx ends (a plugin proxy:
// internal/callhint.ReturnsAtContextEnd) has its calls run on the
// operation's goroutine. These tests hold that path to the same outcomes
// as the calls the monitor can abandon: timeouts, the Terminate after a
// pending timeout; and TestProgressExtendsPendingTimeout,
// TestBug07_OfflineCancelsPendingOnline, TestBug09_CtxCarriesDeadline and
// TestBug12_FailureClassKept run on both paths: progress moving the
// deadline, cancellation, the deadline in ctx, the class of a late error.

// returnsAtEnd says a resource's calls return at their ctx's end.
type returnsAtEnd struct{}

func (returnsAtEnd) ReturnsAtContextEnd() {}

// bound is a Fake that says so.
type bound struct {
	*rt.Fake
	returnsAtEnd
}

func boundRes(name string, opts ...resOpt) resDef {
	return resDef{name: name, opts: opts, wrap: func(f *rt.Fake) resource.Resource { return bound{Fake: f} }}
}

// boundNoRestart is bound resource "a" with a 5 s pending timeout and no
// restart.
func boundNoRestart() resDef {
	return boundRes("a",
		timing(policy.Timing{PendingTimeout: 5 * time.Second}),
		restart(policy.Restart{Action: policy.NoRestart, RetryPeriod: -1}))
}

func TestBoundPendingTimeoutTerminatesAndFails(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		x := newRig(t, "g", boundNoRestart())
		a := x.fakes["a"]
		a.Block(rt.MethodOnline, 1, rt.Cancelable)
		start := time.Now()
		err := x.m.Online(context.Background(), "g")
		require.ErrorIs(t, err, monitor.ErrGroupFailed)
		require.ErrorIs(t, err, monitor.ErrCallTimeout)
		require.Equal(t, resource.ClassTransient, resource.ClassOf(err))
		evs := x.drain()
		to := kinds(evs, monitor.EventCallTimedOut)
		require.Len(t, to, 1)
		require.Equal(t, monitor.MethodOnline, to[0].Method)
		require.Equal(t, 5*time.Second, to[0].Time.Sub(start))
		var term rt.Call
		for _, c := range a.Log() {
			if c.Method == rt.MethodTerminate {
				term = c
				break
			}
		}
		require.Equal(t, 5*time.Second, term.Start.Sub(start), "Terminate at the pending timeout")
		require.Empty(t, kinds(evs, monitor.EventCallDeadlocked))
		require.Empty(t, a.Kills())
		st, _ := x.m.GroupStatus("g")
		require.Equal(t, resource.StateFailed, st.Resources[0].State)
	})
}

// The hint is trusted: a call that ignores its ctx is waited for, never
// abandoned (no deadlock event, no kill), and ends as a timeout once it
// returns. This is what tells the two paths apart.
func TestBoundCallIsNotAbandoned(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		x := newRig(t, "g", boundNoRestart())
		a := x.fakes["a"]
		a.Block(rt.MethodOnline, 1, rt.Deadlock)
		done := make(chan error, 1)
		go func() { done <- x.m.Online(context.Background(), "g") }()
		time.Sleep(time.Minute)
		synctest.Wait()
		require.Empty(t, kinds(x.drain(), monitor.EventCallDeadlocked))
		require.Empty(t, a.Kills())
		require.Zero(t, a.Calls(rt.MethodTerminate), "Terminate follows the call's return")
		select {
		case err := <-done:
			t.Fatalf("Online returned while its call hung: %v", err)
		default:
		}
		a.Release(rt.MethodOnline)
		err := <-done
		require.ErrorIs(t, err, monitor.ErrCallTimeout)
		require.Positive(t, a.Calls(rt.MethodTerminate))
		require.Len(t, kinds(x.drain(), monitor.EventCallTimedOut), 1)
	})
}
