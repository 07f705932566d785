package peer

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/sftkit/sft/internal/health"
	"github.com/sftkit/sft/internal/netns/netnstest"
	"github.com/sftkit/sft/internal/testenv"

	"github.com/sftkit/sft/resource"
)

// lab is two nodes, a client and a gateway (the reference address) on
// one bridge, in namespaces the test creates; each node is a process.
type lab struct {
	t          testing.TB
	net        *netnstest.Net
	hosts      map[string]*netnstest.Host
	client, gw *netnstest.Host
	addr       map[string]netip.Addr
	cfg        map[string]Config
	nodes      map[string]*labProc
}

var (
	labVIP1 = netip.MustParseAddr("192.0.2.10")
	labVIP2 = netip.MustParseAddr("192.0.2.11")
	labGW   = netip.MustParseAddr("192.0.2.254")
)

// newLab builds the network and the two nodes' configurations; groups
// are given per home node ("a": active/passive; "a","b": active/active).
func newLab(t testing.TB, homes []string, mod func(*Group)) *lab {
	t.Helper()
	testenv.RequireRoot(t)
	n := netnstest.NewNet(t)
	l := &lab{t: t, net: n, hosts: map[string]*netnstest.Host{}, addr: map[string]netip.Addr{},
		cfg: map[string]Config{}, nodes: map[string]*labProc{}}
	for i, name := range []string{"a", "b"} {
		h := n.AddHost(name)
		a := netip.AddrFrom4([4]byte{192, 0, 2, byte(i + 1)})
		if err := h.AddAddr(a.String() + "/24"); err != nil {
			t.Fatal(err)
		}
		l.hosts[name], l.addr[name] = h, a
	}
	l.client, l.gw = n.AddHost("c"), n.AddHost("gw")
	if err := l.client.AddAddr("192.0.2.100/24"); err != nil {
		t.Fatal(err)
	}
	if err := l.gw.AddAddr(labGW.String() + "/24"); err != nil {
		t.Fatal(err)
	}
	var groups []Group
	for i, home := range homes {
		g := Group{Name: fmt.Sprintf("web%d", i+1), Address: []netip.Addr{labVIP1, labVIP2}[i], Home: home,
			Check: health.Config{TCP: fmt.Sprintf("%s:%d", []netip.Addr{labVIP1, labVIP2}[i], servicePort),
				Interval: resource.Duration(500 * time.Millisecond), Timeout: resource.Duration(200 * time.Millisecond)}}
		if mod != nil {
			mod(&g)
		}
		groups = append(groups, g)
	}
	for _, pair := range [][2]string{{"a", "b"}, {"b", "a"}} {
		l.cfg[pair[0]] = Config{Node: pair[0], Peer: pair[1],
			Listen:    netip.AddrPortFrom(l.addr[pair[0]], DefaultPort),
			PeerAddr:  netip.AddrPortFrom(l.addr[pair[1]], DefaultPort),
			Key:       []byte("lab-key-0123456789"),
			Reference: labGW,
			Groups:    groups,
		}
	}
	return l
}

// labProc is a node process.
type labProc struct {
	name   string
	cmd    *exec.Cmd
	mu     sync.Mutex
	events []Event
	change chan struct{}
	stderr bytes.Buffer
	done   chan struct{}
}

func (l *lab) start(name string) *labProc {
	t := l.t
	t.Helper()
	spec, err := json.Marshal(labSpec{Config: l.cfg[name]})
	if err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p := &labProc{name: name, change: make(chan struct{}, 1), done: make(chan struct{})}
	p.cmd = exec.Command("ip", "netns", "exec", l.hosts[name].Name, exe, "-test.run=^$")
	p.cmd.Env = append(os.Environ(), nodeEnv+"="+string(spec))
	p.cmd.Stderr = &lockedWriter{mu: &p.mu, w: &p.stderr}
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var e Event
			if json.Unmarshal(sc.Bytes(), &e) == nil {
				p.mu.Lock()
				p.events = append(p.events, e)
				p.mu.Unlock()
				select {
				case p.change <- struct{}{}:
				default:
				}
			}
		}
		_ = p.cmd.Wait()
	}()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			p.mu.Lock()
			t.Logf("node %s events: %+v\nstderr (tail): %s", name, p.events, tail(p.stderr.String(), 3000))
			p.mu.Unlock()
		}
	})
	l.nodes[name] = p
	return p
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (w *lockedWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(b)
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// kill SIGKILLs the process (idempotent) and waits for it.
func (p *labProc) kill() {
	if p.cmd.Process != nil {
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
	}
	<-p.done
}

func (p *labProc) signal(s syscall.Signal) {
	_ = p.cmd.Process.Signal(s)
}

func (p *labProc) count(kind EventKind) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, e := range p.events {
		if e.Kind == kind {
			n++
		}
	}
	return n
}

// wait returns once the node published an event of kind.
func (p *labProc) wait(t testing.TB, kind EventKind, timeout time.Duration) Event {
	t.Helper()
	deadline := time.After(timeout)
	for {
		p.mu.Lock()
		for _, e := range p.events {
			if e.Kind == kind {
				p.mu.Unlock()
				return e
			}
		}
		p.mu.Unlock()
		select {
		case <-p.change:
		case <-p.done:
			t.Fatalf("node %s exited waiting for %s", p.name, kind)
		case <-deadline:
			t.Fatalf("node %s: no %s event within %v", p.name, kind, timeout)
		}
	}
}

// dead kills node name as a dead host: its bridge port down, its
// process SIGKILLed. The address it held stays in its namespace, as on a
// hung host.
func (l *lab) dead(name string) {
	l.t.Helper()
	if err := l.hosts[name].SetPortUp(false); err != nil {
		l.t.Fatal(err)
	}
	l.nodes[name].kill()
}

// reboot brings a dead node back: its service addresses gone (a fresh
// boot), its port up, a new process.
func (l *lab) reboot(name string) *labProc {
	l.t.Helper()
	h := l.hosts[name]
	for _, vip := range []netip.Addr{labVIP1, labVIP2} {
		if l.holds(name, vip) {
			a := &netlink.Addr{IPNet: &net.IPNet{IP: vip.AsSlice(), Mask: net.CIDRMask(24, 32)}}
			if err := h.Handle.AddrDel(&netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Index: h.Index}}, a); err != nil {
				l.t.Fatal(err)
			}
		}
	}
	if err := h.SetPortUp(true); err != nil {
		l.t.Fatal(err)
	}
	return l.start(name)
}

// holds reports whether node name has vip on its eth0 (netlink dump).
func (l *lab) holds(name string, vip netip.Addr) bool {
	l.t.Helper()
	h := l.hosts[name]
	lk, err := h.Handle.LinkByName(h.Link)
	if err != nil {
		l.t.Fatal(err)
	}
	as, err := h.Handle.AddrList(lk, netlink.FAMILY_V4)
	if err != nil {
		l.t.Fatal(err)
	}
	for _, a := range as {
		if ip, ok := netip.AddrFromSlice(a.IP); ok && ip.Unmap() == vip {
			return true
		}
	}
	return false
}

// served asks the service at vip from the client: the serving node's
// name, or "" when nothing answers within timeout.
func (l *lab) served(vip netip.Addr, timeout time.Duration) string {
	var name string
	_ = l.client.Do(func() error {
		d := net.Dialer{Timeout: timeout}
		c, err := d.Dial("tcp", netip.AddrPortFrom(vip, servicePort).String())
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(timeout))
		s, err := bufio.NewReader(c).ReadString('\n')
		name = strings.TrimSpace(s)
		return err
	})
	return name
}

// waitServed waits until the client sees node serve vip.
func (l *lab) waitServed(vip netip.Addr, node string, timeout time.Duration) {
	l.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := l.served(vip, 100*time.Millisecond)
		if got == node {
			return
		}
		if time.Now().After(deadline) {
			l.t.Fatalf("%s served by %q, want %q", vip, got, node)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// nft loads an nftables ruleset into namespace ns and removes its table
// at cleanup (the namespace's deletion would too).
func (l *lab) nft(ns *netnstest.NS, table, rules string) {
	l.t.Helper()
	if _, err := exec.LookPath("nft"); err != nil {
		l.t.Fatalf("nft is required for loss and partition tests (apt-get install nftables): %v", err)
	}
	run := func(stdin string, args ...string) error {
		cmd := exec.Command("ip", append([]string{"netns", "exec", ns.Name, "nft"}, args...)...)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("nft %v: %v: %s", args, err, out)
		}
		return nil
	}
	if err := run(rules, "-f", "-"); err != nil {
		l.t.Fatal(err)
	}
	l.t.Cleanup(func() { l.unnft(ns, table) })
}

func (l *lab) unnft(ns *netnstest.NS, table string) {
	cmd := exec.Command("ip", "netns", "exec", ns.Name, "nft", "delete", "table", "netdev", table)
	_ = cmd.Run() // already gone is fine
}

// dropFrom drops pct % of the frames node name sends (ingress of its
// bridge port): every echo exchange with it and every functional check
// is lost with probability pct/100, one direction, q = p.
func (l *lab) dropFrom(name string, pct int) string {
	table := "sftloss_" + name
	l.nft(l.net.Switch, table, fmt.Sprintf(`table netdev %s {
	chain in {
		type filter hook ingress device %q priority 0;
		numgen random mod 100 < %d drop
	}
}
`, table, l.hosts[name].Port, pct))
	return table
}

// dropTo drops pct % of the frames sent to node name (ingress of its
// eth0); with dropFrom, loss both ways: q = 1-(1-p)^2.
func (l *lab) dropTo(name string, pct int) string {
	h := l.hosts[name]
	table := "sftlossin"
	l.nft(&h.NS, table, fmt.Sprintf(`table netdev %s {
	chain in {
		type filter hook ingress device "eth0" priority 0;
		numgen random mod 100 < %d drop
	}
}
`, table, pct))
	return table
}

// partition cuts node name off silently: everything to and from it is
// dropped, carrier kept up.
func (l *lab) partition(name string) {
	h := l.hosts[name]
	l.nft(l.net.Switch, "sftcut_"+name, fmt.Sprintf(`table netdev sftcut_%s {
	chain in { type filter hook ingress device %q priority 0; drop; }
}
`, name, h.Port))
	l.nft(&h.NS, "sftcut", `table netdev sftcut {
	chain in { type filter hook ingress device "eth0" priority 0; drop; }
}
`)
}
