package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/sftkit/sft/cluster/peer"
	"github.com/sftkit/sft/examples/host/api"
	"github.com/sftkit/sft/examples/host/internal/clusterlab"
)

// peer measures peer mode (-mode peer) with the defaults (10 ms x 24):
// two nodes, the client as the reference, the group's app checked by a
// TCP connect. Kill the holder runs times (the returning node does not
// steal: the holder alternates); then pct % loss on the holder's link,
// both ways, for d per loss level: takeovers (the address's holder
// changing, and peer-takeover events) and peer alerts.
func (b *bench) peer(runs int, d time.Duration, losses string) int {
	code := 0
	if err := b.peerKills(runs); err != nil {
		fmt.Fprintf(os.Stderr, "clusterbench: peer: kill: %v\n", err)
		code = 1
	}
	for _, s := range strings.Split(losses, ",") {
		if s == "" {
			continue
		}
		var pct int
		if _, err := fmt.Sscan(s, &pct); err != nil || pct <= 0 || pct >= 100 {
			fmt.Fprintf(os.Stderr, "clusterbench: -loss %q: want percentages 1-99\n", s)
			return 2
		}
		if err := b.peerLoss(pct, d); err != nil {
			fmt.Fprintf(os.Stderr, "clusterbench: peer: loss %d%%: %v\n", pct, err)
			code = 1
		}
	}
	return code
}

func (b *bench) peerLab() (*clusterlab.Lab, *clusterlab.Watch, string, error) {
	l, err := b.startLab(clusterlab.Options{Mode: clusterlab.ModePeer})
	if err != nil {
		return l, nil, "", err
	}
	w, err := l.Watch()
	if err != nil {
		return l, nil, "", err
	}
	owner, err := answering(w, time.Minute, "")
	if err == nil {
		err = peerReady(l, otherNode(l, owner))
	}
	return l, w, owner, err
}

// peerReady waits until node watches the group with the holder alive and
// the peer's sft answering.
func peerReady(l *clusterlab.Lab, node string) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if st, err := l.Status(node); err == nil && st.Peer != nil && st.Peer.PeerUp {
			if g := st.Peer.Groups; len(g) > 0 && g[0].Role == peer.Watcher && g[0].State == "alive" {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s does not watch the group (holder alive, peer up) within 30s", node)
}

func otherNode(l *clusterlab.Lab, name string) string {
	for _, n := range l.Nodes {
		if n.Name != name {
			return n.Name
		}
	}
	return ""
}

// peerKills kills the holder runs times; the killed node comes back and
// watches (it does not steal), and is the next run's survivor.
func (b *bench) peerKills(runs int) (err error) {
	l, w, owner, err := b.peerLab()
	if l != nil {
		defer b.done(l)
		defer func() {
			if err != nil {
				keepLogs(l, "peer-kill")
			}
		}()
	}
	if w != nil {
		defer w.Stop()
	}
	if err != nil {
		return err
	}
	return killRuns(l, w, owner, runs, "peer", func(killed, next string) error {
		if err := peerReady(l, killed); err != nil {
			return err
		}
		if h := l.Holders(); !slices.Equal(h, []string{next}) {
			return fmt.Errorf("after %s came back the holders are %v (it must not steal)", killed, h)
		}
		return nil
	})
}

// peerLoss drops pct % of the holder's frames both ways for d.
func (b *bench) peerLoss(pct int, d time.Duration) (err error) {
	l, w, owner, err := b.peerLab()
	if l != nil {
		defer b.done(l)
		defer func() {
			if err != nil {
				keepLogs(l, fmt.Sprintf("peer-loss%d", pct))
			}
		}()
	}
	if w != nil {
		defer w.Stop()
	}
	if err != nil {
		return err
	}
	t0, err := dropFor(l, owner, pct, d)
	if err != nil {
		return err
	}
	rec := w.Snapshot()
	rec.Samples = slices.DeleteFunc(rec.Samples, func(s clusterlab.Sample) bool { return s.At.After(t0.Add(d)) })
	takeovers, alerts := 0, map[string]int{}
	for _, n := range l.Nodes {
		for _, e := range peerEvents(l, n.Name, t0) {
			switch {
			case e.Kind == "peer-"+string(peer.EventTakeover):
				takeovers++
			case isPeerAlert(e.Kind):
				alerts[e.Kind]++
			}
		}
	}
	list := "none"
	if len(alerts) > 0 {
		var parts []string
		for k, n := range alerts {
			parts = append(parts, fmt.Sprintf("%s %d", k, n))
		}
		slices.Sort(parts)
		list = strings.Join(parts, ", ")
	}
	fmt.Printf("RESULT peer loss %d%% on %s's link both ways for %s: takeovers %d, holder changes %d, split-brain %s, alerts: %s\n",
		pct, owner, d, takeovers, holderChanges(rec, t0), splitSince(rec, t0), list)
	return nil
}

// peerEvents is node's event history after t0 (peer events only).
func peerEvents(l *clusterlab.Lab, node string, t0 time.Time) []api.Event {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c := api.NewUnixClient(l.Node(node).Socket)
	defer c.Close()
	var out []api.Event
	_ = c.Events(ctx, false, func(e api.Event) error {
		if strings.HasPrefix(e.Kind, "peer-") && e.Time.After(t0) {
			out = append(out, e)
		}
		return nil
	})
	return out
}

func isPeerAlert(kind string) bool {
	k, ok := strings.CutPrefix(kind, "peer-")
	return ok && peer.EventKind(k).IsAlert()
}
