package peer

import (
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/sftkit/sft/policy"
)

// Active/passive: kill the owner, the address moves; bring it back, it
// does not steal the address (recovery), and a Move-free pair stays put.
func TestLabKillOwnerMovesAndReturnDoesNotSteal(t *testing.T) {
	l := newLab(t, []string{"a"}, nil)
	a := l.start("a")
	b := l.start("b")
	a.wait(t, EventOnline, 30*time.Second)
	l.waitServed(labVIP1, "a", 30*time.Second)

	l.dead("a")
	l.waitServed(labVIP1, "b", 30*time.Second)
	b.wait(t, EventTakeover, 5*time.Second)
	if !l.holds("b", labVIP1) {
		t.Fatal("b serves but does not hold the address")
	}

	a = l.reboot("a")
	a.wait(t, EventRecovery, 30*time.Second)
	time.Sleep(time.Second)
	if l.holds("a", labVIP1) || !l.holds("b", labVIP1) {
		t.Fatalf("after recovery: a holds %v, b holds %v", l.holds("a", labVIP1), l.holds("b", labVIP1))
	}
	if got := l.served(labVIP1, time.Second); got != "b" {
		t.Fatalf("served by %q after a returned", got)
	}
	if n := a.count(EventTakeover); n != 0 {
		t.Fatalf("returning a took over %d times", n)
	}
}

// A node cut off from everything (carrier up) sees the owner silent but
// the reference silent too: it takes nothing.
func TestLabIsolatedTakesNothing(t *testing.T) {
	l := newLab(t, []string{"a"}, nil)
	a := l.start("a")
	b := l.start("b")
	a.wait(t, EventOnline, 30*time.Second)
	l.waitServed(labVIP1, "a", 30*time.Second)
	time.Sleep(500 * time.Millisecond) // b has seen replies

	l.partition("b")
	b.wait(t, EventIsolated, 30*time.Second)
	time.Sleep(time.Second)
	if n := b.count(EventTakeover); n != 0 || l.holds("b", labVIP1) {
		t.Fatalf("isolated b took over (%d events, holds %v)", n, l.holds("b", labVIP1))
	}
	if !l.holds("a", labVIP1) {
		t.Fatal("a lost the address")
	}
}

// Service dead, host pinging: an alert and no takeover.
func TestLabServiceDeadAlertsOnly(t *testing.T) {
	l := newLab(t, []string{"a"}, nil)
	a := l.start("a")
	b := l.start("b")
	a.wait(t, EventOnline, 30*time.Second)
	l.waitServed(labVIP1, "a", 30*time.Second)
	time.Sleep(500 * time.Millisecond)

	a.signal(syscall.SIGUSR1) // the service dies, the host answers pings
	e := b.wait(t, EventServiceDead, 30*time.Second)
	if !e.Alert {
		t.Fatalf("service-dead is no alert: %+v", e)
	}
	time.Sleep(2 * time.Second)
	if b.count(EventTakeover)+b.count(EventMoved) != 0 || l.holds("b", labVIP1) || !l.holds("a", labVIP1) {
		t.Fatal("b stole the address of a host that answers")
	}
}

// With the release request, the same failure becomes an orderly move:
// a confirms its service is dead, goes offline, b takes the group.
func TestLabServiceDeadReleaseMoves(t *testing.T) {
	l := newLab(t, []string{"a"}, func(g *Group) { g.Release = true })
	a := l.start("a")
	b := l.start("b")
	a.wait(t, EventOnline, 30*time.Second)
	l.waitServed(labVIP1, "a", 30*time.Second)
	time.Sleep(500 * time.Millisecond)

	a.signal(syscall.SIGUSR1)
	b.wait(t, EventMoved, 30*time.Second)
	a.wait(t, EventReleased, 5*time.Second)
	l.waitServed(labVIP1, "b", 10*time.Second)
	if l.holds("a", labVIP1) {
		t.Fatal("a still holds the address after releasing it")
	}
}

// A release request signed with the wrong key gets no answer: the
// service stays dead on a (an alert at b), nothing moves.
func TestLabReleaseNeedsKey(t *testing.T) {
	l := newLab(t, []string{"a"}, func(g *Group) { g.Release = true })
	bc := l.cfg["b"]
	bc.Key = []byte("another-key-0123456")
	l.cfg["b"] = bc
	a := l.start("a")
	b := l.start("b")
	a.wait(t, EventOnline, 30*time.Second)
	l.waitServed(labVIP1, "a", 30*time.Second)
	time.Sleep(500 * time.Millisecond)
	a.signal(syscall.SIGUSR1)
	b.wait(t, EventReleaseRefused, 30*time.Second)
	if a.count(EventReleased) != 0 || !l.holds("a", labVIP1) {
		t.Fatal("a released the group to a node with the wrong key")
	}
}

// Active/active: kill either node, the survivor serves both addresses.
func TestLabActiveActive(t *testing.T) {
	for _, victim := range []string{"a", "b"} {
		t.Run("kill-"+victim, func(t *testing.T) {
			l := newLab(t, []string{"a", "b"}, nil)
			a := l.start("a")
			b := l.start("b")
			a.wait(t, EventOnline, 30*time.Second)
			b.wait(t, EventOnline, 30*time.Second)
			l.waitServed(labVIP1, "a", 30*time.Second)
			l.waitServed(labVIP2, "b", 30*time.Second)
			survivor := map[string]string{"a": "b", "b": "a"}[victim]
			l.dead(victim)
			l.waitServed(labVIP1, survivor, 30*time.Second)
			l.waitServed(labVIP2, survivor, 30*time.Second)
			if !l.holds(survivor, labVIP1) || !l.holds(survivor, labVIP2) {
				t.Fatal("survivor does not hold both addresses")
			}
		})
	}
}

// lossSeconds is how long each loss level runs: 10 s in CI,
// SFT_PEER_LOSS_SECONDS (the benchmark uses 60).
func lossSeconds(t testing.TB) time.Duration {
	if s := os.Getenv("SFT_PEER_LOSS_SECONDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			t.Fatalf("SFT_PEER_LOSS_SECONDS=%q: want seconds", s)
		}
		return time.Duration(n) * time.Second
	}
	return 10 * time.Second
}

// 20 % and 40 % loss on the owner's link: no takeover, in either
// direction of an active/active pair.
func TestLabLossNoTakeover(t *testing.T) {
	l := newLab(t, []string{"a", "b"}, nil)
	a := l.start("a")
	b := l.start("b")
	a.wait(t, EventOnline, 30*time.Second)
	b.wait(t, EventOnline, 30*time.Second)
	l.waitServed(labVIP1, "a", 30*time.Second)
	l.waitServed(labVIP2, "b", 30*time.Second)
	for _, pct := range []int{20, 40} {
		table := l.dropFrom("a", pct)
		time.Sleep(lossSeconds(t))
		l.unnft(l.net.Switch, table)
		takeovers := a.count(EventTakeover) + b.count(EventTakeover)
		t.Logf("%d%% loss for %v: %d takeovers, %d isolated, %d service-dead alerts", pct, lossSeconds(t),
			takeovers, a.count(EventIsolated)+b.count(EventIsolated), a.count(EventServiceDead)+b.count(EventServiceDead))
		if takeovers != 0 {
			t.Fatalf("%d%% loss: %d takeovers", pct, takeovers)
		}
	}
	if !l.holds("a", labVIP1) || !l.holds("b", labVIP2) || l.holds("b", labVIP1) || l.holds("a", labVIP2) {
		t.Fatal("an address moved under loss")
	}
}

// Manual failback: after recovery, Move brings the group home in order
// (b releases, then a binds).
func TestLabManualFailbackMove(t *testing.T) {
	l := newLab(t, []string{"a"}, nil)
	a := l.start("a")
	b := l.start("b")
	a.wait(t, EventOnline, 30*time.Second)
	l.waitServed(labVIP1, "a", 30*time.Second)
	l.dead("a")
	l.waitServed(labVIP1, "b", 30*time.Second)
	a = l.reboot("a")
	a.wait(t, EventRecovery, 30*time.Second)

	a.signal(syscall.SIGUSR2) // Move(web1, "a")
	a.wait(t, EventMoved, 30*time.Second)
	b.wait(t, EventReleased, 5*time.Second)
	l.waitServed(labVIP1, "a", 10*time.Second)
	if l.holds("b", labVIP1) || !l.holds("a", labVIP1) {
		t.Fatal("address not moved home")
	}
}

// Automatic failback: once the returning home node has passed both
// checks for the stable period, the holder moves the group home.
func TestLabAutomaticFailback(t *testing.T) {
	l := newLab(t, []string{"a"}, func(g *Group) {
		g.Failback = policy.Failback{Mode: policy.FailbackImmediate}
		g.StablePeriod = 2 * time.Second
	})
	a := l.start("a")
	b := l.start("b")
	a.wait(t, EventOnline, 30*time.Second)
	l.waitServed(labVIP1, "a", 30*time.Second)
	l.dead("a")
	l.waitServed(labVIP1, "b", 30*time.Second)
	returned := time.Now()
	a = l.reboot("a")
	a.wait(t, EventRecovery, 30*time.Second)
	b.wait(t, EventFailback, 30*time.Second)
	if d := time.Since(returned); d < 2*time.Second {
		t.Fatalf("failed back after %v, before the stable period", d)
	}
	l.waitServed(labVIP1, "a", 10*time.Second)
	if l.holds("b", labVIP1) {
		t.Fatal("b still holds the address")
	}
}
