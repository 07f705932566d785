package peer

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

func serveTest(t *testing.T, key []byte, h Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := Serve(ln, key, h)
	t.Cleanup(func() { _ = s.Close() })
	return ln.Addr().String()
}

func TestWireRoundTrip(t *testing.T) {
	key := []byte("0123456789abcdef")
	var got Request
	addr := serveTest(t, key, func(_ context.Context, r Request) (bool, string) {
		got = r
		return true, "released"
	})
	rep, err := Call(context.Background(), addr, key, OpRelease, "web", "b", true)
	if err != nil || !rep.OK || rep.Reason != "released" {
		t.Fatalf("%+v %v", rep, err)
	}
	if got.Op != OpRelease || got.Group != "web" || got.From != "b" || !got.Admin {
		t.Fatalf("handler saw %+v", got)
	}
}

func TestWireWrongKeyGetsNoAnswer(t *testing.T) {
	var calls atomic.Int32
	addr := serveTest(t, []byte("0123456789abcdef"), func(context.Context, Request) (bool, string) {
		calls.Add(1)
		return true, ""
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := Call(ctx, addr, []byte("fedcba9876543210"), OpRelease, "web", "b", false); err == nil {
		t.Fatal("a wrong key got an answer")
	}
	if calls.Load() != 0 {
		t.Fatal("handler ran for an unauthenticated request")
	}
}

// A recorded request sent again on a new connection (with the new
// challenge ignored) is refused: the challenge is single-use.
func TestWireReplayRefused(t *testing.T) {
	key := []byte("0123456789abcdef")
	var calls atomic.Int32
	addr := serveTest(t, key, func(context.Context, Request) (bool, string) {
		calls.Add(1)
		return true, ""
	})
	// Record a genuine request.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bufio.NewReader(c))
	var ch challengeMsg
	if err := dec.Decode(&ch); err != nil {
		t.Fatal(err)
	}
	r := Request{Op: OpRelease, Group: "web", From: "b", Challenge: ch.Challenge, Nonce: nonce()}
	r.MAC = r.mac(key)
	if err := json.NewEncoder(c).Encode(r); err != nil {
		t.Fatal(err)
	}
	var rep Reply
	if err := dec.Decode(&rep); err != nil || !rep.OK {
		t.Fatalf("genuine request: %+v %v", rep, err)
	}
	c.Close()
	// Replay it.
	c, err = net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	dec = json.NewDecoder(bufio.NewReader(c))
	if err := dec.Decode(&ch); err != nil {
		t.Fatal(err)
	}
	if err := json.NewEncoder(c).Encode(r); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if err := dec.Decode(&rep); err == nil {
		t.Fatalf("replayed request answered: %+v", rep)
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("handler ran %d times, want 1", n)
	}
}

// A reply signed over another nonce (a recorded reply) is refused.
func TestWireForgedReplyRefused(t *testing.T) {
	key := []byte("0123456789abcdef")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_ = json.NewEncoder(c).Encode(challengeMsg{Challenge: nonce()})
		var r Request
		_ = json.NewDecoder(c).Decode(&r)
		rep := Reply{OK: true, Nonce: nonce()} // not the caller's nonce
		rep.MAC = rep.mac(key)
		_ = json.NewEncoder(c).Encode(rep)
	}()
	_, err = Call(context.Background(), ln.Addr().String(), key, OpRelease, "web", "b", false)
	if !errors.Is(err, ErrAuth) {
		t.Fatalf("err %v, want ErrAuth", err)
	}
}
