package node

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sftkit/sft/cluster/peer"
	"github.com/sftkit/sft/examples/host/alert"
	"github.com/sftkit/sft/examples/host/api"
	"github.com/sftkit/sft/examples/host/config"
)

// peerCheckEvery is how often a peer-mode node asks the other node's sft
// for its status (shown by `status`).
const peerCheckEvery = time.Second

// startPeer starts this node's peer.Node (cluster.mode: peer) over the
// monitor and the consumer of its events.
func (n *Node) startPeer(cfg config.Config) error {
	key, err := cfg.Cluster.ReadKey()
	if err != nil {
		return err
	}
	ps := cfg.Cluster.Peer
	pn, err := peer.Start(cfg.PeerConfig(n.name, key), peer.Options{
		Local: peer.MonitorLocal{M: n.mon}, Grace: ps.Grace.D(), RetryAfter: ps.RetryAfter.D(), PeerCheck: peerCheckEvery,
		Events: 4096,
	})
	if err != nil {
		return fmt.Errorf("cluster (peer mode): %w", err)
	}
	n.pn = pn
	n.met.registerPeer(pn)
	sub := pn.Events()
	n.clDone = make(chan struct{})
	go func() { defer close(n.clDone); n.consumePeer(sub) }()
	return nil
}

// peerPlacement is the placement kind (sft_cluster_placements_total) of
// the peer events that change a group's owner.
var peerPlacement = map[peer.EventKind]string{
	peer.EventTakeover: "failover", peer.EventMoved: "move", peer.EventFailback: "failback",
}

// consumePeer puts peer mode's events in the node's event stream (kind
// "peer-" + the peer event's kind), log, metrics and alerts: a takeover
// is the failover alert, every peer alert (isolated, address held,
// service dead, group lost, ...) a failed alert; the monitor's own group
// failures raise none in peer mode (see alerts). A group whose address was
// found held elsewhere (a returning home node, a takeover refused) failed
// in the monitor by design: it is cleared, so that it shows offline here
// with the owner and the reason. It ends when the peer node closes.
func (n *Node) consumePeer(sub *peer.Subscription) {
	for e := range sub.C() {
		if e.Kind == peer.EventRecovery || e.Kind == peer.EventAddressHeld {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if err := n.mon.Clear(ctx, e.Group); err != nil {
				n.log.Warn("peer: clearing the group's failure", "group", e.Group, "err", err)
			}
			cancel()
		}
		n.met.clusterEvents.WithLabelValues("peer-" + string(e.Kind)).Inc()
		if k, ok := peerPlacement[e.Kind]; ok && e.Node == n.name {
			n.met.placements.WithLabelValues(k).Inc()
		}
		ae := api.Event{Time: e.Time, Node: n.name, Kind: "peer-" + string(e.Kind), Group: e.Group, Reason: e.Message}
		if e.Alert {
			n.log.Warn("event", "kind", ae.Kind, "group", e.Group, "reason", e.Message)
			n.fire(alert.Alert{Kind: alert.KindFailed, Time: e.Time, Node: n.name, Group: e.Group, Reason: ae.Kind + ": " + e.Message})
		} else {
			n.log.Info("event", "kind", ae.Kind, "group", e.Group, "reason", e.Message)
		}
		if e.Kind == peer.EventTakeover {
			n.fire(alert.Alert{Kind: alert.KindFailover, Time: e.Time, Node: n.name, Group: e.Group, Reason: fmt.Sprintf("now owned by %q: %s", n.name, e.Message), Failover: true})
		}
		n.publish(ae)
	}
}

// peerRefuse answers online and offline in peer mode: the two nodes
// decide who serves a group, and a group taken offline on its holder
// would be taken over by the other node.
func (n *Node) peerRefuse(group, action string) error {
	if _, err := n.mon.GroupStatus(group); err != nil {
		return mapErr(group, err)
	}
	return fmt.Errorf("%w: peer mode: %s is not available (the other node would take over a group taken offline here): move the group with `move %s NODE`, or stop the node", api.ErrConflict, action, group)
}

// peerStatus fills the peer part of st: both nodes, every group's owner
// and the reason (the newest peer event of the group).
func (n *Node) peerStatus(st *api.Status) {
	ps := n.pn.Status()
	st.Peer = &ps
	byName := map[string]peer.GroupStatus{}
	for _, g := range ps.Groups {
		byName[g.Name] = g
	}
	for i := range st.Groups {
		g := &st.Groups[i]
		if pg, ok := byName[g.Name]; ok {
			g.Owner, g.Placement = pg.Owner, pg.Reason
		}
	}
}

// registerPeer adds peer mode's gauges: per group whether this node holds
// it and the watcher's unanswered echoes in a row; whether the peer's sft
// answers.
func (m *metrics) registerPeer(pn *peer.Node) {
	m.reg.MustRegister(&peerCollector{
		pn:      pn,
		holding: prometheus.NewDesc("sft_peer_holding", "1 while this node holds the group (peer mode).", []string{"group"}, nil),
		misses:  prometheus.NewDesc("sft_peer_echo_misses", "Echoes to the group's address unanswered in a row (the watcher; 0 on the holder).", []string{"group"}, nil),
		peerUp:  prometheus.NewDesc("sft_peer_up", "1 while the other node's sft answers its status request.", nil, nil),
	})
}

type peerCollector struct {
	pn                      *peer.Node
	holding, misses, peerUp *prometheus.Desc
}

func (c *peerCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.holding
	ch <- c.misses
	ch <- c.peerUp
}

func (c *peerCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.pn.Status()
	for _, g := range st.Groups {
		ch <- prometheus.MustNewConstMetric(c.holding, prometheus.GaugeValue, b2f(g.Role == peer.Holder), g.Name)
		ch <- prometheus.MustNewConstMetric(c.misses, prometheus.GaugeValue, float64(g.Misses), g.Name)
	}
	ch <- prometheus.MustNewConstMetric(c.peerUp, prometheus.GaugeValue, b2f(st.PeerUp))
}
