package policy_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sftkit/sft/policy"
)

func TestHistoryAdd(t *testing.T) {
	t.Parallel()
	const keep = 10 * time.Minute
	tests := []struct {
		name string
		h    policy.History
		add  time.Time
		keep time.Duration
		want policy.History
	}{
		{name: "nil history", h: nil, add: t0, keep: keep, want: policy.History{t0}},
		{name: "recent events kept in order", h: ago(5*time.Minute, time.Minute), add: t0, keep: keep,
			want: ago(5*time.Minute, time.Minute, 0)},
		{name: "events older than keep dropped", h: ago(time.Hour, 11*time.Minute, time.Minute), add: t0, keep: keep,
			want: ago(time.Minute, 0)},
		{name: "event exactly keep old dropped", h: ago(keep, time.Minute), add: t0, keep: keep,
			want: ago(time.Minute, 0)},
		{name: "event just inside keep kept", h: ago(keep - time.Nanosecond), add: t0, keep: keep,
			want: ago(keep-time.Nanosecond, 0)},
		{name: "keep zero keeps everything", h: ago(24*time.Hour, time.Hour), add: t0, keep: 0,
			want: ago(24*time.Hour, time.Hour, 0)},
		{name: "negative keep keeps everything", h: ago(24 * time.Hour), add: t0, keep: -1,
			want: ago(24*time.Hour, 0)},
		{name: "all old events dropped", h: ago(3*time.Hour, 2*time.Hour), add: t0, keep: keep,
			want: ago(0)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			before := append(policy.History(nil), tc.h...)
			got := tc.h.Add(tc.add, tc.keep)
			require.Equal(t, tc.want, got)
			require.Equal(t, before, tc.h, "Add must not modify the receiver")
		})
	}
}

// TestHistoryAddDoesNotAlias: two Adds to the same History with spare
// capacity must not overwrite each other (the append-aliasing trap), and
// pruning must not shift the receiver's elements.
func TestHistoryAddDoesNotAlias(t *testing.T) {
	t.Parallel()
	h := make(policy.History, 2, 16)
	h[0], h[1] = t0.Add(-time.Hour), t0.Add(-time.Minute)

	a := h.Add(t0, 0)
	b := h.Add(t0.Add(time.Second), 0)
	require.Equal(t, t0, a[2], "second Add overwrote the first's result")
	require.Equal(t, t0.Add(time.Second), b[2])
	require.Len(t, h, 2)
	require.Equal(t, t0.Add(-time.Hour), h[:cap(h)][0])
	require.Zero(t, h[:3][2], "Add wrote into the receiver's spare capacity")

	pruned := h.Add(t0, 10*time.Minute) // drops h[0]
	require.Equal(t, policy.History{t0.Add(-time.Minute), t0}, pruned)
	require.Equal(t, t0.Add(-time.Hour), h[0], "pruning shifted the receiver's elements")
	require.Equal(t, t0.Add(-time.Minute), h[1])

	a[0] = time.Time{}
	require.Equal(t, t0.Add(-time.Hour), h[0], "result shares the receiver's array")
}

func TestHistoryWithin(t *testing.T) {
	t.Parallel()
	const period = 15 * time.Minute
	tests := []struct {
		name   string
		h      policy.History
		period time.Duration
		want   int
	}{
		{name: "empty", h: nil, period: period, want: 0},
		{name: "all inside", h: ago(10*time.Minute, 5*time.Minute, 0), period: period, want: 3},
		{name: "event at now counts", h: ago(0), period: period, want: 1},
		{name: "exactly period ago does not count", h: ago(period), period: period, want: 0},
		{name: "just inside period counts", h: ago(period - time.Nanosecond), period: period, want: 1},
		{name: "older events do not count", h: ago(time.Hour, 20*time.Minute, time.Minute), period: period, want: 1},
		{name: "future events do not count", h: ago(-time.Nanosecond, -time.Minute, time.Minute), period: period, want: 1},
		{name: "zero period counts nothing", h: ago(0, time.Minute), period: 0, want: 0},
		{name: "unsorted history", h: ago(time.Minute, time.Hour, 2*time.Minute), period: period, want: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.want, tc.h.Within(t0, tc.period))
		})
	}
}

func TestActionString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		action policy.Action
		want   string
	}{
		{name: "none", action: policy.ActionNone, want: "none"},
		{name: "restart", action: policy.ActionRestart, want: "restart"},
		{name: "failover", action: policy.ActionFailover, want: "failover"},
		{name: "stay-failed", action: policy.ActionStayFailed, want: "stay-failed"},
		{name: "move", action: policy.ActionMove, want: "move"},
		{name: "unknown", action: policy.Action(42), want: "Action(42)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.want, tc.action.String())
			b, err := tc.action.MarshalText()
			require.NoError(t, err)
			require.Equal(t, tc.want, string(b))
		})
	}
}

func TestDecisionString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		d    policy.Decision
		want string
	}{
		{name: "action and reason", d: policy.Decision{Action: policy.ActionStayFailed, Reason: "why"},
			want: "stay-failed: why"},
		{name: "with delay", d: policy.Decision{Action: policy.ActionRestart, Delay: 500 * time.Millisecond, Reason: "restart 1 of 3"},
			want: "restart after 500ms: restart 1 of 3"},
		{name: "with node", d: policy.Decision{Action: policy.ActionMove, Node: "b", Reason: "failback"},
			want: "move to b: failback"},
		{name: "with node and delay", d: policy.Decision{Action: policy.ActionFailover, Node: "c", Delay: time.Second, Reason: "r"},
			want: "failover to c after 1s: r"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.want, tc.d.String())
		})
	}
}
