package peer

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sftkit/sft/resource"
)

// fakeNet says which addresses answer echoes and which hold the service
// address; it is the collaborators' world, not the thing under test.
type fakeNet struct {
	mu      sync.Mutex
	up      map[netip.Addr]bool
	holders map[string]string // group -> node holding it
}

func (f *fakeNet) set(a netip.Addr, up bool) {
	f.mu.Lock()
	f.up[a] = up
	f.mu.Unlock()
}

func (f *fakeNet) answers(a netip.Addr) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.up[a]
}

type fakePinger struct{ n *fakeNet }

func (p fakePinger) Run(ctx context.Context, addr netip.Addr, interval time.Duration, sent, recv func()) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		sent()
		if p.n.answers(addr) {
			recv()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// fakeLocal is a node's monitor: Online fails node-local when another node
// holds the group (the address probe).
type fakeLocal struct {
	n    *fakeNet
	node string
	vip  netip.Addr
}

func (l fakeLocal) Online(_ context.Context, g string) error {
	l.n.mu.Lock()
	defer l.n.mu.Unlock()
	if h := l.n.holders[g]; h != "" && h != l.node {
		return resource.NodeLocal(errors.New("address answered by another host"))
	}
	l.n.holders[g] = l.node
	l.n.up[l.vip] = true
	return nil
}

func (l fakeLocal) Offline(_ context.Context, g string) error {
	l.n.mu.Lock()
	defer l.n.mu.Unlock()
	if l.n.holders[g] == l.node {
		delete(l.n.holders, g)
		l.n.up[l.vip] = false
	}
	return nil
}

func (l fakeLocal) Holds(g string) bool {
	l.n.mu.Lock()
	defer l.n.mu.Unlock()
	return l.n.holders[g] == l.node
}

// chanListener is a net.Listener that never accepts (inside a synctest
// bubble a real socket would keep time from advancing).
type chanListener struct{ done chan struct{} }

func (c *chanListener) Accept() (net.Conn, error) { <-c.done; return nil, net.ErrClosed }
func (c *chanListener) Close() error {
	select {
	case <-c.done:
	default:
		close(c.done)
	}
	return nil
}
func (c *chanListener) Addr() net.Addr { return &net.TCPAddr{} }

var (
	vip    = netip.MustParseAddr("192.0.2.10")
	gwAddr = netip.MustParseAddr("192.0.2.254")
)

func startFake(t *testing.T, fn *fakeNet, node, peer string, ref netip.Addr) *Node {
	t.Helper()
	cfg := validConfig()
	cfg.Node, cfg.Peer = node, peer
	cfg.Groups[0].Home = "a"
	cfg.Reference = ref
	n, err := Start(cfg, Options{Local: fakeLocal{n: fn, node: node, vip: vip}, Pinger: fakePinger{fn},
		Listener: &chanListener{done: make(chan struct{})}, Events: 64})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func events(s *Subscription) []Event {
	var out []Event
	for {
		select {
		case e, ok := <-s.C():
			if !ok {
				return out
			}
			out = append(out, e)
		default:
			return out
		}
	}
}

func hasEvent(es []Event, k EventKind) bool {
	for _, e := range es {
		if e.Kind == k {
			return true
		}
	}
	return false
}

// The standby takes the group over one window after the holder dies, not
// before; the returning home node finds the address held and watches.
func TestNodeTakeoverAndRecovery(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fn := &fakeNet{up: map[netip.Addr]bool{gwAddr: true}, holders: map[string]string{}}
		a := startFake(t, fn, "a", "b", gwAddr)
		b := startFake(t, fn, "b", "a", gwAddr)
		sb := b.Events()
		time.Sleep(time.Second)
		synctest.Wait()
		if st := a.Status().Groups[0]; st.Role != Holder {
			t.Fatalf("a: %+v", st)
		}
		if st := b.Status().Groups[0]; st.Role != Watcher || st.Owner != "a" || st.State != "alive" {
			t.Fatalf("b: %+v", st)
		}
		// a dies: its monitor is gone with it.
		_ = a.Close()
		killed := time.Now()
		fn.mu.Lock()
		delete(fn.holders, "web")
		fn.up[vip] = false
		fn.mu.Unlock()
		w := (Detect{}).withDefaults().Window()
		time.Sleep(w - 2*DefaultInterval)
		synctest.Wait()
		if st := b.Status().Groups[0]; st.Role != Watcher || st.State != "suspect" {
			t.Fatalf("b before the window: %+v", st)
		}
		time.Sleep(4 * DefaultInterval)
		synctest.Wait()
		if st := b.Status().Groups[0]; st.Role != Holder {
			t.Fatalf("b after %v: %+v", time.Since(killed), st)
		}
		if !hasEvent(events(sb), EventTakeover) {
			t.Fatal("no takeover event")
		}
		// a comes back: the address is held by b.
		a = startFake(t, fn, "a", "b", gwAddr)
		sa := a.Events()
		time.Sleep(time.Second)
		synctest.Wait()
		if st := a.Status().Groups[0]; st.Role != Watcher || st.Owner != "b" {
			t.Fatalf("returning a: %+v", st)
		}
		if fn.holders["web"] != "b" {
			t.Fatalf("holder %q", fn.holders["web"])
		}
		_ = sa
		_ = a.Close()
		_ = b.Close()
	})
}

// Recovery is reported as an event at the returning node. The event
// comes from Start's own goroutine at once, so the test takes it from
// Options.Events: a Subscribe after Start may come too late for it.
func TestNodeRecoveryEvent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fn := &fakeNet{up: map[netip.Addr]bool{vip: true}, holders: map[string]string{"web": "b"}}
		cfg := validConfig()
		n, err := Start(cfg, Options{Local: fakeLocal{n: fn, node: "a", vip: vip}, Pinger: fakePinger{fn},
			Listener: &chanListener{done: make(chan struct{})}, Events: 16})
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		_ = n.Close()
		es := events(n.Events())
		if !hasEvent(es, EventRecovery) || hasEvent(es, EventTakeover) {
			t.Fatalf("events %+v", es)
		}
	})
}

// A watcher whose reference is silent takes nothing.
func TestNodeIsolatedTakesNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fn := &fakeNet{up: map[netip.Addr]bool{vip: true}, holders: map[string]string{"web": "a"}}
		b := startFake(t, fn, "b", "a", gwAddr) // gateway down
		s := b.Subscribe(16)                    // isolation comes seconds after Start: Subscribe sees it
		time.Sleep(time.Second)
		fn.set(vip, false) // b's link is cut: nothing answers
		time.Sleep(5 * time.Second)
		synctest.Wait()
		if st := b.Status().Groups[0]; st.Role != Watcher || st.State != "dead" {
			t.Fatalf("%+v", st)
		}
		_ = b.Close()
		es := events(s)
		n := 0
		for _, e := range es {
			if e.Kind == EventIsolated {
				n++
				if !e.Alert {
					t.Fatal("isolated is no alert")
				}
			}
		}
		if n != 1 || hasEvent(es, EventTakeover) {
			t.Fatalf("want exactly one isolated event and no takeover: %+v", es)
		}
	})
}

// Holder answering the address probe (but not echoes): alert, no steal.
func TestNodeAddressHeldAlert(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fn := &fakeNet{up: map[netip.Addr]bool{vip: false}, holders: map[string]string{"web": "a"}}
		b := startFake(t, fn, "b", "a", netip.Addr{})
		s := b.Events()
		time.Sleep(5 * time.Second)
		_ = b.Close()
		es := events(s)
		if !hasEvent(es, EventAddressHeld) || hasEvent(es, EventTakeover) || fn.holders["web"] != "a" {
			t.Fatalf("events %+v holder %q", es, fn.holders["web"])
		}
	})
}

// Under 40 % random echo loss for ten minutes the watcher takes nothing.
func TestNodeLossNoTakeover(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fn := &fakeNet{up: map[netip.Addr]bool{vip: true}, holders: map[string]string{"web": "a"}}
		lossy := &lossyPinger{fakePinger: fakePinger{fn}, loss: 0.4}
		cfg := validConfig()
		cfg.Node, cfg.Peer = "b", "a"
		b, err := Start(cfg, Options{Local: fakeLocal{n: fn, node: "b", vip: vip}, Pinger: lossy,
			Listener: &chanListener{done: make(chan struct{})}, Events: 16})
		if err != nil {
			t.Fatal(err)
		}
		s := b.Events()
		time.Sleep(10 * time.Minute)
		_ = b.Close()
		if es := events(s); len(es) != 0 || fn.holders["web"] != "a" {
			t.Fatalf("events %+v", es)
		}
		if lossy.lost < 1000 {
			t.Fatalf("only %d echoes lost", lossy.lost)
		}
	})
}

type lossyPinger struct {
	fakePinger
	loss float64
	mu   sync.Mutex
	seq  uint64
	lost int
}

func (p *lossyPinger) Run(ctx context.Context, addr netip.Addr, interval time.Duration, sent, recv func()) error {
	return p.fakePinger.Run(ctx, addr, interval, sent, func() {
		p.mu.Lock()
		p.seq = p.seq*6364136223846793005 + 1442695040888963407
		drop := float64(p.seq>>11)/float64(1<<53) < p.loss
		if drop {
			p.lost++
		}
		p.mu.Unlock()
		if !drop {
			recv()
		}
	})
}

// With PeerCheck, Status says whether the peer's sft answers its
// authenticated status request, and why not once it stops.
func TestStatusPeerCheck(t *testing.T) {
	lb, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fn := &fakeNet{up: map[netip.Addr]bool{}, holders: map[string]string{}}
	start := func(node, peer string, ln net.Listener, peerAddr string, check time.Duration) *Node {
		cfg := validConfig()
		cfg.Node, cfg.Peer = node, peer
		cfg.PeerAddr = netip.MustParseAddrPort(peerAddr)
		n, err := Start(cfg, Options{Local: fakeLocal{n: fn, node: node, vip: vip}, Pinger: fakePinger{fn}, Listener: ln, PeerCheck: check})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	b := start("b", "a", lb, "127.0.0.1:1", 0)
	a := start("a", "b", &chanListener{done: make(chan struct{})}, lb.Addr().String(), 10*time.Millisecond)
	defer a.Close()
	if st := b.Status(); st.PeerChecked || st.PeerUp {
		t.Fatalf("b checks nothing but says %+v", st)
	}
	waitFor := func(what string, ok func(Status) bool) Status {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			st := a.Status()
			if ok(st) {
				return st
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: status %+v", what, st)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	up := waitFor("peer up", func(st Status) bool { return st.PeerUp })
	if up.PeerSeen.IsZero() || up.PeerError != "" {
		t.Fatalf("up but %+v", up)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	down := waitFor("peer down", func(st Status) bool { return st.PeerChecked && !st.PeerUp })
	if down.PeerError == "" || down.PeerSeen.Before(up.PeerSeen) {
		t.Fatalf("down without a reason or lost its last sighting: %+v", down)
	}
}

// Options.Events sees the events of the first moments (the home group
// coming online, or its address found held), which a Subscribe after
// Start can miss.
func TestEventsFromStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fn := &fakeNet{up: map[netip.Addr]bool{}, holders: map[string]string{"web": "b"}}
		cfg := validConfig()
		n, err := Start(cfg, Options{Local: fakeLocal{n: fn, node: "a", vip: vip}, Pinger: fakePinger{fn},
			Listener: &chanListener{done: make(chan struct{})}, Events: 8})
		if err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if err := n.Close(); err != nil {
			t.Fatal(err)
		}
		es := events(n.Events())
		if len(es) == 0 || es[0].Kind != EventRecovery {
			t.Fatalf("first event %+v, want %s", es, EventRecovery)
		}
	})
}
