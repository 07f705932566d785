package cli

import (
	"cmp"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/sftkit/sft/cluster/peer"
	"github.com/sftkit/sft/examples/host/config"
	"github.com/sftkit/sft/internal/health"
)

// printPeer writes the peer-mode part of the status: both nodes, every
// group's address, home, role here, owner, the watcher's view and the
// reason (the group's newest peer event).
func printPeer(w io.Writer, ps peer.Status, now time.Time) {
	fmt.Fprintf(w, "\nPeer mode (seen from %s)\n", ps.Node)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tSTATE\tLAST ANSWER")
	fmt.Fprintf(tw, "%s\tthis node\t-\n", ps.Node)
	state, seen := "unknown (not asked yet)", "-"
	if ps.PeerChecked {
		state = "up"
		if !ps.PeerUp {
			state = "not answering: " + oneLine(ps.PeerError)
		}
	}
	if !ps.PeerSeen.IsZero() {
		seen = now.Sub(ps.PeerSeen).Round(time.Millisecond).String() + " ago"
	}
	fmt.Fprintf(tw, "%s\t%s\t%s\n", ps.Peer, state, seen)
	_ = tw.Flush()
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GROUP\tADDRESS\tHOME\tHERE\tOWNER\tSTATE\tMISSES\tCHECKS FAILED\tREASON")
	for _, g := range ps.Groups {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\n", g.Name, g.Address, g.Home, g.Role, orDash(g.Owner), g.State, g.Misses, g.ServiceFailures, oneLine(orDash(g.Reason)))
	}
	_ = tw.Flush()
}

// simulatePeer is `simulate` for a peer-mode config: every scenario (one
// per script line, peer.ParseScenario; none: peer.DefaultScenarios) runs
// the watcher's decisions for every group in simulated time, with the
// config's detect settings and the group's functional check.
func simulatePeer(cfg *config.Config, script string, env Env) int {
	if script == "" {
		script = peer.DefaultScenarios
	}
	scs, err := peer.ParseScenarios(script)
	if err != nil {
		fmt.Fprintf(env.Stderr, "simulate: script: %v\n", err)
		return 1
	}
	// Any node's view will do: the watcher's logic is the same on both.
	pc := cfg.PeerConfig(cfg.Cluster.Nodes[0].Name, nil)
	d := pc.Detect.WithDefaults()
	fmt.Fprintf(env.Stdout, "peer mode: echo every %v, dead after %d unanswered (%v)\n", d.Interval, d.Misses, d.Window())
	for _, sc := range scs {
		fmt.Fprintf(env.Stdout, "scenario %s\n", sc)
		for _, g := range pc.Groups {
			s := sc
			if !g.Check.IsZero() {
				s.CheckEvery = cmp.Or(g.Check.Interval.D(), health.DefaultInterval)
				s.CheckTimeout = cmp.Or(s.CheckTimeout, g.Check.Timeout.D(), health.DefaultTimeout)
			}
			r := peer.Simulate(d, g, s)
			fmt.Fprintf(env.Stdout, "  %s: %s (%d echoes, %d lost)\n", g.Name, simOutcome(g, s, r), r.Echoes, r.Lost)
		}
	}
	return 0
}

// simOutcome says what the watcher would do in one simulated run.
func simOutcome(g peer.Group, s peer.Scenario, r peer.SimResult) string {
	final := peer.Alive
	if n := len(r.Decisions); n > 0 {
		final = r.Decisions[n-1].Verdict
	}
	switch {
	case r.FirstDead >= 0 && g.NoTakeover:
		return fmt.Sprintf("judged dead at +%v: alert only (no_takeover)", r.FirstDead)
	case r.FirstDead >= 0 && s.HostDeadAt > 0 && r.FirstDead >= s.HostDeadAt:
		return fmt.Sprintf("takeover at +%v, %v after the holder died", r.FirstDead, r.FirstDead-s.HostDeadAt)
	case r.FirstDead >= 0:
		return fmt.Sprintf("FALSE TAKEOVER at +%v (the holder was alive)", r.FirstDead)
	case final == peer.ServiceDead && g.Release:
		return fmt.Sprintf("service dead: alert, then a release request (verdict %s)", final)
	case final == peer.ServiceDead:
		return fmt.Sprintf("service dead: alert, no takeover (verdict %s)", final)
	case s.HostDeadAt > 0:
		return fmt.Sprintf("NO TAKEOVER although the holder died (verdict %s)", final)
	}
	return fmt.Sprintf("no takeover (verdict %s)", final)
}
