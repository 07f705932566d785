package node

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/sftkit/sft/cluster"
)

// TestClusterMetrics: heartbeat gaps land in the histogram per peer and
// path; failover placements are counted by cause (every cause at 0 from
// the start), other placements and events are not.
func TestClusterMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	cm := newClusterMetrics(reg)
	cm.gap("b", 0, 10*time.Millisecond)
	cm.gap("b", 0, 600*time.Millisecond)
	cm.gap("c", 1, 5*time.Millisecond)
	for _, e := range []cluster.Event{
		{Kind: cluster.EventPlacement, Group: "web", Node: "b", Detail: `failover from "a": owner a is down: b (preferred #2, load 0)`},
		{Kind: cluster.EventPlacement, Group: "web", Node: "c", Detail: `failover from "b": failed on b: c (preferred #3, load 0)`},
		{Kind: cluster.EventPlacement, Group: "web", Node: "a", Detail: `failback from "c": a is preferred`},
		{Kind: cluster.EventNodeDown, Node: "a", Detail: "failover from a"},
	} {
		cm.observe(e)
	}
	mfs, err := reg.Gather()
	require.NoError(t, err)
	byName := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		byName[mf.GetName()] = mf
	}
	label := func(m *dto.Metric, name string) string {
		for _, l := range m.GetLabel() {
			if l.GetName() == name {
				return l.GetValue()
			}
		}
		return ""
	}
	gaps := byName["sft_cluster_heartbeat_gap_seconds"]
	require.NotNil(t, gaps)
	counts := map[string]uint64{}
	for _, m := range gaps.GetMetric() {
		counts[label(m, "peer")+"/"+label(m, "path")] = m.GetHistogram().GetSampleCount()
		if label(m, "peer") == "b" {
			require.InDelta(t, 0.61, m.GetHistogram().GetSampleSum(), 1e-9)
		}
	}
	require.Equal(t, map[string]uint64{"b/0": 2, "c/1": 1}, counts)
	fo := byName["sft_cluster_failovers_total"]
	require.NotNil(t, fo)
	got := map[string]float64{}
	for _, m := range fo.GetMetric() {
		got[label(m, "cause")] = m.GetCounter().GetValue()
	}
	require.Equal(t, map[string]float64{cluster.CauseNodeLost: 1, cluster.CauseGroupFailed: 1, cluster.CauseOther: 0}, got)
}
