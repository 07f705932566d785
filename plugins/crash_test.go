package plugins

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sftkit/sft/resource"
)

// fakeTree is a cgroup that empties 10 ms after it is killed.
type fakeTree struct {
	mu       sync.Mutex
	killedAt time.Time
	removed  bool
}

func (f *fakeTree) Kill() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.killedAt = time.Now()
	return nil
}

func (f *fakeTree) Populated() (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.killedAt.IsZero() || time.Since(f.killedAt) < 10*time.Millisecond, nil
}

func (f *fakeTree) Remove() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.killedAt.IsZero() {
		return errors.New("busy")
	}
	f.removed = true
	return nil
}

func (f *fakeTree) Dir() string { return "/fake/cgroup" }

func (f *fakeTree) isRemoved() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.removed
}

// TestCrashTerminateAnsweredByHost: issue 15. After a plugin crash every
// Terminate relaunched the plugin and reopened its instance there for the
// cleanup, within the monitor's 2 s call timeout: with 1,000 instances the
// Opens did not fit, and the resources ended StopFailed. An instance whose
// whole tree is a cgroup (resource.Contained) is now terminated by the
// host: the group is killed, waited empty and removed, and Terminate
// answers without any call into a plugin. The reopen that the next Online
// needs starts right after the relaunch, but only once the group is gone
// (a process cloned into a group killed through cgroup.kill is killed at
// birth since Linux 6.14: the new process creates it anew).
func TestCrashTerminateAnsweredByHost(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ft := &fakeTree{}
		fp := &fakePlugin{cgroup: "/fake/cgroup"}
		var removedAtReopen []bool
		var mu sync.Mutex
		fp.onOpen = func() {
			mu.Lock()
			removedAtReopen = append(removedAtReopen, ft.isRemoved())
			mu.Unlock()
		}
		h, _ := launchFakeWith(t, Config{MinBackoff: time.Hour, MaxBackoff: time.Hour}, fp)
		defer h.Close()
		h.treeOf = func(dir string) tree {
			require.Equal(t, "/fake/cgroup", dir)
			return ft
		}
		r := openFake(t, h)
		require.NoError(t, r.Online(t.Context()))
		first := fp.last()
		first.die()
		synctest.Wait()

		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		start := time.Now()
		require.NoError(t, r.Terminate(ctx))
		waited := time.Since(start)
		require.GreaterOrEqual(t, waited, 10*time.Millisecond, "answered once the group emptied")
		require.Less(t, waited, 20*time.Millisecond)
		require.True(t, ft.isRemoved(), "the dead instance's group is removed")
		require.Equal(t, 1, fp.starts(), "no relaunch for the cleanup (the backoff is an hour)")
		require.Zero(t, first.terms.Load())

		// The process lived long enough: no backoff for the background
		// relaunch; it reopens the instance after the group is gone.
		time.Sleep(time.Hour)
		synctest.Wait()
		require.Equal(t, 2, fp.starts())
		require.Equal(t, int64(1), fp.last().opens.Load(), "reopened in the background")
		require.NoError(t, r.Online(t.Context()))
		require.Equal(t, int64(1), fp.last().opens.Load(), "Online found it open")
		require.Zero(t, fp.last().terms.Load())
		mu.Lock()
		require.Equal(t, []bool{false, true}, removedAtReopen)
		mu.Unlock()
		require.NoError(t, r.(resource.Closer).Close())
	})
}

// TestAbandonedOpenNotLost: issue 15. An Open cancelled half-way by its
// caller's ctx was lost when the plugin had already opened the instance:
// it stayed open there (genericapp: holding its cgroup, so the next Open
// took a sibling group, and thousands of them were left behind), and the
// next call started again from nothing. The (re)open now runs on its own
// goroutine: a caller that gives up loses nothing, and whoever comes next
// finds the instance open. A Terminate that gave up before reaching a live
// process says so with resource.Collateral (the monitor then kills
// nothing).
func TestAbandonedOpenNotLost(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fp := &fakePlugin{}
		h, _ := launchFakeWith(t, Config{}, fp)
		defer h.Close()
		r := openFake(t, h)
		require.NoError(t, r.Online(t.Context()))
		gate := make(chan struct{})
		fp.openGate.Store(&gate)
		fp.last().die()
		synctest.Wait()

		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		err := r.Terminate(ctx)
		require.Error(t, err)
		require.True(t, resource.IsCollateral(err), "%v", err)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.NoError(t, r.(resource.ProcessKiller).KillProcess("terminate failed"))
		require.Equal(t, 2, fp.starts(), "the relaunched process is not killed")
		require.False(t, fp.last().rpcDead())

		close(gate) // the plugin answers the Open now
		synctest.Wait()
		require.NoError(t, r.Terminate(t.Context()))
		require.Equal(t, int64(1), fp.last().opens.Load(), "the abandoned Open was kept, not repeated")
		require.Equal(t, int64(2), fp.last().terms.Load(), "the cleanup with the reopen, then this Terminate")
		require.NoError(t, r.Online(t.Context()))
		require.NoError(t, r.(resource.Closer).Close())
	})
}
