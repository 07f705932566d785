package monitor

import (
	"context"
	"errors"
	"strconv"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sftkit/sft/resource"
)

// counting is an instant resource that counts its LooksAlive and IsAlive
// calls; IsAlive fails once sick is set.
type counting struct {
	looks, is *atomic.Int64
	sick      *atomic.Bool
}

func (counting) Online(context.Context) error       { return nil }
func (counting) Offline(context.Context) error      { return nil }
func (c counting) LooksAlive(context.Context) error { c.looks.Add(1); return nil }
func (c counting) IsAlive(context.Context) error {
	c.is.Add(1)
	if c.sick.Load() {
		return errors.New("sick")
	}
	return nil
}
func (counting) Terminate(context.Context) error { return nil }
func (counting) LooksAliveInstant() bool         { return true }
func (counting) IsAliveInstant() bool            { return true }

func newCounting() counting {
	return counting{looks: new(atomic.Int64), is: new(atomic.Int64), sick: new(atomic.Bool)}
}

// Issue 15: the groups of a monitor share one sweep per interval and
// check (one ticker, not one per group or resource), every resource is
// still polled once per interval (LooksAlive and IsAlive, both inline for
// instant resources), and the sweeps stop when the last resource goes
// offline.
func TestOneSweepForAllGroups(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := New(Config{})
		defer func() { _ = m.Close(context.Background()) }()
		c := newCounting()
		const groups, per = 3, 2
		tm := resource.Timing{LooksAliveInterval: time.Second, IsAliveInterval: 5 * time.Second}
		for g := range groups {
			spec := GroupSpec{Name: "g" + strconv.Itoa(g)}
			for i := range per {
				spec.Resources = append(spec.Resources, ResourceSpec{Name: "r" + strconv.Itoa(i), Type: "counting", Resource: c, Timing: tm})
			}
			require.NoError(t, m.AddGroup(spec))
			require.NoError(t, m.Online(t.Context(), spec.Name))
		}
		synctest.Wait()
		m.sweep.mu.Lock()
		require.Len(t, m.sweep.buckets, 2, "one sweep per interval and check for every group")
		require.Len(t, m.sweep.buckets[bucketKey{time.Second, false}].entries, groups*per)
		require.Len(t, m.sweep.buckets[bucketKey{5 * time.Second, true}].entries, groups*per)
		m.sweep.mu.Unlock()

		l0, i0 := c.looks.Load(), c.is.Load()
		time.Sleep(10*time.Second + time.Millisecond)
		synctest.Wait()
		// At 5 s and 10 s both sweeps fire at once; whichever reaches a
		// resource second finds the slot taken and defers its check to the
		// resource's poller: nothing is skipped.
		require.Equal(t, int64(2*groups*per), c.is.Load()-i0, "one IsAlive every 5 s for every resource")
		require.Equal(t, int64(10*groups*per), c.looks.Load()-l0, "one LooksAlive a second for every resource")

		for g := range groups {
			require.NoError(t, m.Offline(t.Context(), "g"+strconv.Itoa(g)))
		}
		synctest.Wait()
		m.sweep.mu.Lock()
		require.Empty(t, m.sweep.buckets, "the sweep stops with the last resource")
		m.sweep.mu.Unlock()
	})
}

// Issue 15: an inline IsAlive (resource.InstantIsAliveChecker) that fails
// fails the resource, which the policy restarts.
func TestInlineIsAliveFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := New(Config{})
		defer func() { _ = m.Close(context.Background()) }()
		c := newCounting()
		sub := m.Subscribe(64)
		defer sub.Close()
		tm := resource.Timing{LooksAliveInterval: time.Second, IsAliveInterval: 10 * time.Second}
		require.NoError(t, m.AddGroup(GroupSpec{Name: "g", Resources: []ResourceSpec{{Name: "r", Type: "counting", Resource: c, Timing: tm}}}))
		require.NoError(t, m.Online(t.Context(), "g"))
		synctest.Wait()
		c.sick.Store(true)
		time.Sleep(10*time.Second + time.Millisecond)
		synctest.Wait()
		for {
			ev := <-sub.C()
			if ev.Kind == EventStateChanged && ev.Resource == "r" && ev.To == resource.StateFailed {
				require.Contains(t, ev.Reason, "sick")
				break
			}
		}
	})
}

// slowCounting is counting whose LooksAlive takes a millisecond, so that
// when the LooksAlive and IsAlive sweeps fire together one of them always
// finds the other holding the resource's slot.
type slowCounting struct{ counting }

func (c slowCounting) LooksAlive(ctx context.Context) error {
	time.Sleep(time.Millisecond)
	return c.counting.LooksAlive(ctx)
}

// A check whose sweep finds the slot taken by the other check is deferred
// to the resource's poller, not skipped until the next interval.
func TestCoincidingSweepsDeferNotSkip(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := New(Config{})
		defer func() { _ = m.Close(context.Background()) }()
		c := slowCounting{newCounting()}
		const n = 4
		tm := resource.Timing{LooksAliveInterval: time.Second, IsAliveInterval: 2 * time.Second}
		spec := GroupSpec{Name: "g"}
		for i := range n {
			spec.Resources = append(spec.Resources, ResourceSpec{Name: "r" + strconv.Itoa(i), Type: "counting", Resource: c, Timing: tm})
		}
		require.NoError(t, m.AddGroup(spec))
		require.NoError(t, m.Online(t.Context(), "g"))
		time.Sleep(100 * time.Millisecond) // the first LooksAlive of each, at once
		synctest.Wait()
		l0, i0 := c.looks.Load(), c.is.Load()
		time.Sleep(10 * time.Second)
		synctest.Wait()
		require.Equal(t, int64(5*n), c.is.Load()-i0, "an IsAlive every 2 s for every resource")
		require.Equal(t, int64(10*n), c.looks.Load()-l0, "a LooksAlive every second for every resource")
	})
}
