package clusterlab

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/mdlayher/packet"
	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"

	"github.com/sftkit/sft/internal/netns"
)

// Probe is one client connection attempt to the VIP.
type Probe struct {
	At time.Time
	// Node is who answered ("" nobody: refused, timed out).
	Node string
}

// ARP is one ARP frame the client saw that claims the VIP.
type ARP struct {
	At  time.Time
	MAC string
	// Node is the node with that MAC ("" unknown).
	Node string
}

// Sample is one sampling of which nodes hold the VIP.
type Sample struct {
	At      time.Time
	Holders []string
}

// Watch is a running observation: the client's probes every 10 ms, the
// ARP frames for the VIP it sees, and the VIP's holders sampled every
// few ms on every node.
type Watch struct {
	lab    *Lab
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	probes  []Probe
	arps    []ARP
	samples []Sample
	errs    []error
}

// Watch starts watching; Stop ends it.
func (l *Lab) Watch() (*Watch, error) {
	ctx, cancel := context.WithCancel(context.Background())
	w := &Watch{lab: l, cancel: cancel}
	// The ARP socket is opened in the client namespace.
	var conn *packet.Conn
	err := netns.Do("/run/netns/"+l.Client, func() error {
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		conn, err = packet.Listen(ifi, packet.Raw, 0x0806, nil)
		return err
	})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("clusterlab: arp socket: %w", err)
	}
	var handles []*netlink.Handle
	var links []netlink.Link
	for _, n := range l.Nodes {
		h, err := vnetns.GetFromName(n.NS)
		if err == nil {
			var nh *netlink.Handle
			nh, err = netlink.NewHandleAt(h)
			_ = h.Close()
			if err == nil {
				var lk netlink.Link
				if lk, err = nh.LinkByName("eth0"); err == nil {
					handles, links = append(handles, nh), append(links, lk)
					continue
				}
				nh.Close()
			}
		}
		for _, h := range handles {
			h.Close()
		}
		_ = conn.Close()
		cancel()
		return nil, fmt.Errorf("clusterlab: netlink in %s: %w", n.NS, err)
	}
	w.wg.Go(func() { w.sniff(ctx, conn) })
	w.wg.Go(func() {
		defer func() {
			for _, h := range handles {
				h.Close()
			}
		}()
		w.sample(ctx, handles, links)
	})
	w.wg.Go(func() {
		if err := netns.Do("/run/netns/"+l.Client, func() error { return w.probe(ctx) }); err != nil {
			w.fail(err)
		}
	})
	go func() { <-ctx.Done(); _ = conn.Close() }()
	return w, nil
}

func (w *Watch) fail(err error) {
	w.mu.Lock()
	w.errs = append(w.errs, err)
	w.mu.Unlock()
}

// probe connects to the VIP every 10 ms (on the namespace's locked
// thread: the sockets belong to the client namespace).
func (w *Watch) probe(ctx context.Context) error {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	addr := fmt.Sprintf("%s:%d", VIP, Port)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		at := time.Now()
		name := ask(addr)
		w.mu.Lock()
		w.probes = append(w.probes, Probe{At: at, Node: name})
		w.mu.Unlock()
	}
}

// ask does GET /node on a new connection (bounded by 50 ms) and returns
// the answer ("" none).
func ask(addr string) string {
	s, _ := get(addr, "/node", 50*time.Millisecond)
	return s
}

// Get does GET path on the app at the VIP from the client namespace
// (bounded by 1 s) and returns the body's last line.
func (l *Lab) Get(path string) (string, error) {
	var s string
	err := netns.Do("/run/netns/"+l.Client, func() error {
		var err error
		s, err = get(fmt.Sprintf("%s:%d", VIP, Port), path, time.Second)
		return err
	})
	return s, err
}

// get does GET path on a new connection from the calling thread's
// namespace and returns the body's last line.
func get(addr, path string, bound time.Duration) (string, error) {
	c, err := net.DialTimeout("tcp", addr, bound)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(bound))
	if _, err := c.Write([]byte("GET " + path + " HTTP/1.0\r\nHost: vip\r\n\r\n")); err != nil {
		return "", err
	}
	r := bufio.NewReader(c)
	last := ""
	for {
		line, err := r.ReadString('\n')
		if s := strings.TrimSpace(line); s != "" {
			last = s
		}
		if err != nil {
			break
		}
	}
	if strings.HasPrefix(last, "HTTP/") || strings.Contains(last, ":") {
		return "", fmt.Errorf("GET %s: no body", path)
	}
	return last, nil
}

// sniff records ARP frames whose sender IP is the VIP.
func (w *Watch) sniff(ctx context.Context, conn *packet.Conn) {
	vip := ParseVIP().As4()
	buf := make([]byte, 1514)
	for ctx.Err() == nil {
		n, _, err := conn.ReadFrom(buf)
		if err != nil {
			return
		}
		f := buf[:n]
		// Ethernet (14) + ARP: htype 2, ptype 2, hlen 1, plen 1, op 2, sha 6, spa 4.
		if n < 14+28 || binary.BigEndian.Uint16(f[12:14]) != 0x0806 {
			continue
		}
		a := f[14:]
		if [4]byte(a[14:18]) != vip {
			continue
		}
		mac := net.HardwareAddr(a[8:14]).String()
		w.mu.Lock()
		w.arps = append(w.arps, ARP{At: time.Now(), MAC: mac, Node: w.lab.NodeByMAC(mac)})
		w.mu.Unlock()
	}
}

// sample reads the VIP's holders every 2 ms.
func (w *Watch) sample(ctx context.Context, handles []*netlink.Handle, links []netlink.Link) {
	vip := ParseVIP()
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		s := Sample{At: time.Now()}
		for i, h := range handles {
			addrs, err := h.AddrList(links[i], netlink.FAMILY_V4)
			if err != nil {
				continue
			}
			for _, a := range addrs {
				if ip, ok := netip.AddrFromSlice(a.IP.To4()); ok && ip == vip {
					s.Holders = append(s.Holders, w.lab.Nodes[i].Name)
				}
			}
		}
		w.mu.Lock()
		w.samples = append(w.samples, s)
		w.mu.Unlock()
	}
}

// Stop ends the watch and returns what it recorded.
func (w *Watch) Stop() Record {
	w.cancel()
	w.wg.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	return Record{Probes: w.probes, ARPs: w.arps, Samples: w.samples, Errs: w.errs}
}

// Snapshot returns what was recorded so far.
func (w *Watch) Snapshot() Record {
	w.mu.Lock()
	defer w.mu.Unlock()
	return Record{Probes: append([]Probe(nil), w.probes...), ARPs: append([]ARP(nil), w.arps...), Samples: append([]Sample(nil), w.samples...)}
}

// Record is what a watch saw.
type Record struct {
	Probes  []Probe
	ARPs    []ARP
	Samples []Sample
	Errs    []error
}

// SplitBrain returns the samples in which more than one node held the
// VIP, ignoring the nodes in except (a killed node's namespace keeps its
// address with its link down: nobody can reach it).
func (r Record) SplitBrain(except ...string) []Sample {
	var out []Sample
	for _, s := range r.Samples {
		n := 0
		for _, h := range s.Holders {
			if !contains(except, h) {
				n++
			}
		}
		if n > 1 {
			out = append(out, s)
		}
	}
	return out
}

// SplitBrainTime sums the time between consecutive samples with more than
// one holder.
func (r Record) SplitBrainTime(except ...string) time.Duration {
	var total time.Duration
	for i := 1; i < len(r.Samples); i++ {
		n := 0
		for _, h := range r.Samples[i].Holders {
			if !contains(except, h) {
				n++
			}
		}
		if n > 1 {
			total += r.Samples[i].At.Sub(r.Samples[i-1].At)
		}
	}
	return total
}

// ARPClaimants returns the distinct nodes (or MACs) that sent ARP frames
// for the VIP after t, in order of first appearance.
func (r Record) ARPClaimants(after time.Time) []string {
	var out []string
	for _, a := range r.ARPs {
		who := a.Node
		if who == "" {
			who = a.MAC
		}
		if a.At.After(after) && !contains(out, who) {
			out = append(out, who)
		}
	}
	return out
}

// ARPSwitches counts the changes of the MAC claiming the VIP in ARP
// frames (two nodes racing show as many switches).
func (r Record) ARPSwitches(after time.Time) int {
	n, last := 0, ""
	for _, a := range r.ARPs {
		if !a.At.After(after) {
			continue
		}
		if last != "" && a.MAC != last {
			n++
		}
		last = a.MAC
	}
	return n
}

// Answerers returns the distinct nodes that answered after t, in order.
func (r Record) Answerers(after time.Time) []string {
	var out []string
	for _, p := range r.Probes {
		if p.At.After(after) && p.Node != "" && !contains(out, p.Node) {
			out = append(out, p.Node)
		}
	}
	return out
}

// OwnerChanges counts the changes of the answering node (ignoring
// unanswered probes).
func (r Record) OwnerChanges(after time.Time) int {
	n, last := 0, ""
	for _, p := range r.Probes {
		if !p.At.After(after) || p.Node == "" {
			continue
		}
		if last != "" && p.Node != last {
			n++
		}
		last = p.Node
	}
	return n
}

// Outage is the longest run of unanswered probes after t: from the last
// answered probe before the gap to the first answered one after it.
func (r Record) Outage(after time.Time) time.Duration {
	var longest time.Duration
	var lastOK time.Time
	for _, p := range r.Probes {
		if p.At.Before(after) {
			if p.Node != "" {
				lastOK = p.At
			}
			continue
		}
		if p.Node == "" {
			continue
		}
		if !lastOK.IsZero() {
			longest = max(longest, p.At.Sub(lastOK))
		}
		lastOK = p.At
	}
	return longest
}

// BlackHole sums the time after t in which the client's traffic to the
// VIP went nowhere because of the cluster, not because of the link's own
// loss: no node held the address, or the newest ARP claim the client saw
// named a node that did not hold it (the gratuitous-ARP race that
// black-holes keepalived's clients). Measured between holder samples.
func (r Record) BlackHole(after time.Time) time.Duration {
	var total time.Duration
	ai := 0
	claimant := ""
	for i := 1; i < len(r.Samples); i++ {
		s := r.Samples[i]
		for ai < len(r.ARPs) && !r.ARPs[ai].At.After(s.At) {
			claimant = r.ARPs[ai].Node
			ai++
		}
		if !s.At.After(after) {
			continue
		}
		if len(s.Holders) == 0 || (claimant != "" && !contains(s.Holders, claimant)) {
			total += s.At.Sub(r.Samples[i-1].At)
		}
	}
	return total
}

// LastHeld is the time of the last sample in which node held the VIP.
func (r Record) LastHeld(node string) time.Time {
	var t time.Time
	for _, s := range r.Samples {
		if contains(s.Holders, node) {
			t = s.At
		}
	}
	return t
}

// FirstHeld is the first sample after t in which node held the VIP.
func (r Record) FirstHeld(node string, after time.Time) time.Time {
	for _, s := range r.Samples {
		if s.At.After(after) && contains(s.Holders, node) {
			return s.At
		}
	}
	return time.Time{}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
