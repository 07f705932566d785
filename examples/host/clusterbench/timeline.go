package main

import (
	"bufio"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/sftkit/sft/examples/host/internal/clusterlab"
)

// A failover's timeline: when each step was first seen after the kill,
// from the surviving nodes' logs (millisecond timestamps) and the watch.
type timeline struct {
	steps []time.Duration // per phase, since the kill; negative: not seen
}

// phases names the steps of a failover in order.
var phases = []string{
	"suspected",    // a survivor's detector finds the owner silent (W after its last heartbeat)
	"dead",         // a survivor's detector sees a majority agree
	"node-down",    // the new owner applies the committed node state
	"placed",       // ... and the committed placement
	"vip-online",   // the new owner's monitor has the address up (after its duplicate-address probe)
	"group-online", // the whole group is up there
	"address",      // the lab's sampler sees the address on the new owner
	"arp",          // the client sees the new owner's gratuitous ARP
	"answer",       // the client's first answer from the new owner
}

// failoverTimeline reads the timeline of a kill at t0 of owner, taken over
// by next.
func failoverTimeline(l *clusterlab.Lab, rec clusterlab.Record, t0 time.Time, owner, next string) timeline {
	var survivors []string
	for _, n := range l.Nodes {
		if n.Name != owner {
			survivors = append(survivors, n.LogFile)
		}
	}
	nextLog := l.Node(next).LogFile
	tl := timeline{steps: make([]time.Duration, len(phases))}
	at := func(t time.Time) time.Duration {
		if t.IsZero() {
			return -1
		}
		return t.Sub(t0)
	}
	tl.steps[0] = at(firstLine(survivors, t0, "event=peer-silent", "node="+owner+" "))
	tl.steps[1] = at(firstLine(survivors, t0, "event=node-dead", "node="+owner+" "))
	tl.steps[2] = at(firstLine([]string{nextLog}, t0, "msg=cluster ", "event=node-down", "node="+owner+" "))
	tl.steps[3] = at(firstLine([]string{nextLog}, t0, "msg=cluster ", "event=placement", "group=web"))
	tl.steps[4] = at(firstLine([]string{nextLog}, t0, "kind=state_changed", "resource=vip", "to=Online "))
	tl.steps[5] = at(firstLine([]string{nextLog}, t0, "msg=cluster ", "event=online", "group=web"))
	tl.steps[6] = at(rec.FirstHeld(next, t0))
	tl.steps[7] = -1
	for _, a := range rec.ARPs {
		if a.At.After(t0) && a.Node == next {
			tl.steps[7] = at(a.At)
			break
		}
	}
	tl.steps[8] = -1
	for _, p := range rec.Probes {
		if p.At.After(t0) && p.Node == next {
			tl.steps[8] = at(p.At)
			break
		}
	}
	return tl
}

func (tl timeline) String() string {
	var b strings.Builder
	for i, p := range phases {
		if i > 0 {
			b.WriteString(" ")
		}
		if tl.steps[i] < 0 {
			fmt.Fprintf(&b, "%s=?", p)
			continue
		}
		fmt.Fprintf(&b, "%s=%d", p, tl.steps[i].Milliseconds())
	}
	return b.String() + " (ms after the kill)"
}

// medianTimeline is the median of each step over the runs that saw it.
func medianTimeline(tls []timeline) timeline {
	out := timeline{steps: make([]time.Duration, len(phases))}
	for i := range phases {
		var ds []time.Duration
		for _, tl := range tls {
			if tl.steps[i] >= 0 {
				ds = append(ds, tl.steps[i])
			}
		}
		slices.Sort(ds)
		out.steps[i] = -1
		if len(ds) > 0 {
			out.steps[i] = median(ds)
		}
	}
	return out
}

// firstLine is the time of the first line after t0 in any of the logs
// that contains every one of subs (zero if none). Lines start with
// time=RFC3339 (slog's text format).
func firstLine(logs []string, t0 time.Time, subs ...string) time.Time {
	var first time.Time
	for _, path := range logs {
		f, err := os.Open(path)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			ts, ok := strings.CutPrefix(line, "time=")
			if !ok {
				continue
			}
			ts, _, _ = strings.Cut(ts, " ")
			t, err := time.Parse(time.RFC3339Nano, ts)
			if err != nil || !t.After(t0.Add(-time.Millisecond)) {
				continue
			}
			all := true
			for _, s := range subs {
				all = all && strings.Contains(line, s)
			}
			if all {
				if first.IsZero() || t.Before(first) {
					first = t
				}
				break
			}
		}
		f.Close()
	}
	return first
}
