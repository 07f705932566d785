package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sftkit/sft/cluster"
	"github.com/sftkit/sft/examples/host/alert"
	"github.com/sftkit/sft/examples/host/api"
	"github.com/sftkit/sft/examples/host/config"
	"github.com/sftkit/sft/resource"
)

// startCluster starts this node's cluster.Node over the monitor (nil on a
// witness) and the consumer of its events.
func (n *Node) startCluster(cfg config.Config, local cluster.Local) error {
	cl := cfg.Cluster
	key, err := cl.ReadKey()
	if err != nil {
		return err
	}
	t, err := cl.ClusterTiming()
	if err != nil {
		return err
	}
	ccfg := cluster.Config{
		Name: n.name, Nodes: cl.Specs(), Timing: t, Key: key, DataDir: cl.DataDir,
		Local: local, Groups: cfg.PolicyGroups(), Logger: n.log.With("component", "cluster"),
		Events: 4096, // from the first event: the event log and the counters miss none
	}
	if len(cl.FenceHook) > 0 {
		ccfg.FenceHook = n.fenceHook(cl.FenceHook, cl.FenceTimeout.D())
	}
	cm := newClusterMetrics(n.met.reg)
	ccfg.OnHeartbeatGap = cm.gap
	cn, err := cluster.Start(ccfg)
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	n.cl = cn
	n.met.registerCluster(cn)
	sub := cn.Events()
	n.clDone = make(chan struct{})
	go func() { defer close(n.clDone); n.consumeCluster(sub, cm) }()
	return nil
}

// fenceHook runs argv with the request in SFT_FENCE_* variables.
func (n *Node) fenceHook(argv []string, timeout time.Duration) func(context.Context, cluster.FenceRequest) error {
	return func(ctx context.Context, req cluster.FenceRequest) error {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
		errText := ""
		if req.Err != nil {
			errText = req.Err.Error()
		}
		cmd.Env = append(os.Environ(), "SFT_FENCE_GROUP="+req.Group, "SFT_FENCE_EPOCH="+strconv.FormatUint(req.Epoch, 10),
			"SFT_FENCE_SUSPECT="+req.Suspect, "SFT_FENCE_ERROR="+errText, "SFT_NODE="+n.name)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("fence hook %s: %w: %s", argv[0], err, strings.TrimSpace(string(out)))
		}
		n.log.Warn("fence hook ran", "group", req.Group, "epoch", req.Epoch, "suspect", req.Suspect)
		return nil
	}
}

// consumeCluster puts the cluster's events in the node's event stream,
// log, metrics and alerts. It ends when the cluster node closes.
func (n *Node) consumeCluster(sub *cluster.Subscription, cm *clusterMetrics) {
	for e := range sub.C() {
		n.met.observeCluster(e)
		cm.observe(e)
		ae := api.Event{Time: e.At, Node: n.name, Kind: "cluster-" + string(e.Kind), Group: e.Group, Reason: clusterReason(e)}
		lvl := "info"
		switch e.Kind {
		case cluster.EventNodeDown, cluster.EventLeaseLost, cluster.EventFenceNeeded, cluster.EventError, cluster.EventFailure, cluster.EventPathDown:
			lvl = "warn"
		}
		if lvl == "warn" {
			n.log.Warn("event", "kind", ae.Kind, "group", e.Group, "node_name", e.Node, "epoch", e.Epoch, "reason", e.Detail)
		} else {
			n.log.Info("event", "kind", ae.Kind, "group", e.Group, "node_name", e.Node, "epoch", e.Epoch, "reason", e.Detail)
		}
		// A group placed on another node than before, by a failure or a
		// node going down: the failover alert (sent by the leader's
		// view on every node; the alert names the new owner).
		if e.Kind == cluster.EventPlacement && placementKind(e.Detail) == "failover" {
			n.fire(alert.Alert{Kind: alert.KindFailover, Time: e.At, Node: n.name, Group: e.Group, Reason: fmt.Sprintf("now owned by %q: %s", e.Node, e.Detail), Failover: true})
		}
		n.publish(ae)
	}
}

// clusterReason renders a cluster event's node, epoch and detail.
func clusterReason(e cluster.Event) string {
	var parts []string
	if e.Node != "" {
		parts = append(parts, "node "+e.Node)
	}
	if e.Epoch != 0 {
		parts = append(parts, "epoch "+strconv.FormatUint(e.Epoch, 10))
	}
	s := strings.Join(parts, ", ")
	if e.Detail != "" {
		if s != "" {
			s += ": "
		}
		s += e.Detail
	}
	return s
}

// placementKind is the kind of a placement event's detail ("failover
// from "a": ..."): failover, move, failback, ...
func placementKind(detail string) string {
	k, _, _ := strings.Cut(detail, " ")
	if k == "" {
		return "unknown"
	}
	return k
}

// publish adds an event to the history and the followers.
func (n *Node) publish(ae api.Event) {
	n.evMu.Lock()
	defer n.evMu.Unlock()
	n.seq++
	ae.Seq = n.seq
	n.ring = append(n.ring, ae)
	if over := len(n.ring) - n.cfg.API.EventHistory; over > 0 {
		n.ring = append(n.ring[:0:0], n.ring[over:]...)
	}
	for ch := range n.followers {
		select {
		case ch <- ae:
		default:
			n.log.Warn("api: event follower too slow, disconnecting it")
			close(ch)
			delete(n.followers, ch)
		}
	}
}

// clusterStatus fills the cluster part of st: every node, the placement
// of every group (its owner replaces this node's name).
func (n *Node) clusterStatus(st *api.Status) {
	cs := n.cl.Status()
	st.Cluster = &cs
	byName := map[string]cluster.GroupStatus{}
	for _, g := range cs.Groups {
		byName[g.Name] = g
	}
	seen := map[string]bool{}
	for i := range st.Groups {
		g := &st.Groups[i]
		seen[g.Name] = true
		if cg, ok := byName[g.Name]; ok {
			g.Owner, g.Epoch, g.Placement = cg.Owner, cg.Epoch, cg.Reason
		}
	}
	for _, cg := range cs.Groups { // a witness runs no group itself
		if !seen[cg.Name] {
			var ag api.GroupStatus
			ag.Name, ag.State, ag.Target = cg.Name, resource.StateOffline, resource.StateOffline
			ag.Owner, ag.Epoch, ag.Placement = cg.Owner, cg.Epoch, cg.Reason
			st.Groups = append(st.Groups, ag)
		}
	}
}

// registerCluster adds the cluster's gauges: the lease margin and whether
// this node holds its lease.
func (m *metrics) registerCluster(cn *cluster.Node) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "sft_cluster_lease_margin_seconds",
		Help: "Time left on this node's lease (negative: ran out that long ago; 0 before the first lease).",
	}, func() float64 { return cn.Status().LeaseMargin.Seconds() }))
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "sft_cluster_lease_held",
		Help: "1 while this node holds its lease.",
	}, func() float64 { return b2f(cn.Status().Lease) }))
}

// observeCluster counts cluster events: placements by kind (failover,
// move, failback, ...), and every event by kind.
func (m *metrics) observeCluster(e cluster.Event) {
	m.clusterEvents.WithLabelValues(string(e.Kind)).Inc()
	if e.Kind == cluster.EventPlacement {
		m.placements.WithLabelValues(placementKind(e.Detail)).Inc()
	}
}

// clusterErr maps the cluster's refusals to the API's errors: an unknown
// group is ErrNotFound, any other configuration refusal (a node the group
// may not run on) ErrConflict.
func clusterErr(err error) error {
	var re *resource.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &re) && re.Field == "group":
		return fmt.Errorf("%w %q", api.ErrNotFound, re.Value)
	case errors.As(err, &re):
		return fmt.Errorf("%w: %v", api.ErrConflict, err)
	}
	return err
}

// clusterMetrics are the cluster's collectors beyond the lease gauges and
// the event counters: the heartbeat gaps and the failovers by cause.
type clusterMetrics struct {
	gaps      *prometheus.HistogramVec // peer, path
	failovers *prometheus.CounterVec   // cause
}

// gapBuckets span a healthy 5-10 ms heartbeat to a gap past the default
// window (500 ms) and a long stall.
var gapBuckets = []float64{0.005, 0.01, 0.015, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 1, 2}

func newClusterMetrics(reg prometheus.Registerer) *clusterMetrics {
	cm := &clusterMetrics{
		gaps: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sft_cluster_heartbeat_gap_seconds",
			Help:    "Time between two heartbeats received from a node on an interconnect path (a gap of the window W makes the node suspect).",
			Buckets: gapBuckets,
		}, []string{"peer", "path"}),
		failovers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sft_cluster_failovers_total",
			Help: "Failovers seen by this node, by cause: node-lost (the owner was declared down), group-failed (it failed and stopped on its owner), other.",
		}, []string{"cause"}),
	}
	for _, c := range []string{cluster.CauseNodeLost, cluster.CauseGroupFailed, cluster.CauseOther} {
		cm.failovers.WithLabelValues(c)
	}
	reg.MustRegister(cm.gaps, cm.failovers)
	return cm
}

func (cm *clusterMetrics) gap(peer string, path int, gap time.Duration) {
	cm.gaps.WithLabelValues(peer, strconv.Itoa(path)).Observe(gap.Seconds())
}

func (cm *clusterMetrics) observe(e cluster.Event) {
	if c := e.FailoverCause(); c != "" {
		cm.failovers.WithLabelValues(c).Inc()
	}
}
