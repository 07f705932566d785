package ipaddress

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"slices"
	"testing"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/ndp"
	"golang.org/x/net/bpf"
)

var (
	ourMAC   = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x01}
	otherMAC = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x02}
	vip4     = netip.MustParseAddr("192.0.2.10")
	vip6     = netip.MustParseAddr("2001:db8::10")
)

func parseARP(t *testing.T, b []byte) (*ethernet.Frame, *arp.Packet) {
	t.Helper()
	var f ethernet.Frame
	if err := f.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	var p arp.Packet
	if err := p.UnmarshalBinary(f.Payload); err != nil {
		t.Fatal(err)
	}
	return &f, &p
}

func TestARPAnnounceIsRequestForm(t *testing.T) {
	b, err := arpAnnounce(ourMAC, vip4)
	if err != nil {
		t.Fatal(err)
	}
	f, p := parseARP(t, b)
	if !bytes.Equal(f.Destination, ethernet.Broadcast) || !bytes.Equal(f.Source, ourMAC) || f.EtherType != ethernet.EtherTypeARP {
		t.Fatalf("ethernet header: dst %v src %v type %v", f.Destination, f.Source, f.EtherType)
	}
	if p.Operation != arp.OperationRequest {
		t.Errorf("op = %v, want request", p.Operation)
	}
	if p.SenderIP != vip4 || p.TargetIP != vip4 {
		t.Errorf("SPA %v TPA %v, want both %v", p.SenderIP, p.TargetIP, vip4)
	}
	if !bytes.Equal(p.SenderHardwareAddr, ourMAC) || !bytes.Equal(p.TargetHardwareAddr, zeroMAC) {
		t.Errorf("SHA %v THA %v, want %v and zero", p.SenderHardwareAddr, p.TargetHardwareAddr, ourMAC)
	}
}

func TestARPProbeHasUnspecifiedSender(t *testing.T) {
	b, err := arpProbe(ourMAC, vip4)
	if err != nil {
		t.Fatal(err)
	}
	f, p := parseARP(t, b)
	if !bytes.Equal(f.Destination, ethernet.Broadcast) {
		t.Errorf("dst %v, want broadcast", f.Destination)
	}
	if p.Operation != arp.OperationRequest || !p.SenderIP.IsUnspecified() || p.TargetIP != vip4 ||
		!bytes.Equal(p.SenderHardwareAddr, ourMAC) || !bytes.Equal(p.TargetHardwareAddr, zeroMAC) {
		t.Errorf("probe = %+v", p)
	}
}

func arpBytes(t *testing.T, op arp.Operation, sha net.HardwareAddr, spa, tpa netip.Addr) []byte {
	t.Helper()
	p, err := arp.NewPacket(op, sha, spa, ourMAC, tpa)
	if err != nil {
		t.Fatal(err)
	}
	pb, _ := p.MarshalBinary()
	fb, _ := (&ethernet.Frame{Destination: ourMAC, Source: sha, EtherType: ethernet.EtherTypeARP, Payload: pb}).MarshalBinary()
	return fb
}

func TestARPConflict(t *testing.T) {
	unspec := netip.IPv4Unspecified()
	other := netip.MustParseAddr("192.0.2.99")
	ours, _ := arpAnnounce(ourMAC, vip4)
	tests := []struct {
		name    string
		frame   []byte
		holding bool
		want    bool
	}{
		{"reply from holder", arpBytes(t, arp.OperationReply, otherMAC, vip4, unspec), false, true},
		{"reply from holder while holding", arpBytes(t, arp.OperationReply, otherMAC, vip4, unspec), true, true},
		{"gratuitous ARP from other", arpBytes(t, arp.OperationRequest, otherMAC, vip4, vip4), false, true},
		{"simultaneous probe", arpBytes(t, arp.OperationRequest, otherMAC, unspec, vip4), false, true},
		{"other's probe while holding", arpBytes(t, arp.OperationRequest, otherMAC, unspec, vip4), true, false},
		{"our own announcement", ours, false, false},
		{"unrelated sender", arpBytes(t, arp.OperationReply, otherMAC, other, vip4), false, false},
		{"request for vip from a host using it", arpBytes(t, arp.OperationRequest, otherMAC, other, vip4), false, false},
		{"garbage", []byte{1, 2, 3}, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mac, got := arpConflict(tt.frame, ourMAC, vip4, tt.holding)
			if got != tt.want {
				t.Fatalf("conflict = %v, want %v", got, tt.want)
			}
			if got && !bytes.Equal(mac, otherMAC) {
				t.Fatalf("mac = %v, want %v", mac, otherMAC)
			}
		})
	}
}

// icmp6Checksum verifies an ICMPv6 checksum over the pseudo-header.
func icmp6ChecksumOK(src, dst netip.Addr, icmp []byte) bool {
	var sum uint32
	add := func(b []byte) {
		for i := 0; i+1 < len(b); i += 2 {
			sum += uint32(binary.BigEndian.Uint16(b[i:]))
		}
		if len(b)%2 == 1 {
			sum += uint32(b[len(b)-1]) << 8
		}
	}
	s, d := src.As16(), dst.As16()
	add(s[:])
	add(d[:])
	var l [8]byte
	binary.BigEndian.PutUint32(l[:4], uint32(len(icmp)))
	l[7] = protoICMPv6
	add(l[:])
	add(icmp)
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return uint16(sum) == 0xffff
}

func checkIPv6(t *testing.T, b []byte, dstMAC net.HardwareAddr, src, dst netip.Addr) ndp.Message {
	t.Helper()
	var f ethernet.Frame
	if err := f.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(f.Destination, dstMAC) || !bytes.Equal(f.Source, ourMAC) || f.EtherType != etherTypeIP6 {
		t.Fatalf("ethernet: dst %v src %v type %v", f.Destination, f.Source, f.EtherType)
	}
	p := f.Payload
	if p[0]>>4 != 6 || p[6] != 58 || p[7] != 255 {
		t.Fatalf("IPv6 header: version %d next %d hop limit %d", p[0]>>4, p[6], p[7])
	}
	plen := int(binary.BigEndian.Uint16(p[4:6]))
	if 40+plen != len(p) {
		t.Fatalf("payload length %d, frame carries %d", plen, len(p)-40)
	}
	if got := netip.AddrFrom16([16]byte(p[8:24])); got != src {
		t.Errorf("src %v, want %v", got, src)
	}
	if got := netip.AddrFrom16([16]byte(p[24:40])); got != dst {
		t.Errorf("dst %v, want %v", got, dst)
	}
	if !icmp6ChecksumOK(src, dst, p[40:]) {
		t.Error("bad ICMPv6 checksum")
	}
	m, err := ndp.ParseMessage(p[40:])
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestNDPProbeIsDAD(t *testing.T) {
	b, err := ndpProbe(ourMAC, vip6)
	if err != nil {
		t.Fatal(err)
	}
	snm := netip.MustParseAddr("ff02::1:ff00:10")
	m := checkIPv6(t, b, net.HardwareAddr{0x33, 0x33, 0xff, 0, 0, 0x10}, netip.IPv6Unspecified(), snm)
	ns, ok := m.(*ndp.NeighborSolicitation)
	if !ok {
		t.Fatalf("message %T, want neighbour solicitation", m)
	}
	if ns.TargetAddress != vip6 || len(ns.Options) != 0 {
		t.Errorf("NS target %v options %v, want %v and none (RFC 4862: no SLLA from ::)", ns.TargetAddress, ns.Options, vip6)
	}
}

func TestNDPAnnounceOverrides(t *testing.T) {
	b, err := ndpAnnounce(ourMAC, vip6)
	if err != nil {
		t.Fatal(err)
	}
	m := checkIPv6(t, b, allNodesMAC, vip6, allNodes)
	na, ok := m.(*ndp.NeighborAdvertisement)
	if !ok {
		t.Fatalf("message %T, want neighbour advertisement", m)
	}
	if !na.Override || na.Solicited || na.Router || na.TargetAddress != vip6 {
		t.Errorf("NA = %+v, want Override, unsolicited, target %v", na, vip6)
	}
	if len(na.Options) != 1 {
		t.Fatalf("options %v, want target link-layer address", na.Options)
	}
	lla, ok := na.Options[0].(*ndp.LinkLayerAddress)
	if !ok || lla.Direction != ndp.Target || !bytes.Equal(lla.Addr, ourMAC) {
		t.Errorf("option %+v, want target LLA %v", na.Options[0], ourMAC)
	}
}

func ndpBytes(t *testing.T, from net.HardwareAddr, src netip.Addr, m ndp.Message) []byte {
	t.Helper()
	b, err := ipv6Frame(from, allNodesMAC, src, allNodes, m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestNDPConflict(t *testing.T) {
	otherIP := netip.MustParseAddr("2001:db8::99")
	ours, _ := ndpAnnounce(ourMAC, vip6)
	tests := []struct {
		name    string
		frame   []byte
		holding bool
		want    bool
	}{
		{"NA from holder", ndpBytes(t, otherMAC, vip6, &ndp.NeighborAdvertisement{Override: true, TargetAddress: vip6}), false, true},
		{"NA from holder while holding", ndpBytes(t, otherMAC, vip6, &ndp.NeighborAdvertisement{TargetAddress: vip6}), true, true},
		{"simultaneous DAD", ndpBytes(t, otherMAC, netip.IPv6Unspecified(), &ndp.NeighborSolicitation{TargetAddress: vip6}), false, true},
		{"other's DAD while holding", ndpBytes(t, otherMAC, netip.IPv6Unspecified(), &ndp.NeighborSolicitation{TargetAddress: vip6}), true, false},
		{"ordinary NS for vip", ndpBytes(t, otherMAC, otherIP, &ndp.NeighborSolicitation{TargetAddress: vip6}), false, false},
		{"NA for another address", ndpBytes(t, otherMAC, otherIP, &ndp.NeighborAdvertisement{TargetAddress: otherIP}), false, false},
		{"our own NA", ours, false, false},
		{"garbage", []byte{0xff}, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mac, got := ndpConflict(tt.frame, ourMAC, vip6, tt.holding)
			if got != tt.want {
				t.Fatalf("conflict = %v, want %v", got, tt.want)
			}
			if got && !bytes.Equal(mac, otherMAC) {
				t.Fatalf("mac = %v, want %v", mac, otherMAC)
			}
		})
	}
}

func runFilter(t *testing.T, raw []bpf.RawInstruction) *bpf.VM {
	t.Helper()
	prog, ok := bpf.Disassemble(raw)
	if !ok {
		t.Fatalf("filter does not disassemble: %v", prog)
	}
	vm, err := bpf.NewVM(prog)
	if err != nil {
		t.Fatal(err)
	}
	return vm
}

// TestSocketFilters runs the sockets' BPF programs on frames: only frames
// about the instance's own address pass.
func TestSocketFilters(t *testing.T) {
	otherIP4 := netip.MustParseAddr("192.0.2.99")
	otherIP6 := netip.MustParseAddr("2001:db8::99")
	probe4, _ := arpProbe(ourMAC, vip4)
	ann4, _ := arpAnnounce(ourMAC, vip4)
	ns, _ := ndpProbe(ourMAC, vip6)
	na, _ := ndpAnnounce(ourMAC, vip6)
	udp := slices.Clone(na)
	udp[14+6] = 17 // next header UDP
	tests := []struct {
		name   string
		filter []bpf.RawInstruction
		frame  []byte
		pass   bool
	}{
		{"ARP probe for vip", arpFilter(vip4), probe4, true},
		{"ARP announcement of vip", arpFilter(vip4), ann4, true},
		{"ARP reply from vip", arpFilter(vip4), arpBytes(t, arp.OperationReply, otherMAC, vip4, otherIP4), true},
		{"ARP between others", arpFilter(vip4), arpBytes(t, arp.OperationRequest, otherMAC, otherIP4, netip.MustParseAddr("192.0.2.98")), false},
		{"ARP probe for another address", arpFilter(otherIP4), probe4, false},
		{"NS for vip", ndpFilter(vip6), ns, true},
		{"NA for vip", ndpFilter(vip6), na, true},
		{"NA for another address", ndpFilter(otherIP6), na, false},
		{"NS for another address", ndpFilter(otherIP6), ns, false},
		{"router solicitation", ndpFilter(vip6), ndpBytes(t, otherMAC, netip.MustParseAddr("fe80::1"), &ndp.RouterSolicitation{}), false},
		{"UDP", ndpFilter(vip6), udp, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := runFilter(t, tt.filter).Run(tt.frame)
			if err != nil {
				t.Fatal(err)
			}
			if (n > 0) != tt.pass {
				t.Errorf("filter returned %d, want pass=%v", n, tt.pass)
			}
		})
	}
}
