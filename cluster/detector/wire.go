package detector

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
)

// The datagram format (version 1), big-endian:
//
//	"sfhb" | version 1 | incarnation u64 | seq u64 | echo incarnation u64 |
//	echo u64 | from (u8 length, bytes) | to (u8 length, bytes) |
//	suspect count u8 | each suspect (u8 length, bytes) | HMAC-SHA256 of all
//	before it, truncated to 16 bytes
//
// The MAC (keyed with the cluster's shared key) keeps anyone without the key
// from forging a heartbeat or an echo; sequence numbers keep a recorded one
// from being replayed (Detector.Receive). Names are at most 255 bytes.
const (
	wireMagic   = "sfhb"
	wireVersion = 1
	macLen      = 16
	// MinKeyLen is the shortest shared key accepted.
	MinKeyLen = 16
)

// ErrBadDatagram wraps the reasons Unmarshal refuses a datagram.
var ErrBadDatagram = errors.New("bad heartbeat datagram")

// Marshal encodes hb and signs it with key.
func Marshal(hb Heartbeat, key []byte) ([]byte, error) {
	b := make([]byte, 0, 64+len(hb.From)+len(hb.To)+8*len(hb.Suspects))
	b = append(b, wireMagic...)
	b = append(b, wireVersion)
	for _, v := range []uint64{hb.Incarnation, hb.Seq, hb.EchoIncarnation, hb.Echo} {
		b = binary.BigEndian.AppendUint64(b, v)
	}
	if len(hb.Suspects) > 255 {
		return nil, fmt.Errorf("heartbeat: %d suspects (at most 255)", len(hb.Suspects))
	}
	var err error
	if b, err = appendName(b, hb.From); err != nil {
		return nil, err
	}
	if b, err = appendName(b, hb.To); err != nil {
		return nil, err
	}
	b = append(b, byte(len(hb.Suspects)))
	for _, s := range hb.Suspects {
		if b, err = appendName(b, s); err != nil {
			return nil, err
		}
	}
	return append(b, mac(b, key)...), nil
}

func appendName(b []byte, s string) ([]byte, error) {
	if len(s) > 255 {
		return nil, fmt.Errorf("heartbeat: name %.20q... is %d bytes (at most 255)", s, len(s))
	}
	return append(append(b, byte(len(s))), s...), nil
}

func mac(b, key []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(b)
	return m.Sum(nil)[:macLen]
}

// Unmarshal checks the MAC with key and decodes a datagram.
func Unmarshal(b, key []byte) (Heartbeat, error) {
	var hb Heartbeat
	if len(b) < len(wireMagic)+1+32+macLen || string(b[:4]) != wireMagic {
		return hb, fmt.Errorf("%w: not a heartbeat", ErrBadDatagram)
	}
	if b[4] != wireVersion {
		return hb, fmt.Errorf("%w: version %d (this node speaks %d)", ErrBadDatagram, b[4], wireVersion)
	}
	body, sum := b[:len(b)-macLen], b[len(b)-macLen:]
	if !hmac.Equal(sum, mac(body, key)) {
		return hb, fmt.Errorf("%w: wrong MAC (another cluster's key, or forged)", ErrBadDatagram)
	}
	r := reader{b: body[5:]}
	hb.Incarnation, hb.Seq, hb.EchoIncarnation, hb.Echo = r.u64(), r.u64(), r.u64(), r.u64()
	hb.From, hb.To = r.name(), r.name()
	for range r.byte() {
		hb.Suspects = append(hb.Suspects, r.name())
	}
	if r.short || len(r.b) != 0 {
		return Heartbeat{}, fmt.Errorf("%w: malformed body", ErrBadDatagram)
	}
	return hb, nil
}

// reader reads the body; short records a read past the end.
type reader struct {
	b     []byte
	short bool
}

func (r *reader) take(n int) []byte {
	if len(r.b) < n {
		r.short, r.b = true, nil
		return make([]byte, n)
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *reader) u64() uint64  { return binary.BigEndian.Uint64(r.take(8)) }
func (r *reader) byte() byte   { return r.take(1)[0] }
func (r *reader) name() string { return string(r.take(int(r.byte()))) }
