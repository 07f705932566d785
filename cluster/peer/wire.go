package peer

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"
)

// The interconnect protocol: one TCP connection per request, on the
// nodes' own addresses. The server sends a fresh random challenge; the
// client's request carries it and its own nonce, signed with HMAC-SHA256
// over the shared key; the reply is signed over the client's nonce. A
// recorded request cannot be replayed (its challenge is never issued
// again) and a recorded reply cannot answer another request.

// Ops of the interconnect.
const (
	// OpRelease asks the holder to take a group offline so the caller can
	// take it. Without Admin the holder agrees only if the group's
	// functional check fails locally too.
	OpRelease = "release"
	// OpTake asks the receiver to bring a group online (Move to it).
	OpTake = "take"
	// OpStatus asks whether the receiver's node runtime is up.
	OpStatus = "status"
)

// ErrAuth: a message's MAC or challenge did not verify.
var ErrAuth = errors.New("peer: interconnect authentication failed")

const wireTimeout = 5 * time.Second

type challengeMsg struct {
	Challenge []byte `json:"challenge"`
}

// Request is an interconnect request.
type Request struct {
	Op        string `json:"op"`
	Group     string `json:"group,omitempty"`
	Admin     bool   `json:"admin,omitempty"`
	From      string `json:"from"`
	Challenge []byte `json:"challenge"`
	Nonce     []byte `json:"nonce"`
	MAC       []byte `json:"mac"`
}

// Reply answers a Request.
type Reply struct {
	OK     bool   `json:"ok"`
	Reason string `json:"reason,omitempty"`
	Nonce  []byte `json:"nonce"`
	MAC    []byte `json:"mac"`
}

func sum(key []byte, parts ...string) []byte {
	h := hmac.New(sha256.New, key)
	for _, p := range parts {
		h.Write([]byte(strconv.Itoa(len(p))))
		h.Write([]byte{':'})
		h.Write([]byte(p))
	}
	return h.Sum(nil)
}

func (r *Request) mac(key []byte) []byte {
	return sum(key, "sft-peer-req", r.Op, r.Group, strconv.FormatBool(r.Admin), r.From, string(r.Challenge), string(r.Nonce))
}

func (r *Reply) mac(key []byte) []byte {
	return sum(key, "sft-peer-rep", strconv.FormatBool(r.OK), r.Reason, string(r.Nonce))
}

func nonce() []byte {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return b
}

// Handler answers a verified request.
type Handler func(ctx context.Context, r Request) (ok bool, reason string)

// Server serves the interconnect.
type Server struct {
	ln   net.Listener
	key  []byte
	h    Handler
	wg   sync.WaitGroup
	ctx  context.Context
	stop context.CancelFunc
	mu   sync.Mutex
	conn map[net.Conn]bool
}

// Serve starts serving ln with handler h until Close.
func Serve(ln net.Listener, key []byte, h Handler) *Server {
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{ln: ln, key: key, h: h, ctx: ctx, stop: cancel, conn: map[net.Conn]bool{}}
	s.wg.Add(1)
	go s.accept()
	return s
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.ctx.Err() != nil {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conn[c] = true
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			defer func() {
				s.mu.Lock()
				delete(s.conn, c)
				s.mu.Unlock()
				c.Close()
			}()
			_ = s.serve(c)
		}()
	}
}

func (s *Server) serve(c net.Conn) error {
	_ = c.SetDeadline(time.Now().Add(wireTimeout))
	ch := nonce()
	enc, dec := json.NewEncoder(c), json.NewDecoder(bufio.NewReader(c))
	if err := enc.Encode(challengeMsg{Challenge: ch}); err != nil {
		return err
	}
	var r Request
	if err := dec.Decode(&r); err != nil {
		return err
	}
	if !hmac.Equal(r.Challenge, ch) || !hmac.Equal(r.MAC, r.mac(s.key)) || len(r.Nonce) < 16 {
		return ErrAuth // no answer: an unauthenticated caller learns nothing
	}
	_ = c.SetDeadline(time.Time{})
	ok, reason := s.h(s.ctx, r)
	_ = c.SetDeadline(time.Now().Add(wireTimeout))
	rep := Reply{OK: ok, Reason: reason, Nonce: r.Nonce}
	rep.MAC = rep.mac(s.key)
	return enc.Encode(rep)
}

// Close stops accepting, cancels running handlers' ctx, closes open
// connections and waits for every goroutine.
func (s *Server) Close() error {
	s.mu.Lock()
	s.stop()
	err := s.ln.Close()
	for c := range s.conn {
		_ = c.SetDeadline(time.Now())
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

// Call sends one authenticated request to addr and returns the verified
// reply.
func Call(ctx context.Context, addr string, key []byte, op, group, from string, admin bool) (Reply, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return Reply{}, err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Now()) })
	defer stop()
	enc, dec := json.NewEncoder(c), json.NewDecoder(bufio.NewReader(c))
	var ch challengeMsg
	if err := dec.Decode(&ch); err != nil {
		return Reply{}, fmt.Errorf("peer: %s: reading challenge: %w", addr, err)
	}
	r := Request{Op: op, Group: group, Admin: admin, From: from, Challenge: ch.Challenge, Nonce: nonce()}
	r.MAC = r.mac(key)
	if err := enc.Encode(r); err != nil {
		return Reply{}, err
	}
	var rep Reply
	if err := dec.Decode(&rep); err != nil {
		return Reply{}, fmt.Errorf("peer: %s: no reply to %s %s (wrong key?): %w", addr, op, group, err)
	}
	if !hmac.Equal(rep.Nonce, r.Nonce) || !hmac.Equal(rep.MAC, rep.mac(key)) {
		return Reply{}, fmt.Errorf("peer: %s: reply: %w", addr, ErrAuth)
	}
	return rep, nil
}
