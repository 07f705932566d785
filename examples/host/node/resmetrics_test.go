package node

import (
	"bufio"
	"bytes"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/sftkit/sft/monitor"
	"github.com/sftkit/sft/resource"
)

// TestMetricsTextParses: a whole scrape (registry plus the hand-written
// per-resource families) parses as the text format, every family once,
// with the values of the status (states, the policy's count and the
// never-reset counters), label values escaped.
func TestMetricsTextParses(t *testing.T) {
	t.Parallel()
	odd := `we"ird\name` + "\n"
	st := monitor.Status{Groups: []monitor.GroupStatus{
		{Name: "g1", State: resource.StateOnline, Resources: []monitor.ResourceStatus{
			{Name: "a", Type: "fake", State: resource.StateOnline, Restarts: 2, RestartsTotal: 7},
			{Name: odd, Type: "fake", State: resource.StateFailed, Failures: 1, FailuresPushed: 1},
		}},
		{Name: "g0", State: resource.StateOffline, Failed: true, Resources: []monitor.ResourceStatus{
			{Name: "b", Type: "other", State: resource.StateOffline},
		}},
	}}
	m := newMetrics(func() monitor.Status { return st })
	for _, g := range st.Groups {
		m.initGroup(g.Name)
	}
	// Events a subscriber saw change none of the counters: they are the
	// status's (lossless), not counted from the stream.
	m.observeEvent(monitor.Event{Kind: monitor.EventRestart, Group: "g1", Resource: "a", Type: "fake"})

	var buf bytes.Buffer
	w := bufio.NewWriter(&buf)
	require.NoError(t, m.write(w))
	require.NoError(t, w.Flush())
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(bytes.NewReader(buf.Bytes()))
	require.NoError(t, err, buf.String())

	value := func(family string, labels map[string]string) float64 {
		t.Helper()
		mf := mfs[family]
		require.NotNil(t, mf, family)
	next:
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, l := range m.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			for k, v := range labels {
				if got[k] != v {
					continue next
				}
			}
			if g := m.GetGauge(); g != nil {
				return g.GetValue()
			}
			return m.GetCounter().GetValue()
		}
		t.Fatalf("%s%v: no such series in\n%s", family, labels, buf.String())
		return 0
	}
	require.Equal(t, 1.0, value("sft_resource_state", map[string]string{"group": "g1", "resource": odd, "state": "Failed", "type": "fake"}))
	require.Equal(t, 1.0, value("sft_resource_state", map[string]string{"group": "g0", "resource": "b", "state": "Offline", "type": "other"}))
	require.Equal(t, 2.0, value("sft_resource_restarts_counted", map[string]string{"group": "g1", "resource": "a"}))
	require.Equal(t, 7.0, value("sft_resource_restarts_total", map[string]string{"group": "g1", "resource": "a", "type": "fake"}))
	require.Equal(t, 0.0, value("sft_resource_restarts_total", map[string]string{"group": "g0", "resource": "b"}))
	require.Equal(t, 1.0, value("sft_resource_failures_total", map[string]string{"group": "g1", "resource": odd}))
	require.Equal(t, 1.0, value("sft_resource_failures_pushed_total", map[string]string{"group": "g1", "resource": odd}))
	require.Equal(t, 0.0, value("sft_resource_failures_pushed_total", map[string]string{"group": "g1", "resource": "a"}))
	require.Equal(t, 1.0, value("sft_group_state", map[string]string{"group": "g1", "state": "Online"}))
	require.Equal(t, 0.0, value("sft_group_state", map[string]string{"group": "g1", "state": "Offline"}))
	require.Equal(t, 1.0, value("sft_group_failed", map[string]string{"group": "g0"}))
	require.Equal(t, 0.0, value("sft_group_failed", map[string]string{"group": "g1"}))
	require.Len(t, mfs["sft_group_state"].GetMetric(), 2*5)
	require.Len(t, mfs["sft_resource_state"].GetMetric(), 3)
	require.Len(t, mfs["sft_resource_restarts_total"].GetMetric(), 3)
	require.Equal(t, "COUNTER", mfs["sft_resource_failures_total"].GetType().String())
}
