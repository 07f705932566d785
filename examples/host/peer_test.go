package main

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sftkit/sft/cluster/peer"
	"github.com/sftkit/sft/examples/host/api"
	"github.com/sftkit/sft/examples/host/internal/clusterlab"
)

// TestPeerFailover runs two sftd nodes in peer mode (cluster.mode: peer)
// in namespaces, with a client that is also the reference (gateway): the
// group starts on its home a (or, if a was slower to start than b's
// start-up grace, on b); its holder is killed, the other takes the
// address over; the killed node comes back and does not steal it (it
// finds the address held and watches); a move by hand brings it back. The library's lab covers the
// rest (isolation, service dead, release, active/active, loss).
func TestPeerFailover(t *testing.T) {
	lab := newLab(t, clusterlab.Options{Mode: clusterlab.ModePeer})
	w, err := lab.Watch()
	require.NoError(t, err)
	defer w.Stop()
	a := answering(t, w, 60*time.Second)
	b := map[string]string{"a": "b", "b": "a"}[a]
	waitFor(t, 20*time.Second, "both nodes see each other", func() bool {
		return peerView(lab, a).PeerUp && peerView(lab, b).PeerUp
	})
	waitFor(t, 10*time.Second, b+" watches "+a, func() bool {
		g := peerGroup(t, lab, b)
		return g.Role == peer.Watcher && g.Owner == a
	})
	require.Equal(t, a, lab.Owner(a, "web"))

	t.Run("kill the holder", func(t *testing.T) {
		t0 := time.Now()
		require.NoError(t, lab.SetLink(a, -1, false))
		lab.Kill(a)
		require.Equal(t, b, answering(t, w, 20*time.Second, a))
		rec := w.Snapshot()
		t.Logf("%s answers after %s; outage %s", b, time.Since(t0), rec.Outage(t0))
		require.Equal(t, []string{b}, rec.Answerers(rec.FirstHeld(b, t0)))
		noSplitBrain(t, rec, t0, a) // the dead node's namespace keeps its address, unreachable
		// The sniffer stamps a frame when it reads it: a's last ARP frame
		// before the cut can be stamped after t0. What matters is that b's
		// claim comes last and nothing switches back (noSplitBrain).
		claims := rec.ARPClaimants(t0)
		require.NotEmpty(t, claims)
		require.Equal(t, b, claims[len(claims)-1], "ARP claimants after the kill: %v", claims)
		waitFor(t, 10*time.Second, b+" reports the takeover", func() bool { return peerGroup(t, lab, b).Role == peer.Holder })
		require.Contains(t, peerGroup(t, lab, b).Reason, "took over 10.77.0.50")
		require.True(t, hasEventKind(t, lab, b, "peer-takeover"))
		require.Equal(t, b, lab.Owner(b, "web"))
	})

	t.Run("the returning node does not steal", func(t *testing.T) {
		require.NoError(t, lab.Reboot(a)) // the dead node's stale address is gone first
		t1 := time.Now()
		waitFor(t, 30*time.Second, a+" finds the address held", func() bool {
			return hasEventKind(t, lab, a, "peer-"+string(peer.EventRecovery))
		})
		waitFor(t, 10*time.Second, a+" watches "+b, func() bool {
			g := peerGroup(t, lab, a)
			return g.Role == peer.Watcher && g.Owner == b && g.State == "alive"
		})
		time.Sleep(2 * time.Second) // past a's grace: it must still not take anything
		rec := w.Snapshot()
		require.Equal(t, []string{b}, rec.Answerers(t1))
		require.Equal(t, []string{b}, lab.Holders())
		noSplitBrain(t, rec, t1)
		require.Zero(t, rec.OwnerChanges(t1))
		require.Contains(t, peerGroup(t, lab, a).Reason, "held by another node")
		require.Equal(t, b, lab.Owner(a, "web"), "the returning node's status names the owner")
		st, err := lab.Status(a)
		require.NoError(t, err)
		require.Equal(t, "Offline", st.Groups[0].State.String(), "the refused Online is cleared: the group is simply not here")
		require.False(t, st.Groups[0].Failed)
	})

	t.Run("manual failback", func(t *testing.T) {
		t2 := time.Now()
		require.NoError(t, lab.Move(b, "web", a))
		require.Equal(t, a, answering(t, w, 20*time.Second, b))
		rec := w.Snapshot()
		noSplitBrain(t, rec, t2)
		t.Logf("move back: outage %s", rec.Outage(t2))
		require.Equal(t, peer.Holder, peerGroup(t, lab, a).Role)
		require.Equal(t, a, lab.Owner(b, "web"))
	})
}

// peerView is node's peer-mode status (zero if it does not answer).
func peerView(lab *clusterlab.Lab, node string) peer.Status {
	st, err := lab.Status(node)
	if err != nil || st.Peer == nil {
		return peer.Status{}
	}
	return *st.Peer
}

// peerGroup is the web group in node's peer-mode status.
func peerGroup(t *testing.T, lab *clusterlab.Lab, node string) peer.GroupStatus {
	t.Helper()
	for _, g := range peerView(lab, node).Groups {
		if g.Name == "web" {
			return g
		}
	}
	return peer.GroupStatus{}
}

// hasEventKind reports whether node's event history has an event of kind.
func hasEventKind(t *testing.T, lab *clusterlab.Lab, node, kind string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c := api.NewUnixClient(lab.Node(node).Socket)
	defer c.Close()
	var kinds []string
	_ = c.Events(ctx, false, func(e api.Event) error {
		kinds = append(kinds, e.Kind)
		return nil
	})
	return slices.ContainsFunc(kinds, func(k string) bool { return strings.EqualFold(k, kind) })
}
