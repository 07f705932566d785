package cluster

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// The raft address carries two protocols: hashicorp/raft's (whose first
// byte is an RPC type, 0-3) and the cluster's own requests to the leader
// (first byte rpcMagic), so a node has one TCP port on the interconnect.
const rpcMagic = 0xC5

// RaftPath is the path index a link filter sees for raft's TCP traffic.
const raftPath = -1

// linkFilter cuts links between nodes in tests (export_test.go); nil in
// production. Blocked reports whether traffic from one node to another on
// a path (raftPath for raft TCP) is dropped.
type linkFilter interface {
	Blocked(from, to string, path int) bool
}

// mux is the raft StreamLayer over a TCP listener: it dials from the
// node's own interconnect address and hands connections that start with
// rpcMagic to the request server.
type mux struct {
	// loseReplies: so many more replies to calls are dropped after they
	// arrived (tests: a reply lost in the network).
	loseReplies atomic.Int32
	self        string
	ln          net.Listener
	local       netip.Addr // dial from here
	byAddr      map[netip.Addr]string
	filter      linkFilter
	serve       func(net.Conn)
	accept      chan net.Conn
	done        chan struct{}
	once        sync.Once
	wg          sync.WaitGroup

	mu    sync.Mutex
	conns map[*filteredConn]struct{}
}

func newMux(self string, ln net.Listener, byAddr map[netip.Addr]string, filter linkFilter, serve func(net.Conn)) *mux {
	m := &mux{self: self, ln: ln, byAddr: byAddr, filter: filter, serve: serve,
		accept: make(chan net.Conn), done: make(chan struct{}), conns: map[*filteredConn]struct{}{}}
	m.local = ln.Addr().(*net.TCPAddr).AddrPort().Addr()
	m.wg.Go(m.loop)
	return m
}

func (m *mux) loop() {
	for {
		c, err := m.ln.Accept()
		if err != nil {
			return
		}
		m.wg.Go(func() { m.route(c) })
	}
}

// route reads the first byte and sends the connection on.
func (m *mux) route(c net.Conn) {
	peer := m.byAddr[c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().Unmap()]
	fc := m.track(c, peer)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(fc)
	b, err := br.Peek(1)
	_ = c.SetReadDeadline(time.Time{})
	if err != nil {
		_ = fc.Close()
		return
	}
	bc := &bufConn{filteredConn: fc, r: br}
	if b[0] == rpcMagic {
		_, _ = br.ReadByte()
		m.serve(bc)
		_ = bc.Close()
		return
	}
	select {
	case m.accept <- bc:
	case <-m.done:
		_ = bc.Close()
	}
}

func (m *mux) Accept() (net.Conn, error) {
	select {
	case c := <-m.accept:
		return c, nil
	case <-m.done:
		return nil, net.ErrClosed
	}
}

func (m *mux) Close() error {
	m.once.Do(func() {
		close(m.done)
		_ = m.ln.Close()
		m.mu.Lock()
		for c := range m.conns {
			_ = c.Conn.Close()
		}
		m.mu.Unlock()
	})
	return nil
}

// wait waits for the accept loop and the request handlers (after Close).
func (m *mux) wait() { m.wg.Wait() }

func (m *mux) Addr() net.Addr { return m.ln.Addr() }

// Dial implements raft.StreamLayer.
func (m *mux) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return m.dial(string(address), timeout)
}

func (m *mux) dial(address string, timeout time.Duration) (net.Conn, error) {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return nil, err
	}
	peer := m.byAddr[ap.Addr().Unmap()]
	if m.blocked(peer) {
		return nil, fmt.Errorf("dial %s: link to %s cut", address, peer)
	}
	d := net.Dialer{Timeout: timeout, LocalAddr: &net.TCPAddr{IP: m.local.AsSlice()}}
	c, err := d.Dial("tcp", address)
	if err != nil {
		return nil, err
	}
	return m.track(c, peer), nil
}

func (m *mux) blocked(peer string) bool {
	return m.filter != nil && peer != "" && (m.filter.Blocked(m.self, peer, raftPath) || m.filter.Blocked(peer, m.self, raftPath))
}

func (m *mux) track(c net.Conn, peer string) *filteredConn {
	fc := &filteredConn{Conn: c, m: m, peer: peer}
	m.mu.Lock()
	m.conns[fc] = struct{}{}
	m.mu.Unlock()
	return fc
}

// refilter closes the connections the filter now cuts.
func (m *mux) refilter() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for c := range m.conns {
		if m.blocked(c.peer) {
			_ = c.Conn.Close()
		}
	}
}

// filteredConn is a connection to a known peer that fails once the
// filter cuts the link (tests); without a filter it is the plain conn.
type filteredConn struct {
	net.Conn
	m    *mux
	peer string
}

func (c *filteredConn) Read(b []byte) (int, error) {
	if c.m.blocked(c.peer) {
		_ = c.Conn.Close()
		return 0, net.ErrClosed
	}
	return c.Conn.Read(b)
}

func (c *filteredConn) Write(b []byte) (int, error) {
	if c.m.blocked(c.peer) {
		_ = c.Conn.Close()
		return 0, net.ErrClosed
	}
	return c.Conn.Write(b)
}

func (c *filteredConn) Close() error {
	c.m.mu.Lock()
	delete(c.m.conns, c)
	c.m.mu.Unlock()
	return c.Conn.Close()
}

type bufConn struct {
	*filteredConn
	r *bufio.Reader
}

func (c *bufConn) Read(b []byte) (int, error) {
	if c.m.blocked(c.peer) {
		_ = c.Conn.Close()
		return 0, net.ErrClosed
	}
	return c.r.Read(b)
}

// A request to the leader: a command (state.Encode), signed with the
// shared key; the reply carries the apply result.
type request struct {
	Entry []byte       `json:"entry,omitempty"`
	Voter *voterChange `json:"voter,omitempty"`
	// Barrier asks the leader for the index of its state after a raft
	// barrier (every entry committed before the request is in it).
	Barrier bool `json:"barrier,omitempty"`
}

type reply struct {
	Err      string `json:"err,omitempty"`
	NotLead  bool   `json:"not_leader,omitempty"`
	Epoch    uint64 `json:"epoch,omitempty"`
	Index    uint64 `json:"index,omitempty"`
	Rejected bool   `json:"rejected,omitempty"` // the state machine refused it
	Maybe    bool   `json:"maybe,omitempty"`    // NotLead, but the entry may still commit
}

// errNoReply: the request was sent but no reply came; it may have been
// applied.
var errNoReply = errors.New("cluster: no reply to a delivered request")

// maxFrame bounds a request or reply.
const maxFrame = 1 << 20

func writeFrame(w io.Writer, key []byte, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return err
	}
	h := hmac.New(sha256.New, key)
	h.Write(body)
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], uint32(len(body)))
	_, err = w.Write(append(append(hdr[:], h.Sum(nil)...), body...))
	return err
}

var errBadMAC = errors.New("cluster: request not signed with the cluster key")

func readFrame(r io.Reader, key []byte, v any) error {
	var hdr [4 + sha256.Size]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return err
	}
	n := binary.BigEndian.Uint32(hdr[:4])
	if n > maxFrame {
		return fmt.Errorf("cluster: frame of %d bytes is too large", n)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return err
	}
	h := hmac.New(sha256.New, key)
	h.Write(body)
	if !hmac.Equal(h.Sum(nil), hdr[4:]) {
		return errBadMAC
	}
	return json.Unmarshal(body, v)
}

// call sends one request to the node at address and reads the reply.
func (m *mux) call(ctx context.Context, address string, key []byte, req request) (reply, error) {
	timeout := 2 * time.Second
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < timeout {
		timeout = max(time.Until(dl), time.Millisecond)
	}
	c, err := m.dial(address, timeout)
	if err != nil {
		return reply{}, err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Now()) })
	defer stop()
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write([]byte{rpcMagic}); err != nil {
		return reply{}, err
	}
	if err := writeFrame(c, key, req); err != nil {
		return reply{}, err
	}
	var rep reply
	if err := readFrame(c, key, &rep); err != nil {
		return reply{}, fmt.Errorf("%w: %w", errNoReply, err)
	}
	if m.loseReplies.Load() > 0 && m.loseReplies.Add(-1) >= 0 {
		return reply{}, fmt.Errorf("%w: lost by the test", errNoReply)
	}
	return rep, nil
}
