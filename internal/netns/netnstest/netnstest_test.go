package netnstest_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sftkit/sft/internal/netns"
	"github.com/sftkit/sft/internal/netns/netnstest"
	"github.com/sftkit/sft/internal/testenv"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

func rootLinks(t *testing.T) []string {
	t.Helper()
	ls, err := netlink.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range ls {
		names = append(names, l.Attrs().Name)
	}
	slices.Sort(names)
	return names
}

// TestNetTwoHosts builds a switch and two hosts, sends a UDP datagram from
// one host to the other across the bridge, and checks that the root
// namespace gained no link and that every namespace is gone afterwards.
func TestNetTwoHosts(t *testing.T) {
	testenv.RequireRoot(t)
	before := rootLinks(t)
	var names []string
	t.Run("net", func(t *testing.T) {
		n := netnstest.NewNet(t)
		a, b := n.AddHost("a"), n.AddHost("b")
		names = []string{n.Switch.Name, a.Name, b.Name}
		if err := a.AddAddr("192.0.2.1/24"); err != nil {
			t.Fatal(err)
		}
		if err := b.AddAddr("192.0.2.2/24"); err != nil {
			t.Fatal(err)
		}
		var pc net.PacketConn
		if err := b.Do(func() (err error) {
			pc, err = net.ListenPacket("udp4", "192.0.2.2:9999")
			return err
		}); err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		var c net.Conn
		if err := a.Do(func() (err error) {
			c, err = net.Dial("udp4", "192.0.2.2:9999")
			return err
		}); err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write([]byte("hello")); err != nil {
			t.Fatal(err)
		}
		pc.SetReadDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, 16)
		nr, from, err := pc.ReadFrom(buf)
		if err != nil {
			t.Fatalf("datagram across the bridge: %v", err)
		}
		if string(buf[:nr]) != "hello" || from.(*net.UDPAddr).IP.String() != "192.0.2.1" {
			t.Fatalf("got %q from %v", buf[:nr], from)
		}
		// The peer saw a's MAC through ARP.
		mac, _, ok, err := b.Neigh(mustAddr("192.0.2.1"))
		if err != nil || !ok || mac.String() != a.MAC.String() {
			t.Fatalf("b's neighbour entry for a: %v %v %v, want %v", mac, ok, err, a.MAC)
		}
		if got := rootLinks(t); !slices.Equal(got, before) {
			t.Fatalf("root namespace links changed: %v -> %v", before, got)
		}
	})
	for _, name := range names {
		if _, err := os.Stat(filepath.Join("/run/netns", name)); !os.IsNotExist(err) {
			t.Errorf("namespace %s left behind (stat: %v)", name, err)
		}
	}
}

func TestDoEmptyPathRunsInPlace(t *testing.T) {
	ran := false
	if err := netns.Do("", func() error { ran = true; return nil }); err != nil || !ran {
		t.Fatalf("Do(\"\") ran=%v err=%v", ran, err)
	}
}

func TestDoMissingNamespace(t *testing.T) {
	err := netns.Do("/nonexistent/netns", func() error { t.Fatal("fn ran"); return nil })
	if err == nil {
		t.Fatal("Do on a missing namespace path returned nil")
	}
}

// TestHelperFailingNet is run by TestCleanupOnFailure in a child process:
// it builds a network, writes the namespace names to a file and fails.
func TestHelperFailingNet(t *testing.T) {
	out := os.Getenv("SFT_NETNS_HELPER_OUT")
	if out == "" {
		t.Skip("helper for TestCleanupOnFailure")
	}
	n := netnstest.NewNet(t)
	h := n.AddHost("a")
	if err := os.WriteFile(out, []byte(n.Switch.Name+"\n"+h.Name), 0o644); err != nil {
		t.Error(err)
	}
	t.Fatal("failing on purpose")
}

// TestCleanupOnFailure: a test that fails after building a network still
// removes every namespace it created.
func TestCleanupOnFailure(t *testing.T) {
	testenv.RequireRoot(t)
	out := filepath.Join(t.TempDir(), "names")
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperFailingNet$", "-test.count=1")
	cmd.Env = append(os.Environ(), "SFT_NETNS_HELPER_OUT="+out)
	b, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(b), "failing on purpose") {
		t.Fatalf("helper did not fail as planned: %v\n%s", err, b)
	}
	names, err := os.ReadFile(out)
	if err != nil {
		t.Fatalf("helper wrote no names: %v\n%s", err, b)
	}
	for _, name := range strings.Fields(string(names)) {
		if _, err := os.Stat(filepath.Join("/run/netns", name)); !os.IsNotExist(err) {
			t.Errorf("namespace %s left behind by a failed test (stat: %v)", name, err)
		}
	}
}

// TestSetPortUp: taking a host's bridge port down removes the carrier the
// host sees; up restores it.
func TestSetPortUp(t *testing.T) {
	testenv.RequireRoot(t)
	n := netnstest.NewNet(t)
	h := n.AddHost("a")
	carrier := func() bool {
		l, err := h.Handle.LinkByName(h.Link)
		if err != nil {
			t.Fatal(err)
		}
		return l.Attrs().RawFlags&unix.IFF_RUNNING != 0
	}
	if err := h.SetPortUp(false); err != nil {
		t.Fatal(err)
	}
	if carrier() {
		t.Fatal("carrier with the bridge port down")
	}
	if err := h.SetPortUp(true); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !carrier() { // carrier comes back asynchronously (link watch)
		if time.Now().After(deadline) {
			t.Fatal("no carrier after the bridge port came back up")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestDoRestoresThreads: fn sees the namespace's interfaces; afterwards no
// thread of the process is left in it (many goroutines list the caller's
// interfaces and never see the host's eth0).
func TestDoRestoresThreads(t *testing.T) {
	testenv.RequireRoot(t)
	n := netnstest.NewNet(t)
	h := n.AddHost("a")
	has := func(ifs []net.Interface, mac string) bool {
		for _, i := range ifs {
			if i.HardwareAddr.String() == mac {
				return true
			}
		}
		return false
	}
	for range 50 {
		var inside []net.Interface
		if err := h.Do(func() (err error) { inside, err = net.Interfaces(); return err }); err != nil {
			t.Fatal(err)
		}
		if !has(inside, h.MAC.String()) {
			t.Fatal("fn does not see the namespace's eth0")
		}
	}
	errc := make(chan error, 200)
	for range 200 {
		go func() {
			ifs, err := net.Interfaces()
			if err == nil && has(ifs, h.MAC.String()) {
				err = errors.New("a thread is still inside the test namespace")
			}
			errc <- err
		}()
	}
	for range 200 {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
}

// TestWaitIPv6Group: after AddAddr of an IPv6 address the host is in its
// solicited-node group; a group nobody joins times out with ctx's error.
func TestWaitIPv6Group(t *testing.T) {
	testenv.RequireRoot(t)
	n := netnstest.NewNet(t)
	h := n.AddHost("a")
	if err := h.AddAddr("2001:db8::5/64"); err != nil {
		t.Fatal(err)
	}
	group := netns.SolicitedNode(netip.MustParseAddr("2001:db8::5"))
	if group != netip.MustParseAddr("ff02::1:ff00:5") {
		t.Fatalf("SolicitedNode = %v", group)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := netns.WaitIPv6Group(ctx, h.Path, h.Link, group); err != nil {
		t.Fatalf("solicited-node group of 2001:db8::5: %v", err)
	}
	short, cancel2 := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel2()
	err := netns.WaitIPv6Group(short, h.Path, h.Link, netip.MustParseAddr("ff02::1:ff00:6"))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("group never joined: %v, want deadline exceeded", err)
	}
}
