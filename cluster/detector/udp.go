package detector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/sftkit/sft/resource"
)

// UDPConfig configures a detector over UDP.
type UDPConfig struct {
	// Detector configures the core; Paths is set from Listen.
	Detector Config
	// Listen has one local address per interconnect path; the index is the
	// path. Bind to interconnect addresses, not the service network. A
	// port of 0 picks a free port (see UDP.Addrs).
	Listen []netip.AddrPort
	// Key is the cluster's shared key (at least MinKeyLen bytes): every
	// datagram is signed with it and datagrams that don't verify are
	// dropped.
	Key []byte
	// Incarnation must grow across restarts of the node (default: the
	// start time in nanoseconds).
	Incarnation uint64
	// Now is the clock (default time.Now; it must be monotonic).
	Now func() time.Time
	// OnEvent receives the detector's events, in order, from the run
	// goroutine; it must not block for long (default: log them).
	OnEvent func(Event)
	// OnGap, if set, is called (from a reader goroutine, outside the
	// detector's lock) for every accepted heartbeat but a peer's first on
	// a path, with the time since the previous one accepted from that
	// peer on that path: the heartbeat gaps (metrics). It must be quick.
	OnGap func(peer string, path int, gap time.Duration)
	// Logger (default slog.Default()).
	Logger *slog.Logger
	// Drop, if set, drops outgoing datagrams for which it returns true: a
	// test's packet filter (cut a path, partition a node, one way or
	// both) over real sockets. Nil in production.
	Drop func(path int, to string) bool
}

// UDP runs a Detector over UDP sockets: a heartbeat round every Interval,
// a reader and a sender per path. Create it with ListenUDP, add peers, then
// Run.
//
// A send on one path never delays another path or the round: each path's
// sender takes the round's datagrams through a small queue, and a round
// that finds the queue full (the path's socket blocks, e.g. its link was
// pulled and its send buffer is full) drops that path's datagrams and
// counts them in Counts.Dropped, a loss like any other.
type UDP struct {
	cfg   UDPConfig
	conns []*net.UDPConn
	sendq []chan []dgram // per path, set by Run
	// write sends one datagram (a test seam; nil: the path's socket).
	write func(path int, c *net.UDPConn, b []byte, to netip.AddrPort) error

	mu     sync.Mutex
	d      *Detector
	peers  map[string][]netip.AddrPort
	counts Counts
}

// Counts are the datagram counters of a UDP detector. Dropped counts
// datagrams a round dropped because their path's send queue was full.
type Counts struct {
	Sent, SendErrors, Dropped, Received, Rejected uint64
}

// sendQueue is how many rounds of datagrams a path's sender may lag
// behind before a round drops that path's datagrams.
const sendQueue = 4

type dgram struct {
	to netip.AddrPort
	b  []byte
}

// ListenUDP binds one socket per path.
func ListenUDP(cfg UDPConfig) (*UDP, error) {
	if len(cfg.Listen) == 0 {
		return nil, resource.ConfigError("listen", "[]", "at least one interconnect address")
	}
	if len(cfg.Key) < MinKeyLen {
		return nil, resource.ConfigError("key", fmt.Sprintf("%d bytes", len(cfg.Key)), "shared key must have at least %d bytes", MinKeyLen)
	}
	cfg.Detector.Paths = len(cfg.Listen)
	if cfg.Incarnation == 0 {
		cfg.Incarnation = uint64(time.Now().UnixNano())
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.OnEvent == nil {
		log := cfg.Logger
		cfg.OnEvent = func(e Event) { log.Info("cluster detector", "event", e.Kind, "node", e.Node, "detail", e.Detail) }
	}
	d, err := New(cfg.Detector, cfg.Incarnation)
	if err != nil {
		return nil, err
	}
	u := &UDP{cfg: cfg, d: d, peers: map[string][]netip.AddrPort{}}
	for i, a := range cfg.Listen {
		c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(a))
		if err != nil {
			u.close()
			return nil, resource.ConfigError(fmt.Sprintf("listen[%d]", i), a.String(), "%v", err)
		}
		u.conns = append(u.conns, c)
	}
	return u, nil
}

// Addrs returns the bound address of each path.
func (u *UDP) Addrs() []netip.AddrPort {
	out := make([]netip.AddrPort, len(u.conns))
	for i, c := range u.conns {
		out[i] = c.LocalAddr().(*net.UDPAddr).AddrPort()
	}
	return out
}

// AddPeer starts watching a node at its addresses, one per path.
func (u *UDP) AddPeer(name string, addrs []netip.AddrPort) error {
	if len(addrs) != len(u.conns) {
		return resource.ConfigError("addrs", fmt.Sprint(addrs), "peer %s needs %d addresses, one per path", name, len(u.conns))
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if err := u.d.AddPeer(name, u.cfg.Now()); err != nil {
		return err
	}
	u.peers[name] = addrs
	return nil
}

// Known reports whether name is a peer.
func (u *UDP) Known(name string) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	_, ok := u.peers[name]
	return ok
}

// Peers lists the peers, sorted.
func (u *UDP) Peers() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.d.Peers()
}

// RemovePeer stops watching a node.
func (u *UDP) RemovePeer(name string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.d.RemovePeer(name)
	delete(u.peers, name)
}

// Lease reports until when this node's lease runs and whether it runs now.
func (u *UDP) Lease() (time.Time, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.d.Lease(u.cfg.Now())
}

// Dead lists the nodes declared dead at the last check.
func (u *UDP) Dead() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.d.Dead()
}

// DeadEvidence maps the nodes declared dead at the last check to their
// evidence (see Detector.DeadEvidence).
func (u *UDP) DeadEvidence() map[string]string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.d.DeadEvidence()
}

// HeardSince is when this node began to hear peer without a break (zero
// while silent).
func (u *UDP) HeardSince(peer string) time.Time {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.d.HeardSince(peer)
}

// Silent reports whether this node hears peer on no path.
func (u *UDP) Silent(peer string) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.d.Silent(peer)
}

// Counts returns the datagram counters.
func (u *UDP) Counts() Counts {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.counts
}

// Run sends and receives heartbeats until ctx ends, then closes the
// sockets and returns once its goroutines have stopped. Run once.
func (u *UDP) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	u.sendq = make([]chan []dgram, len(u.conns))
	for path, c := range u.conns {
		q := make(chan []dgram, sendQueue)
		u.sendq[path] = q
		wg.Go(func() { u.read(path, c) })
		wg.Go(func() { u.sender(path, c, q) })
	}
	t := time.NewTicker(u.d.cfg.Interval)
	defer func() {
		t.Stop()
		u.close() // unblocks a sender stuck in a write
		for _, q := range u.sendq {
			close(q)
		}
		wg.Wait()
	}()
	for {
		u.round()
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// round checks first (a node that was frozen learns its lease ran out
// before it sends anything), then sends this round's heartbeats and hands
// the events on.
func (u *UDP) round() {
	u.mu.Lock()
	now := u.cfg.Now()
	evs := u.d.Check(now)
	out := u.d.Tick(now)
	ds := make([][]dgram, len(u.conns))
	for _, o := range out {
		if u.cfg.Drop != nil && u.cfg.Drop(o.Path, o.Msg.To) {
			continue
		}
		b, err := Marshal(o.Msg, u.cfg.Key)
		if err != nil {
			u.counts.SendErrors++
			continue
		}
		ds[o.Path] = append(ds[o.Path], dgram{u.peers[o.Msg.To][o.Path], b})
	}
	u.mu.Unlock()
	for _, e := range evs {
		u.cfg.OnEvent(e)
	}
	var dropped uint64
	for path, b := range ds {
		if len(b) == 0 {
			continue
		}
		select {
		case u.sendq[path] <- b:
		default:
			dropped += uint64(len(b)) // the path's sender is stuck: lost
		}
	}
	if dropped > 0 {
		u.mu.Lock()
		u.counts.Dropped += dropped
		u.mu.Unlock()
	}
}

// sender writes one path's datagrams until its queue is closed.
func (u *UDP) sender(path int, c *net.UDPConn, q <-chan []dgram) {
	for ds := range q {
		var sent, failed uint64
		for _, d := range ds {
			var err error
			if u.write != nil {
				err = u.write(path, c, d.b, d.to)
			} else {
				_, err = c.WriteToUDPAddrPort(d.b, d.to)
			}
			if err != nil {
				failed++ // ENOBUFS, unreachable, closed: a lost datagram like any other
			} else {
				sent++
			}
		}
		u.mu.Lock()
		u.counts.Sent += sent
		u.counts.SendErrors += failed
		u.mu.Unlock()
	}
}

func (u *UDP) read(path int, c *net.UDPConn) {
	buf := make([]byte, 64<<10)
	for {
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			continue
		}
		hb, err := Unmarshal(buf[:n], u.cfg.Key)
		var prev, now time.Time
		u.mu.Lock()
		if err == nil {
			now = u.cfg.Now()
			prev = u.d.heardAt(hb.From, path)
			err = u.d.Receive(now, path, hb)
		}
		if err != nil {
			u.counts.Rejected++
		} else {
			u.counts.Received++
		}
		u.mu.Unlock()
		if err != nil {
			u.cfg.Logger.Debug("cluster detector: dropped datagram", "from", from, "path", path, "err", err)
		} else if u.cfg.OnGap != nil && !prev.IsZero() {
			u.cfg.OnGap(hb.From, path, now.Sub(prev))
		}
	}
}

func (u *UDP) close() {
	for _, c := range u.conns {
		_ = c.Close()
	}
}
