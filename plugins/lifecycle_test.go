package plugins

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sftkit/sft/resource"
)

func openFake(t *testing.T, h *Pool) resource.Resource {
	t.Helper()
	typ, ok := h.Type("fake")
	require.True(t, ok)
	r, err := typ.Open(t.Context(), resource.OpenRequest{Name: "r"})
	require.NoError(t, err)
	return r
}

// TestCallsAfterCloseFailAtOnce: issue 8 bug 13. Close used to keep the
// launch slots, so every later call that needed a process blocked until its
// ctx ended (for ever with a background ctx). Now they fail at once with
// ErrPluginExited. In the synctest bubble a blocked call is a deadlock the
// test reports.
func TestCallsAfterCloseFailAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, _ := launchFake(t, Config{})
		r := openFake(t, h)
		require.NoError(t, r.Online(t.Context()))
		require.NoError(t, h.Close())
		start := time.Now()
		ctx := context.Background()
		for name, call := range map[string]func() error{
			"Online":    func() error { return r.Online(ctx) },
			"Offline":   func() error { return r.Offline(ctx) },
			"Terminate": func() error { return r.Terminate(ctx) },
			"Open": func() error {
				typ, _ := h.Type("fake")
				_, err := typ.Open(ctx, resource.OpenRequest{Name: "late"})
				return err
			},
			"Validate": func() error {
				typ, _ := h.Type("fake")
				return typ.Validate(ctx, nil)
			},
		} {
			require.ErrorIs(t, call(), ErrPluginExited, name)
		}
		require.Zero(t, time.Since(start), "no call waited")
		require.NoError(t, r.(resource.Closer).Close())
	})
}

// TestCloseInterruptsBackoff: issue 8 bug 16 (Close part). A Close during a
// relaunch backoff returns at once instead of waiting the backoff out and
// forking a process only to stop it.
func TestCloseInterruptsBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, fp := launchFake(t, Config{MinBackoff: 10 * time.Second, MaxBackoff: 10 * time.Second})
		r := openFake(t, h)
		require.NoError(t, r.Online(t.Context()))
		fp.last().die() // died young: the relaunch waits 10 s
		synctest.Wait()
		errc := make(chan error, 1)
		go func() { errc <- r.Online(context.Background()) }()
		time.Sleep(time.Second)
		synctest.Wait()
		start := time.Now()
		require.NoError(t, h.Close())
		require.Zero(t, time.Since(start), "Close did not wait for the backoff")
		require.ErrorIs(t, <-errc, ErrPluginExited)
		require.Equal(t, 1, fp.starts(), "no process forked after Close")
		_ = r.(resource.Closer).Close()
	})
}

// TestHeartbeatToleratesSingleMisses: issue 8 bug 19. One missed heartbeat
// used to kill the process (a GC pause or VM stall on the host made a false
// kill). Now HeartbeatMisses (3) misses in a row are needed; fewer are
// forgiven by the next answer.
func TestHeartbeatToleratesSingleMisses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, fp := launchFake(t, Config{}) // defaults: every 1 s, 2 s timeout, 3 misses
		defer h.Close()
		r := openFake(t, h)
		var f failures
		r.(resource.FailureReporter).SetFailureHandler(f.handler)
		require.NoError(t, r.Online(t.Context()))
		p := fp.last()

		// Two misses in a row (a 5 s stall), then answers again.
		time.Sleep(500 * time.Millisecond)
		p.pingStall.Store(true)
		time.Sleep(5 * time.Second)
		p.pingStall.Store(false)
		time.Sleep(10 * time.Second)
		synctest.Wait()
		require.Empty(t, f.get(), "two missed heartbeats do not kill")
		require.Equal(t, 1, fp.starts())

		// Frozen for good: killed after three misses in a row.
		p.pingStall.Store(true)
		frozen := time.Now()
		for len(f.get()) == 0 {
			time.Sleep(100 * time.Millisecond)
		}
		took := time.Since(frozen)
		require.ErrorIs(t, f.get()[0], ErrPluginExited)
		require.ErrorContains(t, f.get()[0], "3 pings in a row")
		require.GreaterOrEqual(t, took, 3*defaultHeartbeatTimeout, "three misses take three timeouts")
		require.LessOrEqual(t, took, time.Duration(defaultHeartbeatMisses)*(defaultHeartbeatInterval+defaultHeartbeatTimeout), "the documented window")
		_ = r.(resource.Closer).Close()
	})
}

// TestBackoffDecaysWithTime: issue 8 bug 22. After a crash loop the
// backoff used to stay at its maximum until a process lived BackoffReset:
// a launch 96 s later still waited the full 10 s. The backoff now counts
// from the last death, and BackoffReset after it the count is forgotten.
func TestBackoffDecaysWithTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, fp := launchFake(t, Config{MinBackoff: time.Second, MaxBackoff: 10 * time.Second})
		defer h.Close()
		typ, _ := h.Type("fake")
		// A crash loop with no instance open (so no background relaunch):
		// each Validate relaunches, the process dies at once.
		for range 5 {
			fp.last().die()
			synctest.Wait()
			require.NoError(t, typ.Validate(t.Context(), nil))
		}
		fp.last().die()
		synctest.Wait()
		h.shared.mu.Lock()
		require.Equal(t, 6, h.shared.failures)
		h.shared.mu.Unlock()

		time.Sleep(5 * time.Second) // half the 10 s backoff has passed
		start := time.Now()
		require.NoError(t, typ.Validate(t.Context(), nil))
		require.Equal(t, 5*time.Second, time.Since(start), "only the rest of the backoff")

		fp.last().die()
		synctest.Wait()
		time.Sleep(96 * time.Second)
		start = time.Now()
		require.NoError(t, typ.Validate(t.Context(), nil))
		require.Zero(t, time.Since(start), "96 s after the last death: no backoff")
	})
}

// TestRelaunchWithoutCall: issue 8 bug 22. A plugin was relaunched only when
// a call needed it, so after a crash loop nothing ran until the monitor's
// retry period (1 h) or an operator. Now a process that dies while
// instances are open is relaunched in the background after the backoff,
// and again (with growing backoff) if that start fails.
func TestRelaunchWithoutCall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, fp := launchFake(t, Config{MinBackoff: time.Second, MaxBackoff: 10 * time.Second})
		defer h.Close()
		r := openFake(t, h)
		require.NoError(t, r.Online(t.Context()))
		for i := range 4 {
			fp.last().die()
			synctest.Wait()
			require.Zero(t, h.Pid(), "dead, in backoff")
			backoff := time.Second << i
			time.Sleep(backoff - time.Millisecond)
			synctest.Wait()
			require.Zero(t, h.Pid(), "still in the %s backoff", backoff)
			time.Sleep(time.Millisecond)
			synctest.Wait()
			require.Equal(t, fp.last().pid, h.Pid(), "relaunched after %s without a call", backoff)
		}
		require.Equal(t, []string{ProcessStarted,
			ProcessExited, ProcessRelaunched, ProcessExited, ProcessRelaunched,
			ProcessExited, ProcessRelaunched, ProcessExited, ProcessRelaunched}, fp.kinds())
		// The instance is reopened in the new process by its next call.
		require.NoError(t, r.Terminate(t.Context()))
		require.NoError(t, r.Online(t.Context()))
		require.NoError(t, r.(resource.Closer).Close())
		// Without open instances a dead process stays dead until needed.
		fp.last().die()
		synctest.Wait()
		time.Sleep(time.Minute)
		synctest.Wait()
		require.Zero(t, h.Pid())
	})
}

var _ = errors.New
