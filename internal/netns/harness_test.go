package netns_test

import (
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/sftkit/sft/internal/netns"
	"github.com/sftkit/sft/internal/testenv"
	"github.com/vishvananda/netlink"
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
		n := netns.NewNet(t)
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
