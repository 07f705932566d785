package detector_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sftkit/sft/cluster/detector"
	"github.com/sftkit/sft/resource"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// hangGuard bounds waits on real sockets: reaching it is a hang.
const hangGuard = 30 * time.Second

type udpNode struct {
	name   string
	u      *detector.UDP
	cancel context.CancelFunc
	done   chan error
	mu     sync.Mutex
	events []detector.Event
	gaps   map[string][]time.Duration // "peer/path"
}

func (n *udpNode) saw(kind detector.EventKind, node string, path int) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, e := range n.events {
		if e.Kind == kind && e.Node == node && e.Path == path {
			return true
		}
	}
	return false
}

func (n *udpNode) stop() error {
	n.cancel()
	return <-n.done
}

func startUDP(t *testing.T, name string, i int, k []byte) *udpNode {
	t.Helper()
	n := &udpNode{name: name, done: make(chan error, 1), gaps: map[string][]time.Duration{}}
	u, err := detector.ListenUDP(detector.UDPConfig{
		// A wide window: this test is about the sockets, not the timing,
		// and must not trip on a loaded machine's scheduling stalls.
		Detector: detector.Config{Self: name, Interval: 10 * time.Millisecond, Window: time.Second, Lease: 600 * time.Millisecond},
		Listen: []netip.AddrPort{
			netip.MustParseAddrPort(fmt.Sprintf("127.0.0.%d:0", 10+i)),
			netip.MustParseAddrPort(fmt.Sprintf("127.0.1.%d:0", 10+i)),
		},
		Key:     k,
		OnEvent: func(e detector.Event) { n.mu.Lock(); n.events = append(n.events, e); n.mu.Unlock() },
		OnGap: func(peer string, path int, gap time.Duration) {
			n.mu.Lock()
			k := fmt.Sprintf("%s/%d", peer, path)
			n.gaps[k] = append(n.gaps[k], gap)
			n.mu.Unlock()
		},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	require.NoError(t, err)
	n.u = u
	return n
}

func (n *udpNode) run() {
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	go func() { n.done <- n.u.Run(ctx) }()
}

// Three detectors on loopback (127.0.0.x and 127.0.1.x, two paths each).
// a sends to b's second path at an address where nobody listens: b sees
// that path down and nothing else. A stranger with another key is
// rejected. c stops: a and b agree it is dead.
func TestUDPLoopback(t *testing.T) {
	t.Parallel()
	nodes := []*udpNode{startUDP(t, "a", 0, key), startUDP(t, "b", 1, key), startUDP(t, "c", 2, key)}
	nowhere := netip.MustParseAddrPort("127.0.1.99:9") // discard port: nothing listens here
	for _, n := range nodes {
		for _, p := range nodes {
			if n == p {
				continue
			}
			addrs := p.u.Addrs()
			if n.name == "a" && p.name == "b" {
				addrs[1] = nowhere
			}
			require.NoError(t, n.u.AddPeer(p.name, addrs))
		}
	}
	for _, n := range nodes {
		n.run()
	}
	defer func() {
		for _, n := range nodes[:2] {
			require.NoError(t, n.stop())
		}
	}()

	require.Eventually(t, func() bool {
		for _, n := range nodes {
			if _, ok := n.u.Lease(); !ok {
				return false
			}
		}
		return true
	}, hangGuard, 5*time.Millisecond, "every node gets a lease")

	require.Eventually(t, func() bool {
		return nodes[1].saw(detector.PathDown, "a", 1) && !nodes[1].u.Silent("a")
	}, hangGuard, 5*time.Millisecond, "b: path 1 from a down, a still heard")

	// Heartbeat gaps: reported per peer and path that delivers, each
	// positive; none for the path from a that never arrives.
	b := nodes[1]
	b.mu.Lock()
	gapsA0, gapsA1, gapsC0 := slices.Clone(b.gaps["a/0"]), b.gaps["a/1"], len(b.gaps["c/0"])
	b.mu.Unlock()
	require.NotEmpty(t, gapsA0, "gaps from a on path 0")
	require.Empty(t, gapsA1, "gaps from a on path 1 (nothing arrives there)")
	require.Positive(t, gapsC0, "gaps from c on path 0")
	for _, g := range gapsA0 {
		require.Positive(t, g)
	}

	stranger := startUDP(t, "a", 3, []byte("some-other-cluster-key"))
	require.NoError(t, stranger.u.AddPeer("b", nodes[1].u.Addrs()))
	before := nodes[1].u.Counts().Rejected
	stranger.run()
	require.Eventually(t, func() bool { return nodes[1].u.Counts().Rejected > before }, hangGuard, 5*time.Millisecond)
	require.NoError(t, stranger.stop())

	require.NoError(t, nodes[2].stop())
	require.Eventually(t, func() bool {
		return nodes[0].saw(detector.NodeDead, "c", 0) && nodes[1].saw(detector.NodeDead, "c", 0)
	}, hangGuard, 5*time.Millisecond, "a and b agree c is dead")
	require.Equal(t, []string{"c"}, nodes[0].u.Dead())
	c := nodes[0].u.Counts()
	require.Positive(t, c.Sent)
	require.Positive(t, c.Received)

	nodes[0].u.RemovePeer("c")
	require.Empty(t, nodes[0].u.Dead())
}

func TestListenUDPErrors(t *testing.T) {
	t.Parallel()
	base := detector.UDPConfig{
		Detector: detector.Config{Self: "a", Interval: time.Millisecond, Window: time.Second, Lease: time.Second},
		Listen:   []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:0")},
		Key:      key,
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	c := base
	c.Listen = nil
	_, err := detector.ListenUDP(c)
	require.ErrorContains(t, err, "at least one interconnect address")
	c = base
	c.Key = []byte("short")
	_, err = detector.ListenUDP(c)
	require.ErrorContains(t, err, `key "5 bytes": shared key must have at least 16 bytes`)
	c = base
	c.Detector.Lease = 0
	_, err = detector.ListenUDP(c)
	require.ErrorIs(t, err, resource.ErrConfiguration)
	c = base
	c.Listen = []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:0"), netip.MustParseAddrPort("192.0.2.1:0")} // TEST-NET-1: not ours
	_, err = detector.ListenUDP(c)
	require.ErrorContains(t, err, `listen[1] "192.0.2.1:0"`)

	u, err := detector.ListenUDP(base)
	require.NoError(t, err)
	require.ErrorContains(t, u.AddPeer("b", nil), "peer b needs 1 addresses, one per path")
	require.ErrorIs(t, u.AddPeer("a", u.Addrs()), resource.ErrConfiguration)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.NoError(t, u.Run(ctx), "a cancelled Run closes the sockets and returns")
}

// A path whose writes block (its link was pulled and its socket's send
// buffer is full) must not stop heartbeats on the other path: b keeps
// hearing a on path 1, a's stuck path drops its datagrams (counted), and
// Run still returns once the sockets close.
func TestUDPBlockedPath(t *testing.T) {
	t.Parallel()
	a, b := startUDP(t, "a", 4, key), startUDP(t, "b", 5, key)
	release := make(chan struct{})
	var blocked atomic.Int64
	detector.SetWriteForTest(a.u, func(path int, c *net.UDPConn, p []byte, to netip.AddrPort) error {
		if path == 0 {
			blocked.Add(1)
			<-release
			return net.ErrClosed
		}
		_, err := c.WriteToUDPAddrPort(p, to)
		return err
	})
	require.NoError(t, a.u.AddPeer("b", b.u.Addrs()))
	require.NoError(t, b.u.AddPeer("a", a.u.Addrs()))
	a.run()
	b.run()
	defer func() {
		close(release)
		require.NoError(t, a.stop())
		require.NoError(t, b.stop())
	}()
	require.Eventually(t, func() bool { _, ok := a.u.Lease(); return ok }, hangGuard, 5*time.Millisecond, "a gets a lease")
	require.Eventually(t, func() bool {
		return a.u.Counts().Dropped > 0 && b.saw(detector.PathDown, "a", 0)
	}, hangGuard, 5*time.Millisecond, "a's path 0 stuck and dropping; b sees that path down")
	require.Equal(t, int64(1), blocked.Load(), "one write stuck on path 0, no more started")
	sent := a.u.Counts().Sent
	require.Eventually(t, func() bool { return a.u.Counts().Sent > sent+10 }, hangGuard, 5*time.Millisecond, "a still sends on path 1")
	require.False(t, b.u.Silent("a"), "b still hears a on path 1")
	require.False(t, b.saw(detector.NodeDead, "a", 0), "a declared dead")
	_, ok := a.u.Lease()
	require.True(t, ok, "a keeps its lease")
}
