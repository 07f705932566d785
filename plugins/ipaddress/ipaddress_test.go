package ipaddress

import (
	"context"
	"errors"
	"fmt"
	"os"

	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"go.uber.org/goleak"

	"github.com/sftkit/sft/internal/testenv"
	"github.com/sftkit/sft/plugins/plugintest"
	"github.com/sftkit/sft/resource"
)

// TestMain serves the type when the test binary is re-executed as a plugin
// (plugin_test.go); otherwise it runs the tests and then fails the run on
// leaked goroutines or left-over child processes.
func TestMain(m *testing.M) {
	plugintest.ServeIfPlugin(NewType())
	code := m.Run()
	if code == 0 {
		if err := plugintest.NoChildren(10 * time.Second); err != nil {
			fmt.Fprintln(os.Stderr, "FAIL:", err)
			code = 1
		}
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "FAIL: goroutine leak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// guard bounds waits for events that must come; it is a hang guard, not a
// speed requirement (speeds live in the benchmarks).
const guard = 20 * time.Second

func families(t *testing.T, fn func(t *testing.T, v6 bool)) {
	t.Run("IPv4", func(t *testing.T) { t.Parallel(); fn(t, false) })
	t.Run("IPv6", func(t *testing.T) { t.Parallel(); fn(t, true) })
}

func class(err error) string {
	if err == nil {
		return "nil"
	}
	return resource.ClassOf(err).String()
}

// TestTakeoverUpdatesClientNeighbour: the client has an entry for the
// address pointing at a stale MAC (as after the owner died); after A's
// Online it shows A's MAC, and after A goes offline and B comes online it
// shows B's: the failover path of the issue.
func TestTakeoverUpdatesClientNeighbour(t *testing.T) {
	families(t, func(t *testing.T, v6 bool) {
		l := newLab(t, v6)
		ctx, cancel := context.WithTimeout(context.Background(), guard)
		defer cancel()
		w := watchNeigh(t, l.client, l.vip.Addr())
		if err := l.client.SetNeigh(l.vip.Addr(), l.bogusMAC); err != nil {
			t.Fatal(err)
		}
		ra, rb := l.open(t, l.a, nil), l.open(t, l.b, nil)
		if err := ra.Online(ctx); err != nil {
			t.Fatalf("A Online: %v", err)
		}
		w.wait(t, ctx, l.a.MAC)
		if err := ra.LooksAlive(ctx); err != nil {
			t.Errorf("A LooksAlive: %v", err)
		}
		if err := ra.IsAlive(ctx); err != nil {
			t.Errorf("A IsAlive: %v", err)
		}
		if !l.has(t, l.a) {
			t.Fatal("A does not hold the address after Online")
		}
		// A dies (its address goes away without goodbye), B takes over.
		if err := ra.Terminate(ctx); err != nil {
			t.Fatal(err)
		}
		if l.has(t, l.a) {
			t.Fatal("A still holds the address after Terminate")
		}
		if err := rb.Online(ctx); err != nil {
			t.Fatalf("B Online after A left: %v", err)
		}
		w.wait(t, ctx, l.b.MAC)
		if !l.has(t, l.b) {
			t.Fatal("B does not hold the address")
		}
		if err := rb.IsAlive(ctx); err != nil {
			t.Errorf("B IsAlive: %v", err)
		}
	})
}

// TestSecondHostRefuses: while A holds the address, B's Online fails
// node-local and B does not bind it; A stays healthy.
func TestSecondHostRefuses(t *testing.T) {
	families(t, func(t *testing.T, v6 bool) {
		l := newLab(t, v6)
		ctx, cancel := context.WithTimeout(context.Background(), guard)
		defer cancel()
		ra, rb := l.open(t, l.a, nil), l.open(t, l.b, nil)
		if err := ra.Online(ctx); err != nil {
			t.Fatalf("A Online: %v", err)
		}
		err := rb.Online(ctx)
		if !errors.Is(err, resource.ErrNodeLocal) {
			t.Fatalf("B Online while A holds the address: %v (class %s), want node-local", err, class(err))
		}
		if !strings.Contains(err.Error(), l.a.MAC.String()) {
			t.Errorf("error %q does not name the holder's MAC %s", err, l.a.MAC)
		}
		if l.has(t, l.b) {
			t.Fatal("B bound the address although A holds it")
		}
		if err := rb.LooksAlive(ctx); err == nil {
			t.Error("B LooksAlive nil after a refused Online")
		}
		if err := ra.IsAlive(ctx); err != nil {
			t.Errorf("A IsAlive after B's probe: %v", err)
		}
	})
}

// TestIsAliveSeesOtherHolder: another host binding the address behind our
// back makes IsAlive fail node-local while LooksAlive (local view) passes.
func TestIsAliveSeesOtherHolder(t *testing.T) {
	families(t, func(t *testing.T, v6 bool) {
		l := newLab(t, v6)
		ctx, cancel := context.WithTimeout(context.Background(), guard)
		defer cancel()
		ra := l.open(t, l.a, nil)
		if err := ra.Online(ctx); err != nil {
			t.Fatal(err)
		}
		if err := l.b.AddAddr(l.vip.String()); err != nil {
			t.Fatal(err)
		}
		if err := ra.LooksAlive(ctx); err != nil {
			t.Errorf("LooksAlive: %v", err)
		}
		err := ra.IsAlive(ctx)
		if !errors.Is(err, resource.ErrNodeLocal) || !strings.Contains(err.Error(), l.b.MAC.String()) {
			t.Fatalf("IsAlive with B also holding the address: %v, want node-local naming %s", err, l.b.MAC)
		}
	})
}

// TestExternalRemovalPushesFailure: `ip addr del` by someone else is pushed
// to the failure handler, and LooksAlive fails.
func TestExternalRemovalPushesFailure(t *testing.T) {
	families(t, func(t *testing.T, v6 bool) {
		l := newLab(t, v6)
		ctx, cancel := context.WithTimeout(context.Background(), guard)
		defer cancel()
		ra := l.open(t, l.a, resource.Properties{"probe_count": 0})
		failed := make(chan error, 4)
		ra.SetFailureHandler(func(err error) { failed <- err })
		if err := ra.Online(ctx); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-failed:
			t.Fatalf("failure pushed before anything happened: %v", err)
		default:
		}
		l.delAddr(t, l.a)
		select {
		case err := <-failed:
			if !strings.Contains(err.Error(), "address") {
				t.Errorf("pushed %v, want an address failure", err)
			}
		case <-ctx.Done():
			t.Fatal("no failure pushed after the address was removed")
		}
		if err := ra.LooksAlive(ctx); err == nil {
			t.Fatal("LooksAlive nil after the address was removed")
		}
		if err := ra.Offline(ctx); err != nil {
			t.Fatalf("Offline of a removed address: %v", err)
		}
	})
}

// TestLinkDownPushesFailure: pulling the cable (bridge port down, the host
// sees no carrier) is pushed as a node-local failure.
func TestLinkDownPushesFailure(t *testing.T) {
	l := newLab(t, false)
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	ra := l.open(t, l.a, resource.Properties{"probe_count": 0})
	failed := make(chan error, 4)
	ra.SetFailureHandler(func(err error) { failed <- err })
	if err := ra.Online(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l.a.SetPortUp(false); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-failed:
		if !errors.Is(err, resource.ErrNodeLocal) || !strings.Contains(err.Error(), "link") {
			t.Errorf("pushed %v, want node-local link failure", err)
		}
	case <-ctx.Done():
		t.Fatal("no failure pushed after the link lost carrier")
	}
	if err := ra.LooksAlive(ctx); err == nil {
		t.Fatal("LooksAlive nil with the link down")
	}
	// Online refuses to bind on a link without carrier.
	if err := ra.Terminate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := ra.Online(ctx); !errors.Is(err, resource.ErrNodeLocal) {
		t.Fatalf("Online with the link down: %v, want node-local", err)
	}
}

// TestNoPushOnOffline: our own Offline is not reported as a failure.
func TestNoPushOnOffline(t *testing.T) {
	l := newLab(t, false)
	ctx := context.Background()
	ra := l.open(t, l.a, resource.Properties{"probe_count": 0})
	failed := make(chan error, 4)
	ra.SetFailureHandler(func(err error) { failed <- err })
	for range 20 {
		if err := ra.Online(ctx); err != nil {
			t.Fatal(err)
		}
		if err := ra.Offline(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// A later external change proves the view is still live; it must not
	// push either, since we are offline.
	if err := l.a.AddAddr(l.vip.String()); err != nil {
		t.Fatal(err)
	}
	l.delAddr(t, l.a)
	if err := ra.Online(ctx); err != nil { // view caught up with the changes
		t.Fatal(err)
	}
	select {
	case err := <-failed:
		t.Fatalf("failure pushed for our own Offline: %v", err)
	default:
	}
}

// TestAutomaticInterfaceAndLabel: no interface given, the one whose subnet
// contains the address is chosen; the label reaches the kernel.
func TestAutomaticInterfaceAndLabel(t *testing.T) {
	l := newLab(t, false)
	ctx := context.Background()
	ra := l.open(t, l.a, resource.Properties{"label": "eth0:vip", "announce": []any{}})
	if ra.linkName != "eth0" {
		t.Fatalf("chose interface %q, want eth0", ra.linkName)
	}
	if err := ra.Online(ctx); err != nil {
		t.Fatal(err)
	}
	lk, _ := l.a.Handle.LinkByName("eth0")
	as, err := l.a.Handle.AddrList(lk, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, a := range as {
		if prefixOf(a.IPNet) == l.vip {
			found = true
			if a.Label != "eth0:vip" {
				t.Errorf("label %q, want eth0:vip", a.Label)
			}
		}
	}
	if !found {
		t.Fatal("address not bound")
	}
}

// TestEnvironmentConfigErrors: properties that are well-formed but do not
// fit the node are configuration errors naming the property, from both
// Validate and Open.
func TestEnvironmentConfigErrors(t *testing.T) {
	l := newLab(t, false)
	ctx := context.Background()
	typ := NewType()
	tests := []struct {
		name  string
		props resource.Properties
		field string
	}{
		{"no such interface", resource.Properties{"address": "192.0.2.10/24", "interface": "nope0", "netns": l.a.Path}, "interface"},
		{"not in any local subnet", resource.Properties{"address": "198.51.100.10/24", "netns": l.a.Path}, "address"},
		{"IPv6 not in any local subnet", resource.Properties{"address": "2001:db8:1::10/64", "netns": l.a.Path}, "address"},
		{"bad CIDR", resource.Properties{"address": "192.0.2.300/24", "netns": l.a.Path}, "address"},
		{"missing namespace", resource.Properties{"address": "192.0.2.10/24", "netns": filepath.Join(t.TempDir(), "none")}, "netns"},
		{"not Ethernet", resource.Properties{"address": "192.0.2.10/24", "interface": "lo", "netns": l.a.Path}, "interface"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for what, err := range map[string]error{
				"Validate": typ.Validate(ctx, tt.props),
				"Open":     openErr(typ, tt.props),
			} {
				var re *resource.Error
				if !errors.As(err, &re) || re.Class != resource.ClassConfiguration || re.Field != tt.field {
					t.Errorf("%s: got %v, want a configuration error naming %q", what, err, tt.field)
				}
			}
		})
	}
	if err := typ.Validate(ctx, resource.Properties{"address": "192.0.2.10/24", "netns": l.a.Path}); err != nil {
		t.Errorf("Validate of good properties: %v", err)
	}
}

func openErr(typ resource.Type, p resource.Properties) error {
	r, err := typ.Open(context.Background(), resource.OpenRequest{Properties: p})
	if err == nil {
		r.(resource.Closer).Close()
	}
	return err
}

// TestWithNetNSOption: the Type option supplies the namespace when the
// property is absent.
func TestWithNetNSOption(t *testing.T) {
	l := newLab(t, false)
	err := NewType(WithNetNS(l.a.Path)).Validate(context.Background(), resource.Properties{"address": "192.0.2.10/24", "interface": "eth0"})
	if err != nil {
		t.Fatalf("Validate with WithNetNS: %v", err)
	}
}

// TestTerminateCancelsOnline: Terminate while Online waits in a long probe
// returns promptly and makes Online fail without binding.
func TestTerminateCancelsOnline(t *testing.T) {
	testenv.RequireRoot(t)
	l := newLab(t, false)
	ra := l.open(t, l.a, resource.Properties{"probe_count": 1, "probe_wait": "1m"})
	probing := make(chan struct{})
	ra.hookProbing = func() { close(probing) }
	errc := make(chan error, 1)
	go func() { errc <- ra.Online(context.Background()) }()
	<-probing
	if err := ra.Terminate(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if err == nil {
			t.Fatal("Online returned nil after Terminate")
		}
	case <-time.After(guard):
		t.Fatal("Online still running after Terminate")
	}
	if l.has(t, l.a) {
		t.Fatal("address bound after Terminate")
	}
}

// TestOnlineOnBareInterface: a host whose interface has no address at all
// (no IPv4 for arp.Dial to use) still probes, binds and announces, since
// frames go through raw packet sockets.
func TestOnlineOnBareInterface(t *testing.T) {
	l := newLab(t, false)
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	lk, _ := l.b.Handle.LinkByName("eth0")
	if err := l.b.Handle.AddrDel(lk, &netlink.Addr{IPNet: mustIPNet("192.0.2.2/24")}); err != nil {
		t.Fatal(err)
	}
	w := watchNeigh(t, l.client, l.vip.Addr())
	if err := l.client.SetNeigh(l.vip.Addr(), l.bogusMAC); err != nil {
		t.Fatal(err)
	}
	rb := l.open(t, l.b, resource.Properties{"interface": "eth0"})
	if err := rb.Online(ctx); err != nil {
		t.Fatalf("Online on an interface without addresses: %v", err)
	}
	w.wait(t, ctx, l.b.MAC)
	// And the probe still works from there: A is refused.
	ra := l.open(t, l.a, nil)
	if err := ra.Online(ctx); !errors.Is(err, resource.ErrNodeLocal) {
		t.Fatalf("A Online while B holds the address: %v, want node-local", err)
	}
}

// TestCloseRemovesAddress: Close of an instance left online removes the
// address; calls after Close do not panic and Online fails.
func TestCloseRemovesAddress(t *testing.T) {
	l := newLab(t, false)
	ctx := context.Background()
	r, err := NewType().Open(ctx, resource.OpenRequest{Properties: l.props(l.a, resource.Properties{"probe_count": 0, "refresh": "10ms"})})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Online(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.(resource.Closer).Close(); err != nil {
		t.Fatal(err)
	}
	if l.has(t, l.a) {
		t.Fatal("address still bound after Close")
	}
	if err := r.Online(ctx); err == nil {
		t.Fatal("Online after Close returned nil")
	}
	for what, fn := range map[string]func(context.Context) error{"Offline": r.Offline, "Terminate": r.Terminate} {
		if err := fn(ctx); err != nil {
			t.Errorf("%s after Close: %v", what, err)
		}
	}
	if r.LooksAlive(ctx) == nil || r.IsAlive(ctx) == nil {
		t.Error("health checks pass after Close")
	}
	if err := r.(resource.Closer).Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestRefreshReachesClientAndOfflineStopsIt: with a refresh period the
// client keeps receiving announcements (counted with a packet socket in its
// namespace); Offline ends the schedule.
func TestRefreshReachesClientAndOfflineStopsIt(t *testing.T) {
	families(t, func(t *testing.T, v6 bool) {
		l := newLab(t, v6)
		ctx, cancel := context.WithTimeout(context.Background(), guard)
		defer cancel()
		cw, err := openWire(l.client.Path, link{Name: "eth0", Index: l.client.Index, MAC: l.client.MAC}, l.vip.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer cw.Close()
		r := l.open(t, l.a, resource.Properties{"probe_count": 0, "announce": []any{"0s"}, "refresh": "10ms"})
		if err := r.Online(ctx); err != nil {
			t.Fatal(err)
		}
		dl, _ := ctx.Deadline()
		cw.conn.SetReadDeadline(dl)
		buf := make([]byte, 1600)
		for n := 0; n < 5; {
			k, _, err := cw.conn.ReadFrom(buf)
			if err != nil {
				t.Fatalf("after %d announcements: %v", n, err)
			}
			// A's announcement is, from the client's side, another host
			// claiming the address.
			if mac, ok := cw.conflict(buf[:k], true); ok && mac.String() == l.a.MAC.String() {
				n++
			}
		}
		a := r.ann
		if a == nil {
			t.Fatal("no announcer while online")
		}
		if err := r.Offline(ctx); err != nil {
			t.Fatal(err)
		}
		if r.ann != nil {
			t.Fatal("announcer still set after Offline")
		}
		select {
		case <-a.done:
		default:
			t.Fatal("the announcement schedule still runs after Offline")
		}
	})
}

// TestLostSubscriptionIsFailureAndOnlineRenewsIt: a broken netlink
// subscription (simulated: the view records the error as its reader would)
// is pushed as a failure; the next Online subscribes again, and the new
// view detects a removal.
func TestLostSubscriptionIsFailureAndOnlineRenewsIt(t *testing.T) {
	l := newLab(t, false)
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	r := l.open(t, l.a, resource.Properties{"probe_count": 0})
	failed := make(chan error, 4)
	r.SetFailureHandler(func(err error) { failed <- err })
	if err := r.Online(ctx); err != nil {
		t.Fatal(err)
	}
	old := r.currentView()
	old.set(func(st *viewState) { st.Err = errors.New("simulated ENOBUFS") })
	if err := <-failed; !strings.Contains(err.Error(), "simulated") {
		t.Fatalf("pushed %v, want the subscription error", err)
	}
	if err := r.LooksAlive(ctx); err == nil {
		t.Fatal("LooksAlive nil with a broken subscription")
	}
	if err := r.Terminate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.Online(ctx); err != nil {
		t.Fatalf("Online after a lost subscription: %v", err)
	}
	if r.currentView() == old {
		t.Fatal("Online kept the broken view")
	}
	if err := r.LooksAlive(ctx); err != nil {
		t.Fatalf("LooksAlive with the renewed view: %v", err)
	}
	l.delAddr(t, l.a)
	select {
	case err := <-failed:
		if !strings.Contains(err.Error(), "address") {
			t.Errorf("pushed %v, want the removal", err)
		}
	case <-ctx.Done():
		t.Fatal("renewed view did not see the removal")
	}
}

// TestIsAliveAdoptsBoundAddress: a new instance (a restarted host) that
// is not online finds the address a previous run left bound: IsAlive
// (what the monitor's Probe falls back to) adopts it, and the instance is
// online from then on. Without the address, IsAlive still fails.
func TestIsAliveAdoptsBoundAddress(t *testing.T) {
	families(t, func(t *testing.T, v6 bool) {
		l := newLab(t, v6)
		ctx, cancel := context.WithTimeout(context.Background(), guard)
		defer cancel()
		fresh := l.open(t, l.a, nil)
		if err := fresh.IsAlive(ctx); err == nil {
			t.Fatal("IsAlive of an instance that is not online, with no address bound: nil")
		}
		if err := l.a.AddAddr(l.vip.String()); err != nil { // what the crashed run left
			t.Fatal(err)
		}
		r := l.open(t, l.a, nil)
		if err := r.IsAlive(ctx); err != nil {
			t.Fatalf("IsAlive with the address bound here: %v, want it adopted", err)
		}
		if err := r.LooksAlive(ctx); err != nil {
			t.Errorf("LooksAlive after the adoption: %v", err)
		}
		if err := r.Offline(ctx); err != nil {
			t.Fatal(err)
		}
		if l.has(t, l.a) {
			t.Error("address still bound after Offline of the adopting instance")
		}
	})
}
