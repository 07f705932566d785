package monitor

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sftkit/sft/resource"
)

// counting is an instant resource that counts its LooksAlive calls.
type counting struct{ looks *atomic.Int64 }

func (counting) Online(context.Context) error       { return nil }
func (counting) Offline(context.Context) error      { return nil }
func (c counting) LooksAlive(context.Context) error { c.looks.Add(1); return nil }
func (counting) IsAlive(context.Context) error      { return nil }
func (counting) Terminate(context.Context) error    { return nil }
func (counting) LooksAliveInstant() bool            { return true }

// Issue 15: the groups of a monitor share one sweep per interval (one
// ticker, not one per group), every resource is still polled once per
// interval, and the sweep stops when the last resource goes offline.
func TestOneSweepForAllGroups(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := New(Config{})
		defer func() { _ = m.Close(context.Background()) }()
		var looks atomic.Int64
		const groups, per = 3, 2
		tm := resource.Timing{LooksAliveInterval: time.Second, IsAliveInterval: time.Hour}
		for g := range groups {
			spec := GroupSpec{Name: "g" + strconv.Itoa(g)}
			for i := range per {
				spec.Resources = append(spec.Resources, ResourceSpec{Name: "r" + strconv.Itoa(i), Type: "counting", Resource: counting{&looks}, Timing: tm})
			}
			require.NoError(t, m.AddGroup(spec))
			require.NoError(t, m.Online(t.Context(), spec.Name))
		}
		synctest.Wait()
		m.sweep.mu.Lock()
		require.Len(t, m.sweep.buckets, 1, "one sweep for every group with the same interval")
		require.Len(t, m.sweep.buckets[time.Second].entries, groups*per)
		m.sweep.mu.Unlock()

		l0 := looks.Load()
		time.Sleep(10*time.Second + time.Millisecond)
		synctest.Wait()
		require.Equal(t, int64(10*groups*per), looks.Load()-l0, "each resource polled once a second")

		for g := range groups {
			require.NoError(t, m.Offline(t.Context(), "g"+strconv.Itoa(g)))
		}
		synctest.Wait()
		m.sweep.mu.Lock()
		require.Empty(t, m.sweep.buckets, "the sweep stops with the last resource")
		m.sweep.mu.Unlock()
	})
}
