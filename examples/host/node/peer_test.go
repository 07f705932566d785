package node_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sftkit/sft/cluster/peer"
	"github.com/sftkit/sft/examples/host/alert"
	"github.com/sftkit/sft/examples/host/api"
	"github.com/sftkit/sft/examples/host/config"
	"github.com/sftkit/sft/examples/host/node"
	"github.com/sftkit/sft/internal/testenv"
	"github.com/sftkit/sft/resource"
	"github.com/sftkit/sft/resource/resourcetest"
)

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestPeerModeNode runs two peer-mode nodes in this process on loopback
// (the group's address is 127.0.0.1, which always answers: nothing is
// taken over): the home node holds the group, the other watches it; both
// statuses name the owner, the reason and the other node; online and
// offline are refused with the reason; a move goes through the
// interconnect and both nodes' events and metrics show it. Root: the
// watcher's pings are ICMP (privileged).
func TestPeerModeNode(t *testing.T) {
	testenv.RequireRoot(t)
	dir := t.TempDir()
	key := filepath.Join(dir, "key")
	require.NoError(t, os.WriteFile(key, []byte("0123456789abcdef0123\n"), 0o600))
	ports := map[string]int{"a": freePort(t), "b": freePort(t)}
	// The service check connects to a port nobody listens on: the watcher
	// sees the address answer pings and the service dead (an alert).
	dead := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	alerts := make(chan alert.Alert, 16)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var a alert.Alert
		if json.NewDecoder(r.Body).Decode(&a) == nil {
			alerts <- a
		}
	}))
	defer hook.Close()
	cfgFor := func(name string) *config.Config {
		c := &config.Config{
			Node:    config.Node{Name: name},
			API:     config.API{Socket: filepath.Join(dir, name+".sock")},
			Metrics: config.Metrics{Listen: "127.0.0.1:0"},
			Alerts:  config.Alerts{Webhook: hook.URL, Backoff: config.Duration(time.Millisecond)},
			Cluster: &config.Cluster{Mode: config.ModePeer, KeyFile: key, Nodes: []config.ClusterNode{
				{Name: "a", Interconnect: []string{fmt.Sprintf("127.0.0.1:%d", ports["a"])}},
				{Name: "b", Interconnect: []string{fmt.Sprintf("127.0.0.1:%d", ports["b"])}},
			}},
			Groups: []config.Group{{Name: "web", Placement: config.Placement{Preferred: []string{"a"}},
				Peer: &config.PeerGroup{Address: "127.0.0.1", Check: config.PeerCheck{TCP: dead,
					Interval: config.Duration(50 * time.Millisecond), Timeout: config.Duration(50 * time.Millisecond)}},
				Resources: []config.Resource{{Name: "r", Type: "fake"}}}},
		}
		wd := c.WithDefaults()
		return &wd
	}
	nodes := map[string]*node.Node{}
	var cancels []context.CancelFunc
	var dones []chan error
	for _, name := range []string{"a", "b"} {
		reg, err := resource.NewRegistry(resourcetest.NewType("fake"))
		require.NoError(t, err)
		ready := make(chan *node.Node, 1)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			done <- node.Run(ctx, node.Options{Config: cfgFor(name), Registry: reg, Logger: slog.New(slog.DiscardHandler),
				Ready: func(n *node.Node) { ready <- n }})
		}()
		select {
		case nodes[name] = <-ready:
		case err := <-done:
			t.Fatalf("node %s: %v", name, err)
		}
		cancels, dones = append(cancels, cancel), append(dones, done)
	}
	defer func() {
		for i, cancel := range cancels {
			cancel()
			require.NoError(t, <-dones[i])
		}
	}()
	ca, cb := api.NewUnixClient(nodes["a"].SocketPath()), api.NewUnixClient(nodes["b"].SocketPath())
	defer ca.Close()
	defer cb.Close()
	bctx := context.Background()

	// a, the home, holds web; b watches it; each sees the other.
	waitEvent(t, ca, 0, func(e api.Event) bool { return e.Kind == "peer-online" && e.Group == "web" })
	var sa, sb api.Status
	require.Eventually(t, func() bool {
		sa, _ = ca.Status(bctx)
		sb, _ = cb.Status(bctx)
		return sa.Peer != nil && sb.Peer != nil && sa.Peer.PeerUp && sb.Peer.PeerUp
	}, 20*time.Second, 20*time.Millisecond, "both nodes up")
	require.Equal(t, "b", sa.Peer.Peer)
	require.Equal(t, peer.Holder, sa.Peer.Groups[0].Role)
	require.Equal(t, "a", sa.Groups[0].Owner)
	require.Equal(t, resource.StateOnline, sa.Groups[0].State)
	require.Equal(t, "online here, its home", sa.Groups[0].Placement)
	require.Equal(t, peer.Watcher, sb.Peer.Groups[0].Role)
	require.Equal(t, "a", sb.Groups[0].Owner, "b's status names a as the owner")
	require.Equal(t, resource.StateOffline, sb.Groups[0].State)

	// The dead service: b alerts (failed, with the peer event's message)
	// and takes nothing, the address still answering.
	select {
	case a := <-alerts:
		require.Equal(t, alert.KindFailed, a.Kind)
		require.Equal(t, "b", a.Node)
		require.Equal(t, "web", a.Group)
		require.True(t, strings.HasPrefix(a.Reason, "peer-service-dead: service at 127.0.0.1 fails its check 3 times"), a.Reason)
	case <-time.After(20 * time.Second):
		t.Fatal("no alert for the dead service")
	}
	sb, err := cb.Status(bctx)
	require.NoError(t, err)
	require.Equal(t, "service-dead", sb.Peer.Groups[0].State)
	require.Equal(t, "a", sb.Groups[0].Owner)
	require.Contains(t, sb.Groups[0].Placement, "not stealing the address")

	// Online and offline would fight the peer: refused, saying why.
	for _, action := range []string{"offline", "online"} {
		_, err := ca.Action(bctx, "web", action)
		require.ErrorContains(t, err, "peer mode: "+action+" is not available")
		require.ErrorContains(t, err, "move web NODE")
	}
	_, err = ca.Action(bctx, "nosuch", "offline")
	require.ErrorContains(t, err, "no such group")

	// A move (asked of the watcher) goes through the interconnect.
	res, err := cb.Move(bctx, "web", "b")
	require.NoError(t, err)
	require.Equal(t, "b", res.Status.Owner)
	sa, err = ca.Status(bctx)
	require.NoError(t, err)
	require.Equal(t, peer.Watcher, sa.Peer.Groups[0].Role)
	require.Equal(t, resource.StateOffline, sa.Groups[0].State)
	waitEvent(t, ca, 0, func(e api.Event) bool { return e.Kind == "peer-released" && e.Group == "web" })
	waitEvent(t, cb, 0, func(e api.Event) bool {
		return e.Kind == "peer-moved" && e.Group == "web" && strings.Contains(e.Reason, "moved here from a")
	})
	_, err = cb.Move(bctx, "web", "c")
	require.ErrorContains(t, err, `to "c"`)

	m := scrape(t, nodes["b"].MetricsAddr())
	require.Contains(t, m, `sft_peer_holding{group="web"} 1`)
	require.Contains(t, m, `sft_peer_up 1`)
	require.Contains(t, m, `sft_cluster_placements_total{kind="move"} 1`)
	require.Contains(t, m, `sft_cluster_events_total{kind="peer-moved"} 1`)
	require.Contains(t, scrape(t, nodes["a"].MetricsAddr()), `sft_peer_holding{group="web"} 0`)
}
