package ipaddress

// Pure frame building and parsing: no sockets here (see wire.go).

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/ndp"
)

var (
	zeroMAC      = net.HardwareAddr{0, 0, 0, 0, 0, 0}
	allNodes     = netip.MustParseAddr("ff02::1")
	allNodesMAC  = net.HardwareAddr{0x33, 0x33, 0, 0, 0, 1}
	etherTypeIP6 = ethernet.EtherType(0x86dd)
)

const (
	ipv6HeaderLen = 40
	protoICMPv6   = 58
	ndpHopLimit   = 255 // RFC 4861: NDP packets must carry hop limit 255
)

// arpFrame builds an Ethernet broadcast frame carrying an ARP request with the
// given sender and target protocol addresses and an all-zero target hardware
// address.
func arpFrame(mac net.HardwareAddr, spa, tpa netip.Addr) ([]byte, error) {
	p, err := arp.NewPacket(arp.OperationRequest, mac, spa, zeroMAC, tpa)
	if err != nil {
		return nil, err
	}
	pb, err := p.MarshalBinary()
	if err != nil {
		return nil, err
	}
	f := &ethernet.Frame{Destination: ethernet.Broadcast, Source: mac, EtherType: ethernet.EtherTypeARP, Payload: pb}
	return f.MarshalBinary()
}

// arpProbe is an RFC 5227 ARP probe for vip: a request with sender IP
// 0.0.0.0, so that no neighbour caches anything from it.
func arpProbe(mac net.HardwareAddr, vip netip.Addr) ([]byte, error) {
	return arpFrame(mac, netip.IPv4Unspecified(), vip)
}

// arpAnnounce is a gratuitous ARP in request form (op=1, SPA=TPA=vip,
// THA=0). Linux accepts the request form even inside the locktime that makes
// it ignore some reply-form announcements.
func arpAnnounce(mac net.HardwareAddr, vip netip.Addr) ([]byte, error) {
	return arpFrame(mac, vip, vip)
}

// arpConflict reports whether frame, received on the interface whose MAC is
// mac, shows another host claiming vip: any ARP packet from another hardware
// address with sender IP vip (a reply to our probe, an announcement) or,
// while we are not holding vip yet, another host's probe for vip (RFC 5227
// simultaneous probe). It returns the other host's MAC.
func arpConflict(frame []byte, mac net.HardwareAddr, vip netip.Addr, holding bool) (net.HardwareAddr, bool) {
	var f ethernet.Frame
	if err := f.UnmarshalBinary(frame); err != nil || f.EtherType != ethernet.EtherTypeARP {
		return nil, false
	}
	var p arp.Packet
	if err := p.UnmarshalBinary(f.Payload); err != nil {
		return nil, false
	}
	if bytes.Equal(p.SenderHardwareAddr, mac) || bytes.Equal(f.Source, mac) {
		return nil, false // our own frame (packet sockets see outgoing frames too)
	}
	if p.SenderIP == vip {
		return p.SenderHardwareAddr, true
	}
	if !holding && p.Operation == arp.OperationRequest && p.SenderIP.IsUnspecified() && p.TargetIP == vip {
		return p.SenderHardwareAddr, true
	}
	return nil, false
}

// ipv6Frame wraps an ICMPv6 message in an IPv6 header (hop limit 255) and an
// Ethernet header.
func ipv6Frame(srcMAC, dstMAC net.HardwareAddr, src, dst netip.Addr, m ndp.Message) ([]byte, error) {
	icmp, err := ndp.MarshalMessageChecksum(m, src, dst)
	if err != nil {
		return nil, err
	}
	b := make([]byte, ipv6HeaderLen+len(icmp))
	b[0] = 6 << 4
	binary.BigEndian.PutUint16(b[4:6], uint16(len(icmp)))
	b[6] = protoICMPv6
	b[7] = ndpHopLimit
	s, d := src.As16(), dst.As16()
	copy(b[8:24], s[:])
	copy(b[24:40], d[:])
	copy(b[40:], icmp)
	f := &ethernet.Frame{Destination: dstMAC, Source: srcMAC, EtherType: etherTypeIP6, Payload: b}
	return f.MarshalBinary()
}

// multicastMAC maps an IPv6 multicast address to its Ethernet address
// (33:33 and the low 32 bits, RFC 2464).
func multicastMAC(ip netip.Addr) net.HardwareAddr {
	a := ip.As16()
	return net.HardwareAddr{0x33, 0x33, a[12], a[13], a[14], a[15]}
}

// ndpProbe is a duplicate address detection probe for vip (RFC 4862): a
// neighbour solicitation from the unspecified address to vip's
// solicited-node multicast group, without source link-layer option.
func ndpProbe(mac net.HardwareAddr, vip netip.Addr) ([]byte, error) {
	snm, err := ndp.SolicitedNodeMulticast(vip)
	if err != nil {
		return nil, err
	}
	return ipv6Frame(mac, multicastMAC(snm), netip.IPv6Unspecified(), snm, &ndp.NeighborSolicitation{TargetAddress: vip})
}

// ndpAnnounce is an unsolicited neighbour advertisement for vip with the
// Override flag, sent from vip to all nodes, carrying our MAC as target
// link-layer address: neighbours holding an entry for vip switch to us.
func ndpAnnounce(mac net.HardwareAddr, vip netip.Addr) ([]byte, error) {
	na := &ndp.NeighborAdvertisement{
		Override:      true,
		TargetAddress: vip,
		Options:       []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Target, Addr: mac}},
	}
	return ipv6Frame(mac, allNodesMAC, vip, allNodes, na)
}

var errNotNDP = errors.New("not an NDP frame")

// parseNDP extracts the Ethernet source, IPv6 source and NDP message of an
// NDP frame.
func parseNDP(frame []byte) (net.HardwareAddr, netip.Addr, ndp.Message, error) {
	var f ethernet.Frame
	if err := f.UnmarshalBinary(frame); err != nil {
		return nil, netip.Addr{}, nil, err
	}
	b := f.Payload
	if f.EtherType != etherTypeIP6 || len(b) < ipv6HeaderLen || b[0]>>4 != 6 || b[6] != protoICMPv6 || b[7] != ndpHopLimit {
		return nil, netip.Addr{}, nil, errNotNDP
	}
	n := int(binary.BigEndian.Uint16(b[4:6]))
	if ipv6HeaderLen+n > len(b) {
		return nil, netip.Addr{}, nil, errNotNDP
	}
	src := netip.AddrFrom16([16]byte(b[8:24]))
	m, err := ndp.ParseMessage(b[ipv6HeaderLen : ipv6HeaderLen+n])
	if err != nil {
		return nil, netip.Addr{}, nil, err
	}
	return f.Source, src, m, nil
}

// ndpConflict is arpConflict for IPv6: a neighbour advertisement for vip
// from another MAC, or, while not holding vip, another host's duplicate
// address probe for vip.
func ndpConflict(frame []byte, mac net.HardwareAddr, vip netip.Addr, holding bool) (net.HardwareAddr, bool) {
	from, src, m, err := parseNDP(frame)
	if err != nil || bytes.Equal(from, mac) {
		return nil, false
	}
	switch m := m.(type) {
	case *ndp.NeighborAdvertisement:
		if m.TargetAddress == vip {
			return from, true
		}
	case *ndp.NeighborSolicitation:
		if !holding && src.IsUnspecified() && m.TargetAddress == vip {
			return from, true
		}
	}
	return nil, false
}
