package node

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/sftkit/sft/examples/host/alert"
	"github.com/sftkit/sft/monitor"
	"github.com/sftkit/sft/plugins"
	"github.com/sftkit/sft/resource"
)

// metrics holds the node's Prometheus collectors. Names start with sft_.
type metrics struct {
	reg    *prometheus.Registry
	status func() monitor.Status

	groupFailures  *prometheus.CounterVec   // group
	failovers      *prometheus.CounterVec   // group
	timeouts       *prometheus.CounterVec   // type, method
	deadlocks      *prometheus.CounterVec   // type, method
	calls          *prometheus.HistogramVec // type, method
	callErrors     *prometheus.CounterVec   // type, method
	pluginExits    *prometheus.CounterVec   // type
	events         prometheus.Counter
	eventsDropped  prometheus.Counter
	alertsSent     *prometheus.CounterVec // kind
	alertsFailed   *prometheus.CounterVec // kind
	alertsDropped  prometheus.Counter
	alertsAttempts prometheus.Counter
	clusterEvents  *prometheus.CounterVec // kind
	placements     *prometheus.CounterVec // kind
}

var states = []resource.State{resource.StateOffline, resource.StateOnlinePending, resource.StateOnline, resource.StateOfflinePending, resource.StateFailed}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func newMetrics(status func() monitor.Status) *metrics {
	r := prometheus.NewRegistry()
	m := &metrics{reg: r, status: status}
	tm := []string{"type", "method"}
	counter := func(name, help string, labels []string) *prometheus.CounterVec {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
		r.MustRegister(c)
		return c
	}
	m.groupFailures = counter("sft_group_failures_total", "Times a group failed on this node (restart policy exhausted or node-local error).", []string{"group"})
	m.failovers = counter("sft_group_failovers_total", "Group failures whose policy asked for a failover to another node.", []string{"group"})
	m.timeouts = counter("sft_resource_call_timeouts_total", "Calls that outlived their timeout.", tm)
	m.deadlocks = counter("sft_resource_call_deadlocks_total", "Calls abandoned past the deadlock timeout.", tm)
	m.callErrors = counter("sft_resource_call_errors_total", "Calls to resources that returned an error.", tm)
	m.pluginExits = counter("sft_plugin_process_failures_total", "Resource failures caused by their plugin process exiting or being killed (each is followed by a relaunch of the process).", []string{"type"})
	m.calls = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "sft_resource_call_duration_seconds",
		Help:    "Duration of calls to resources (Online, Offline, LooksAlive, IsAlive, Terminate) by type and method.",
		Buckets: prometheus.ExponentialBucketsRange(0.00005, 60, 20),
	}, tm)
	r.MustRegister(m.calls)
	m.events = prometheus.NewCounter(prometheus.CounterOpts{Name: "sft_events_total", Help: "Monitor events seen by the node."})
	m.eventsDropped = prometheus.NewCounter(prometheus.CounterOpts{Name: "sft_events_dropped_total", Help: "Monitor events the node's consumer missed (too slow)."})
	m.alertsSent = counter("sft_alerts_sent_total", "Alerts delivered.", []string{"kind"})
	m.alertsFailed = counter("sft_alerts_failed_total", "Alerts given up after all retries.", []string{"kind"})
	m.alertsDropped = prometheus.NewCounter(prometheus.CounterOpts{Name: "sft_alerts_dropped_total", Help: "Alerts dropped because the alert queue was full."})
	for _, k := range []string{alert.KindFailed, alert.KindFailover, alert.KindRecovery} {
		m.alertsSent.WithLabelValues(k)
		m.alertsFailed.WithLabelValues(k)
	}
	m.alertsAttempts = prometheus.NewCounter(prometheus.CounterOpts{Name: "sft_alert_attempts_total", Help: "Alert delivery attempts, retries included."})
	r.MustRegister(m.events, m.eventsDropped, m.alertsDropped, m.alertsAttempts)
	m.clusterEvents = counter("sft_cluster_events_total", "Cluster events seen by this node, by kind (node-down, lease-lost, fenced, ...).", []string{"kind"})
	m.placements = counter("sft_cluster_placements_total", "Ownership changes of groups seen by this node, by kind (failover, move, failback, place, offline).", []string{"kind"})
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// initGroup makes a group's counters exist at 0.
func (m *metrics) initGroup(group string) {
	m.groupFailures.WithLabelValues(group)
	m.failovers.WithLabelValues(group)
}

// observeCall is the monitor's Observer.
func (m *metrics) observeCall(ci monitor.CallInfo) {
	m.calls.WithLabelValues(ci.Type, ci.Method).Observe(ci.Duration.Seconds())
	if ci.Err != nil {
		m.callErrors.WithLabelValues(ci.Type, ci.Method).Inc()
	}
}

// pluginExited reports whether a failure reason says the plugin process
// died: the plugin SDK's ErrPluginExited text.
func pluginExited(reason string) bool {
	return strings.Contains(reason, errPluginExitedText)
}

var errPluginExitedText = plugins.ErrPluginExited.Error()

func (m *metrics) observeEvent(e monitor.Event) {
	m.events.Inc()
	switch e.Kind {
	case monitor.EventFailurePushed:
		if pluginExited(e.Reason) {
			m.pluginExits.WithLabelValues(e.Type).Inc()
		}
	case monitor.EventGroupFailed:
		m.groupFailures.WithLabelValues(e.Group).Inc()
		if e.Failover {
			m.failovers.WithLabelValues(e.Group).Inc()
		}
	case monitor.EventCallTimedOut:
		m.timeouts.WithLabelValues(e.Type, e.Method).Inc()
	case monitor.EventCallDeadlocked:
		m.deadlocks.WithLabelValues(e.Type, e.Method).Inc()
	case monitor.EventsDropped:
		m.eventsDropped.Add(float64(e.Dropped))
	}
}

func (m *metrics) observeAlert(a alert.Alert, attempts int, err error) {
	m.alertsAttempts.Add(float64(attempts))
	switch {
	case err == nil:
		m.alertsSent.WithLabelValues(a.Kind).Inc()
	case alert.IsDropped(err):
		m.alertsDropped.Inc()
	default:
		m.alertsFailed.WithLabelValues(a.Kind).Inc()
	}
}
