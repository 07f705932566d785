package ipaddress

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/packet"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/sftkit/sft/internal/netns"
)

// link is the interface an instance binds to.
type link struct {
	Name  string
	Index int
	MAC   net.HardwareAddr
}

// wire is a raw packet socket on the interface, opened inside the instance's
// network namespace. ARP and NDP go through raw Ethernet frames so that
// probing works before the interface has any address (arp.Dial needs one).
//
// An instance keeps one wire from its first Online to Close: closing a
// packet socket waits for an RCU grace period (7-20 ms measured here), which
// would otherwise sit on every takeover.
type wire struct {
	conn  *packet.Conn
	mac   net.HardwareAddr
	vip   netip.Addr
	index int
}

// Socket filters: each instance's socket receives only the frames that can
// concern its own address, so many instances on one busy interface do not
// each copy all of its ARP or IPv6 traffic.
const (
	bpfAccept = 0xffff
	ethHeader = 14
)

// withDrop assembles prog, whose JumpIf instructions with SkipFalse ==
// toDrop jump to a final "drop" instruction appended here.
const toDrop = 0xff

func withDrop(prog []bpf.Instruction) []bpf.RawInstruction {
	drop := len(prog)
	for i, ins := range prog {
		if j, ok := ins.(bpf.JumpIf); ok && j.SkipFalse == toDrop {
			j.SkipFalse = uint8(drop - i - 1)
			prog[i] = j
		}
	}
	prog = append(prog, bpf.RetConstant{Val: 0})
	r, err := bpf.Assemble(prog)
	if err != nil {
		panic(err)
	}
	return r
}

// arpFilter passes ARP frames whose sender or target IP is vip.
func arpFilter(vip netip.Addr) []bpf.RawInstruction {
	v := binary.BigEndian.Uint32(vip.AsSlice())
	return withDrop([]bpf.Instruction{
		bpf.LoadAbsolute{Off: ethHeader + 14, Size: 4}, // SPA
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: v, SkipTrue: 2},
		bpf.LoadAbsolute{Off: ethHeader + 24, Size: 4}, // TPA
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: v, SkipFalse: toDrop},
		bpf.RetConstant{Val: bpfAccept},
	})
}

// ndpFilter passes ICMPv6 neighbour solicitations and advertisements
// (without extension headers) whose target is vip.
func ndpFilter(vip netip.Addr) []bpf.RawInstruction {
	t := vip.As16()
	prog := []bpf.Instruction{
		bpf.LoadAbsolute{Off: ethHeader + 6, Size: 1}, // next header
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: protoICMPv6, SkipFalse: toDrop},
		bpf.LoadAbsolute{Off: ethHeader + ipv6HeaderLen, Size: 1},    // ICMPv6 type
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: 135, SkipTrue: 1},       // NS
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: 136, SkipFalse: toDrop}, // NA
	}
	for i := 0; i < 16; i += 4 { // target address, after type, code, checksum, flags
		prog = append(prog,
			bpf.LoadAbsolute{Off: uint32(ethHeader + ipv6HeaderLen + 8 + i), Size: 4},
			bpf.JumpIf{Cond: bpf.JumpEqual, Val: binary.BigEndian.Uint32(t[i : i+4]), SkipFalse: toDrop})
	}
	return withDrop(append(prog, bpf.RetConstant{Val: bpfAccept}))
}

// openWire opens a raw packet socket for vip's protocol on l, inside the
// namespace at nsPath, filtered to the frames about vip.
func openWire(nsPath string, l link, vip netip.Addr) (*wire, error) {
	proto, cfg := int(ethernet.EtherTypeARP), &packet.Config{Filter: arpFilter(vip)}
	if vip.Is6() {
		proto, cfg = int(etherTypeIP6), &packet.Config{Filter: ndpFilter(vip)}
	}
	ifi := &net.Interface{Index: l.Index, Name: l.Name, HardwareAddr: l.MAC}
	var c *packet.Conn
	err := netns.Do(nsPath, func() (err error) {
		c, err = packet.Listen(ifi, packet.Raw, proto, cfg)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("packet socket on %s: %w", l.Name, err)
	}
	return &wire{conn: c, mac: l.MAC, vip: vip, index: l.Index}, nil
}

// fits reports whether w is bound to interface l as it is now.
func (w *wire) fits(l link) bool { return w.index == l.Index && bytes.Equal(w.mac, l.MAC) }

func (w *wire) Close() error { return w.conn.Close() }

func (w *wire) send(frame []byte, dst net.HardwareAddr) error {
	_, err := w.conn.WriteTo(frame, &packet.Addr{HardwareAddr: dst})
	return err
}

// announce sends one gratuitous ARP (request form) or unsolicited neighbour
// advertisement for vip.
func (w *wire) announce() error {
	if w.vip.Is6() {
		f, err := ndpAnnounce(w.mac, w.vip)
		if err != nil {
			return err
		}
		return w.send(f, allNodesMAC)
	}
	f, err := arpAnnounce(w.mac, w.vip)
	if err != nil {
		return err
	}
	return w.send(f, ethernet.Broadcast)
}

func (w *wire) probeFrame() ([]byte, net.HardwareAddr, error) {
	if w.vip.Is6() {
		f, err := ndpProbe(w.mac, w.vip)
		if err != nil {
			return nil, nil, err
		}
		return f, f[:6], nil
	}
	f, err := arpProbe(w.mac, w.vip)
	return f, ethernet.Broadcast, err
}

func (w *wire) conflict(frame []byte, holding bool) (net.HardwareAddr, bool) {
	if w.vip.Is6() {
		return ndpConflict(frame, w.mac, w.vip, holding)
	}
	return arpConflict(frame, w.mac, w.vip, holding)
}

// probe sends count probes interval apart and listens until wait after the
// last one. It returns the MAC of a host that claims vip, or nil if none
// answered. holding says whether we hold vip ourselves (then another host's
// probe is not a conflict: our kernel defends the address). ctx ending stops
// it at once with an error wrapping ctx.Err().
func (w *wire) probe(ctx context.Context, count int, interval, wait time.Duration, holding bool) (net.HardwareAddr, error) {
	if count <= 0 {
		return nil, nil
	}
	frame, dst, err := w.probeFrame()
	if err != nil {
		return nil, err
	}
	buf := make([]byte, 1600)
	// Frames queued since the last probe are history, not answers.
	if _, err := w.drain(buf, holding, true); err != nil {
		return nil, err
	}
	// Wake a blocked read when ctx ends; mu orders it against the loop's
	// deadline updates so the wake-up cannot be overwritten.
	var mu sync.Mutex
	stop := context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		_ = w.conn.SetReadDeadline(time.Unix(1, 0))
	})
	defer stop()
	start := time.Now()
	end := start.Add(time.Duration(count-1)*interval + wait)
	sent := 0
	for {
		now := time.Now()
		for sent < count && !now.Before(start.Add(time.Duration(sent)*interval)) {
			if err := w.send(frame, dst); err != nil {
				return nil, fmt.Errorf("send probe: %w", err)
			}
			sent++
		}
		if sent == count && !now.Before(end) {
			// A late wake-up (a loaded machine) may find the deadline
			// passed with answers queued that arrived in time; Go's
			// poller would not even look at them. Drain what is there.
			return w.drain(buf, holding, false)
		}
		next := end
		if sent < count {
			next = start.Add(time.Duration(sent) * interval)
		}
		mu.Lock()
		if err := ctx.Err(); err != nil {
			mu.Unlock()
			return nil, err
		}
		err := w.conn.SetReadDeadline(next)
		mu.Unlock()
		if err != nil {
			return nil, err
		}
		n, _, err := w.conn.ReadFrom(buf)
		if err != nil {
			if cerr := ctx.Err(); cerr != nil {
				return nil, cerr
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				continue
			}
			return nil, fmt.Errorf("read: %w", err)
		}
		if mac, ok := w.conflict(buf[:n], holding); ok {
			return mac, nil
		}
	}
}

// drain reads the frames already queued on the socket without waiting and
// reports a conflict among them; discard drops them all unexamined.
func (w *wire) drain(buf []byte, holding, discard bool) (net.HardwareAddr, error) {
	rc, err := w.conn.SyscallConn()
	if err != nil {
		return nil, err
	}
	var mac net.HardwareAddr
	var rerr error
	err = rc.Control(func(fd uintptr) {
		for {
			n, _, err := unix.Recvfrom(int(fd), buf, unix.MSG_DONTWAIT)
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				if err != unix.EAGAIN {
					rerr = fmt.Errorf("read: %w", err)
				}
				return
			}
			if discard {
				continue
			}
			if m, ok := w.conflict(buf[:n], holding); ok {
				mac = m
				return
			}
		}
	})
	if err != nil {
		return nil, err
	}
	return mac, rerr
}
