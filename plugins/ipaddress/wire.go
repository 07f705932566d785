package ipaddress

import (
	"context"
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
type wire struct {
	conn *packet.Conn
	mac  net.HardwareAddr
	vip  netip.Addr
}

// dropAll is a BPF program that accepts nothing: the announcing socket only
// writes, so its receive queue must not fill up.
var dropAll = func() []bpf.RawInstruction {
	r, err := bpf.Assemble([]bpf.Instruction{bpf.RetConstant{Val: 0}})
	if err != nil {
		panic(err)
	}
	return r
}()

// openWire opens a raw packet socket for vip's protocol on l, inside the
// namespace at nsPath. receive=false installs a drop-all filter.
func openWire(nsPath string, l link, vip netip.Addr, receive bool) (*wire, error) {
	proto := int(ethernet.EtherTypeARP)
	if vip.Is6() {
		proto = int(etherTypeIP6)
	}
	var cfg *packet.Config
	if !receive {
		cfg = &packet.Config{Filter: dropAll}
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
	return &wire{conn: c, mac: l.MAC, vip: vip}, nil
}

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
	buf := make([]byte, 1600)
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
			return w.drain(buf, holding)
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
// reports a conflict among them.
func (w *wire) drain(buf []byte, holding bool) (net.HardwareAddr, error) {
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
