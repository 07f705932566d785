package policy_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sftkit/sft/policy"
)

func TestFailoverDecide(t *testing.T) {
	t.Parallel()
	const period = policy.DefaultFailoverPeriod
	tests := []struct {
		name      string
		policy    policy.Failover
		failovers []time.Time
		nodes     int
		want      policy.Action
		reason    string
	}{
		{name: "three nodes, first failover", nodes: 3,
			want: policy.ActionFailover, reason: "failover 1 of 2 within 6h0m0s"},
		{name: "three nodes, second failover", nodes: 3, failovers: ago(time.Hour),
			want: policy.ActionFailover, reason: "failover 2 of 2 within 6h0m0s"},
		{name: "three nodes, threshold nodes-1 reached", nodes: 3, failovers: ago(2*time.Hour, time.Hour),
			want: policy.ActionStayFailed, reason: "failover threshold reached: 2 failovers within 6h0m0s (threshold 2)"},
		{name: "five nodes allow four", nodes: 5, failovers: ago(4*time.Hour, 3*time.Hour, 2*time.Hour),
			want: policy.ActionFailover, reason: "failover 4 of 4"},
		{name: "two nodes allow one", nodes: 2, want: policy.ActionFailover, reason: "failover 1 of 1"},
		{name: "two nodes, second refused", nodes: 2, failovers: ago(time.Minute),
			want: policy.ActionStayFailed, reason: "(threshold 1)"},
		{name: "one node still gets threshold 1", nodes: 1,
			want: policy.ActionFailover, reason: "failover 1 of 1"},
		{name: "zero nodes still gets threshold 1", nodes: 0, failovers: ago(time.Minute),
			want: policy.ActionStayFailed, reason: "(threshold 1)"},
		{name: "explicit threshold beats nodes-1", policy: policy.Failover{Threshold: 5}, nodes: 2,
			failovers: ago(3*time.Hour, 2*time.Hour, time.Hour),
			want:      policy.ActionFailover, reason: "failover 4 of 5"},
		{name: "failovers older than period forgotten", nodes: 3,
			failovers: ago(period+2*time.Hour, period+time.Hour),
			want:      policy.ActionFailover, reason: "failover 1 of 2"},
		{name: "failover exactly period ago forgotten", nodes: 2, failovers: ago(period),
			want: policy.ActionFailover, reason: "failover 1 of 1"},
		{name: "failover just inside period counts", nodes: 2, failovers: ago(period - time.Nanosecond),
			want: policy.ActionStayFailed, reason: "1 failovers within 6h0m0s"},
		{name: "custom period", policy: policy.Failover{Period: time.Hour}, nodes: 2, failovers: ago(2 * time.Hour),
			want: policy.ActionFailover, reason: "failover 1 of 1 within 1h0m0s"},
		{name: "custom period refuses within it", policy: policy.Failover{Period: time.Hour}, nodes: 2, failovers: ago(30 * time.Minute),
			want: policy.ActionStayFailed, reason: "1 failovers within 1h0m0s"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := tc.policy.Decide(t0, tc.failovers, tc.nodes)
			require.Equal(t, tc.want, d.Action, "decision %v", d)
			require.Zero(t, d.Delay, "failover decisions are immediate")
			require.Contains(t, d.Reason, tc.reason)
		})
	}
}

func TestFailoverWithDefaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		in    policy.Failover
		nodes int
		want  policy.Failover
	}{
		{name: "three nodes", nodes: 3, want: policy.Failover{Threshold: 2, Period: 6 * time.Hour}},
		{name: "two nodes", nodes: 2, want: policy.Failover{Threshold: 1, Period: 6 * time.Hour}},
		{name: "one node min 1", nodes: 1, want: policy.Failover{Threshold: 1, Period: 6 * time.Hour}},
		{name: "unknown node count min 1", nodes: 0, want: policy.Failover{Threshold: 1, Period: 6 * time.Hour}},
		{name: "set fields kept", in: policy.Failover{Threshold: 7, Period: time.Minute}, nodes: 3,
			want: policy.Failover{Threshold: 7, Period: time.Minute}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.want, tc.in.WithDefaults(tc.nodes))
		})
	}
}

func TestFailoverValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		in     policy.Failover
		fields []string
		values []string
	}{
		{name: "zero is valid", in: policy.Failover{}},
		{name: "set is valid", in: policy.Failover{Threshold: 1, Period: time.Hour}},
		{name: "negative threshold", in: policy.Failover{Threshold: -1}, fields: []string{"threshold"}, values: []string{"-1"}},
		{name: "negative period", in: policy.Failover{Period: -time.Hour}, fields: []string{"period"}, values: []string{"-1h0m0s"}},
		{name: "both", in: policy.Failover{Threshold: -3, Period: -time.Second},
			fields: []string{"threshold", "period"}, values: []string{"-3", "-1s"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			requireValidation(t, tc.in.Validate(), tc.fields, tc.values)
		})
	}
}
