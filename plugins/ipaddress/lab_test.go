package ipaddress

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"testing"

	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/sftkit/sft/internal/netns/netnstest"
	"github.com/sftkit/sft/internal/testenv"
	"github.com/sftkit/sft/resource"
)

// lab is two hosts that can own the virtual address and a client, on one
// bridge, all in namespaces the test creates.
type lab struct {
	a, b, client *netnstest.Host
	vip          netip.Prefix
	bogusMAC     net.HardwareAddr
}

func newLab(t testing.TB, v6 bool) *lab {
	t.Helper()
	testenv.RequireRoot(t)
	n := netnstest.NewNet(t)
	l := &lab{a: n.AddHost("a"), b: n.AddHost("b"), client: n.AddHost("c"),
		bogusMAC: net.HardwareAddr{0x02, 0xde, 0xad, 0xbe, 0xef, 0x01}}
	addrs := []string{"192.0.2.1/24", "192.0.2.2/24", "192.0.2.100/24"}
	l.vip = netip.MustParsePrefix("192.0.2.10/24")
	if v6 {
		addrs = []string{"2001:db8::1/64", "2001:db8::2/64", "2001:db8::100/64"}
		l.vip = netip.MustParsePrefix("2001:db8::10/64")
	}
	for i, h := range []*netnstest.Host{l.a, l.b, l.client} {
		if err := h.AddAddr(addrs[i]); err != nil {
			t.Fatalf("address on %s: %v", h.Name, err)
		}
	}
	return l
}

// props are the properties for an instance of the lab's address on host h.
func (l *lab) props(h *netnstest.Host, extra resource.Properties) resource.Properties {
	p := resource.Properties{"address": l.vip.String(), "netns": h.Path}
	for k, v := range extra {
		p[k] = v
	}
	return p
}

// open opens an instance on h; Terminate and Close run at cleanup.
func (l *lab) open(t testing.TB, h *netnstest.Host, extra resource.Properties) *instance {
	t.Helper()
	r, err := NewType().Open(context.Background(), resource.OpenRequest{Name: "vip-" + h.Name, Properties: l.props(h, extra)})
	if err != nil {
		t.Fatalf("Open on %s: %v", h.Name, err)
	}
	t.Cleanup(func() {
		if err := r.Terminate(context.Background()); err != nil {
			t.Errorf("Terminate: %v", err)
		}
		if err := r.(resource.Closer).Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return r.(*instance)
}

// has reports whether h holds the lab's address on eth0 (a netlink dump,
// independent of the resource's own view).
func (l *lab) has(t testing.TB, h *netnstest.Host) bool {
	t.Helper()
	lk, err := h.Handle.LinkByName(h.Link)
	if err != nil {
		t.Fatal(err)
	}
	as, err := h.Handle.AddrList(lk, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range as {
		if prefixOf(a.IPNet) == l.vip {
			return true
		}
	}
	return false
}

func (l *lab) delAddr(t testing.TB, h *netnstest.Host) {
	t.Helper()
	p := l.vip
	a := &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}}
	if err := h.Handle.AddrDel(&netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Index: h.Index}}, a); err != nil {
		t.Fatalf("external AddrDel on %s: %v", h.Name, err)
	}
}

// neighWatch follows the client's neighbour entries through a netlink
// subscription in the client's namespace.
type neighWatch struct {
	ch   chan netlink.NeighUpdate
	done chan struct{}
	h    *netnstest.Host
	ip   netip.Addr
}

func watchNeigh(t testing.TB, h *netnstest.Host, ip netip.Addr) *neighWatch {
	t.Helper()
	ns, err := vnetns.GetFromPath(h.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	w := &neighWatch{ch: make(chan netlink.NeighUpdate, 256), done: make(chan struct{}), h: h, ip: ip}
	if err := netlink.NeighSubscribeWithOptions(w.ch, w.done, netlink.NeighSubscribeOptions{Namespace: &ns}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		close(w.done)
		for range w.ch {
		}
	})
	return w
}

// wait returns once the client's entry for the address has mac, or fails
// the test when ctx ends.
func (w *neighWatch) wait(t testing.TB, ctx context.Context, mac net.HardwareAddr) {
	t.Helper()
	if got, _, ok, err := w.h.Neigh(w.ip); err == nil && ok && bytes.Equal(got, mac) {
		return
	}
	for {
		select {
		case u, ok := <-w.ch:
			if !ok {
				t.Fatal("neighbour subscription ended")
			}
			if a, ok2 := netip.AddrFromSlice(u.IP); ok2 && a.Unmap() == w.ip && u.Type == unix.RTM_NEWNEIGH && bytes.Equal(u.HardwareAddr, mac) {
				return
			}
		case <-ctx.Done():
			got, st, ok, err := w.h.Neigh(w.ip)
			t.Fatalf("client's neighbour entry for %s never showed %s: now %v state %#x present %v err %v", w.ip, mac, got, st, ok, err)
		}
	}
}

// drain drops queued neighbour events.
func (w *neighWatch) drain() {
	for {
		select {
		case <-w.ch:
		default:
			return
		}
	}
}

func mustIPNet(s string) *net.IPNet {
	p := netip.MustParsePrefix(s)
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}
