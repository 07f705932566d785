package netnstest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/sftkit/sft/internal/netns"
	"time"

	"github.com/mdlayher/packet"
	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// bindDir is where named namespaces live (as with `ip netns add`).
const bindDir = "/run/netns"

// NS is one named network namespace created by the harness.
type NS struct {
	// Name is the namespace's name, as `ip netns list` shows it.
	Name string
	// Path is its bind mount, usable as the ipaddress "netns" property.
	Path string
	// Handle is a netlink handle bound to the namespace.
	Handle *netlink.Handle
}

// Do runs fn inside the namespace (see the package function Do).
func (ns *NS) Do(fn func() error) error { return netns.Do(ns.Path, fn) }

// Sysctl writes value to /proc/sys/<key> inside the namespace; key uses
// slashes ("net/ipv4/conf/eth0/arp_accept").
func (ns *NS) Sysctl(key, value string) error {
	return ns.Do(func() error {
		return os.WriteFile(filepath.Join("/proc/sys", key), []byte(value), 0o644)
	})
}

// Net is a test network: a switch namespace with bridge br0, and hosts
// attached to it.
type Net struct {
	// Prefix starts the name of every namespace of this Net ("sft-1a2b3c").
	Prefix string
	// Switch holds the bridge "br0" and one port per host.
	Switch *NS
	t      testing.TB
}

// Host is a namespace attached to the Net's bridge through interface eth0.
type Host struct {
	NS
	// Link is the host's interface name ("eth0").
	Link string
	// Index is its interface index inside the host namespace.
	Index int
	// MAC is its hardware address.
	MAC net.HardwareAddr
	// Port is the name of the bridge port in the switch namespace.
	Port string
	net  *Net
}

// NewNet creates the switch namespace and its bridge. Everything is removed in
// t.Cleanup. Callers must be root (see internal/testenv.RequireRoot).
func NewNet(t testing.TB) *Net {
	t.Helper()
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	n := &Net{Prefix: "sft-" + hex.EncodeToString(b[:]), t: t}
	n.Switch = n.newNS("sw")
	h := n.Switch.Handle
	off := false
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "br0"}, MulticastSnooping: &off}
	if err := h.LinkAdd(br); err != nil {
		t.Fatalf("netns: add bridge in %s: %v", n.Switch.Name, err)
	}
	if err := h.LinkSetUp(br); err != nil {
		t.Fatalf("netns: bridge up: %v", err)
	}
	return n
}

// newNS creates a named namespace with lo up and registers its removal.
func (n *Net) newNS(role string) *NS {
	t := n.t
	t.Helper()
	name := n.Prefix + "-" + role
	h, err := createNamed(name)
	if err != nil {
		t.Fatalf("netns: create %s: %v", name, err)
	}
	ns := &NS{Name: name, Path: filepath.Join(bindDir, name)}
	t.Cleanup(func() {
		if ns.Handle != nil {
			ns.Handle.Close()
		}
		h.Close()
		if err := vnetns.DeleteNamed(name); err != nil {
			t.Errorf("netns: delete %s: %v", name, err)
		}
	})
	ns.Handle, err = netlink.NewHandleAt(h)
	if err != nil {
		t.Fatalf("netns: netlink handle in %s: %v", name, err)
	}
	lo, err := ns.Handle.LinkByName("lo")
	if err == nil {
		err = ns.Handle.LinkSetUp(lo)
	}
	if err != nil {
		t.Fatalf("netns: lo up in %s: %v", name, err)
	}
	return ns
}

// createNamed creates a named namespace (bind-mounted under /run/netns) from
// a throw-away locked thread, leaving the caller's namespace untouched.
func createNamed(name string) (vnetns.NsHandle, error) {
	type result struct {
		h   vnetns.NsHandle
		err error
	}
	c := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := vnetns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			c <- result{err: err}
			return
		}
		defer orig.Close()
		h, err := vnetns.NewNamed(name)
		if rerr := vnetns.Set(orig); rerr != nil {
			// Leave the thread locked: it is discarded on exit.
			c <- result{h: h, err: errors.Join(err, rerr)}
			return
		}
		runtime.UnlockOSThread()
		c <- result{h: h, err: err}
	}()
	r := <-c
	if r.err != nil && r.h.IsOpen() {
		r.h.Close()
		_ = vnetns.DeleteNamed(name)
	}
	return r.h, r.err
}

// AddHost creates a host namespace named <prefix>-<name> whose eth0 is
// plugged into the bridge. name must be short (the bridge port is "p-"+name,
// at most 15 characters).
func (n *Net) AddHost(name string) *Host {
	t := n.t
	t.Helper()
	port := "p-" + name
	if len(port) > 15 || strings.ContainsAny(name, "/ ") {
		t.Fatalf("netns: host name %q too long or invalid", name)
	}
	ns := n.newNS(name)
	hostNS, err := vnetns.GetFromPath(ns.Path)
	if err != nil {
		t.Fatalf("netns: %v", err)
	}
	defer hostNS.Close()
	sw := n.Switch.Handle
	br, err := sw.LinkByName("br0")
	if err != nil {
		t.Fatalf("netns: bridge: %v", err)
	}
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: port, MasterIndex: br.Attrs().Index},
		PeerName:      "eth0",
		PeerNamespace: netlink.NsFd(int(hostNS)),
	}
	// Created in the switch namespace, peer born in the host namespace:
	// nothing ever appears in the caller's namespace.
	if err := sw.LinkAdd(veth); err != nil {
		t.Fatalf("netns: veth %s<->%s/eth0: %v", port, ns.Name, err)
	}
	pl, err := sw.LinkByName(port)
	if err == nil {
		err = sw.LinkSetUp(pl)
	}
	if err != nil {
		t.Fatalf("netns: port %s up: %v", port, err)
	}
	eth, err := ns.Handle.LinkByName("eth0")
	if err == nil {
		err = ns.Handle.LinkSetUp(eth)
	}
	if err != nil {
		t.Fatalf("netns: eth0 up in %s: %v", ns.Name, err)
	}
	h := &Host{NS: *ns, Link: "eth0", Index: eth.Attrs().Index, MAC: eth.Attrs().HardwareAddr, Port: port, net: n}
	if err := n.waitForwarding(h); err != nil {
		t.Fatalf("netns: %v", err)
	}
	return h
}

// readyEtherType is an ethertype for local experiments (IEEE 802 local
// experimental 1), used for the readiness frames.
const readyEtherType = 0x88b5

// waitForwarding returns once a broadcast frame from h's eth0 reaches the
// bridge. Carrier and the bridge port's forwarding state come up
// asynchronously (linkwatch runs up to a second later); frames sent before
// are dropped, which would make early test traffic vanish.
func (n *Net) waitForwarding(h *Host) error {
	br, err := n.Switch.Handle.LinkByName("br0")
	if err != nil {
		return err
	}
	var rx, tx *packet.Conn
	if err := n.Switch.Do(func() (err error) {
		rx, err = packet.Listen(&net.Interface{Index: br.Attrs().Index, Name: "br0", HardwareAddr: br.Attrs().HardwareAddr}, packet.Raw, readyEtherType, nil)
		return err
	}); err != nil {
		return fmt.Errorf("readiness listener on br0: %w", err)
	}
	defer rx.Close()
	if err := h.Do(func() (err error) {
		tx, err = packet.Listen(&net.Interface{Index: h.Index, Name: h.Link, HardwareAddr: h.MAC}, packet.Raw, readyEtherType, nil)
		return err
	}); err != nil {
		return fmt.Errorf("readiness sender on %s: %w", h.Name, err)
	}
	defer tx.Close()
	bcast := net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	frame := make([]byte, 60)
	copy(frame[0:6], bcast)
	copy(frame[6:12], h.MAC)
	frame[12], frame[13] = readyEtherType>>8, readyEtherType&0xff
	buf := make([]byte, 1600)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := tx.WriteTo(frame, &packet.Addr{HardwareAddr: bcast}); err != nil {
			return fmt.Errorf("readiness frame from %s: %w", h.Name, err)
		}
		_ = rx.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		for {
			k, _, err := rx.ReadFrom(buf)
			if err != nil {
				break // timeout: send again
			}
			if k >= 14 && bytes.Equal(buf[6:12], h.MAC) {
				return nil
			}
		}
	}
	return fmt.Errorf("%s: no frame reached the bridge within 10s", h.Name)
}

// AddAddr adds cidr ("10.0.0.1/24", "fd00::1/64") to the host's eth0. IPv6
// addresses are added without duplicate address detection, so they are
// usable at once; AddAddr still waits until the host has joined the
// address's solicited-node group (see WaitIPv6Group), so that it answers
// other nodes' duplicate address probes when AddAddr returns.
func (h *Host) AddAddr(cidr string) error {
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		return err
	}
	a := &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}}
	if p.Addr().Is6() {
		a.Flags = unix.IFA_F_NODAD
	}
	if err := h.Handle.AddrReplace(&netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Index: h.Index}}, a); err != nil {
		return err
	}
	if !p.Addr().Is6() {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return netns.WaitIPv6Group(ctx, h.Path, h.Link, netns.SolicitedNode(p.Addr()))
}

// SetPortUp sets the host's bridge port up or down: down makes the host see
// NO-CARRIER on eth0, as if its cable were pulled.
func (h *Host) SetPortUp(up bool) error {
	sw := h.net.Switch.Handle
	l, err := sw.LinkByName(h.Port)
	if err != nil {
		return err
	}
	if up {
		return sw.LinkSetUp(l)
	}
	return sw.LinkSetDown(l)
}

// Neigh returns the host's neighbour entry for ip on eth0: its MAC and NUD
// state; ok is false when there is none.
func (h *Host) Neigh(ip netip.Addr) (mac net.HardwareAddr, state int, ok bool, err error) {
	fam := netlink.FAMILY_V4
	if ip.Is6() {
		fam = netlink.FAMILY_V6
	}
	ns, err := h.Handle.NeighList(h.Index, fam)
	if err != nil {
		return nil, 0, false, err
	}
	for _, n := range ns {
		if a, ok := netip.AddrFromSlice(n.IP); ok && a.Unmap() == ip {
			return n.HardwareAddr, n.State, true, nil
		}
	}
	return nil, 0, false, nil
}

// SetNeigh installs a neighbour entry for ip on eth0 with the given MAC in
// state STALE: a cache entry the host once learnt, which a gratuitous ARP
// or an unsolicited neighbour advertisement may update.
func (h *Host) SetNeigh(ip netip.Addr, mac net.HardwareAddr) error {
	fam := netlink.FAMILY_V4
	if ip.Is6() {
		fam = netlink.FAMILY_V6
	}
	return h.Handle.NeighSet(&netlink.Neigh{
		LinkIndex: h.Index, Family: fam, State: netlink.NUD_STALE,
		IP: ip.AsSlice(), HardwareAddr: mac,
	})
}

// String names the host for messages.
func (h *Host) String() string { return fmt.Sprintf("%s(%s)", h.Name, h.MAC) }
