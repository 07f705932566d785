// Package detector is the cluster's failure detector and lease: a UDP
// heartbeat every Interval (10 ms) to each peer over each interconnect
// path, a silence window, agreement by a majority, and the owner's lease
// renewed by echoed heartbeats.
//
// [Detector] is the pure core: it never reads the clock (every method takes
// now), starts no goroutine and does no I/O, so tests drive it with a fake
// clock and a scripted network. [UDP] runs it over real sockets, with a
// sender per path so a path whose socket blocks never delays the others.
//
// # What it decides
//
//   - A path to a peer is down when nothing came from the peer on that path
//     for Window; a peer is silent when every path to it is down. One path
//     down while another works is an event and nothing else.
//   - Each heartbeat carries the sender's suspicions (the peers it finds
//     silent). A node is declared dead only when a majority of the other
//     nodes suspect it: floor((N-1)/2)+1 of the N-1 others, counting this
//     node's own view and the reports of the peers it currently hears.
//   - Each heartbeat echoes the newest heartbeat received from its
//     addressee. The lease is valid until Lease after this node sent its
//     newest heartbeat that enough peers echoed (floor(N/2) peers: with
//     this node, a majority of N), measured on this node's own clock.
//     Every majority of the others that could declare this node dead
//     includes one of those peers, and that peer heard this node no
//     earlier than the send time: it cannot call it silent before
//     send time + Window. The cluster package states and enforces the
//     inequality between Lease and Window that makes this safe.
//
// A report that a peer is silent may reach a third node late, or be the
// last one it got from this node for up to Window. So that no stale
// report can join a majority against a peer that holds a fresh lease, a
// node echoes a peer's heartbeats only after it has heard the peer without
// a break for EchoHoldoff (2 x Window): by then every report in which it
// called the peer silent has been superseded or has expired. A lease is
// therefore first granted EchoHoldoff after a node (re)joins.
//
// Heartbeats carry the sender's incarnation (a number that grows across
// restarts) and a sequence number: older or repeated datagrams on a path
// are dropped, and an echo counts only for this node's incarnation.
package detector

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/sftkit/sft/resource"
)

// Heartbeat is one datagram's content.
type Heartbeat struct {
	From, To    string
	Incarnation uint64
	Seq         uint64
	// EchoIncarnation and Echo name the newest heartbeat From received
	// from To (0 when none yet).
	EchoIncarnation uint64
	Echo            uint64
	// Suspects are the peers From finds silent, sorted.
	Suspects []string
}

// Outgoing is a heartbeat to send on a path (an index into the
// interconnect paths).
type Outgoing struct {
	Path int
	Msg  Heartbeat
}

// Config configures a Detector. Interval, Window and Lease must be
// positive; the cluster package checks how they relate.
type Config struct {
	Self string
	// Paths is the number of interconnect paths (default 1).
	Paths int
	// Interval between heartbeats (the cluster default is 10 ms).
	Interval time.Duration
	// Window of silence after which a path is down.
	Window time.Duration
	// Lease: see the package doc.
	Lease time.Duration
	// EchoHoldoff is how long this node must have heard a peer without a
	// break before it echoes the peer's heartbeats (0: 2 x Window). See
	// the package doc: it outlasts any report of this node that still
	// calls the peer silent.
	EchoHoldoff time.Duration
}

// Validate checks c.
func (c Config) Validate() error {
	var errs []error
	if c.Self == "" {
		errs = append(errs, resource.ConfigError("self", c.Self, "empty node name"))
	}
	if c.Paths < 0 {
		errs = append(errs, resource.ConfigError("paths", c.Paths, "must not be negative"))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"interval", c.Interval}, {"window", c.Window}, {"lease", c.Lease}} {
		if d.v <= 0 {
			errs = append(errs, resource.ConfigError(d.name, d.v, "must be positive"))
		}
	}
	if c.EchoHoldoff < 0 {
		errs = append(errs, resource.ConfigError("echo_holdoff", c.EchoHoldoff, "must not be negative"))
	}
	return errors.Join(errs...)
}

// EventKind names what an Event reports.
type EventKind string

const (
	PathDown    EventKind = "path-down"    // one path to a peer fell silent (others may work)
	PathUp      EventKind = "path-up"      // a path to a peer works again
	PeerSilent  EventKind = "peer-silent"  // this node hears a peer on no path
	PeerHeard   EventKind = "peer-heard"   // this node hears a silent peer again
	NodeDead    EventKind = "node-dead"    // a majority of the others agree a node is silent
	NodeAlive   EventKind = "node-alive"   // that agreement no longer holds
	LeaseGained EventKind = "lease-gained" // a quorum echoed a fresh heartbeat
	LeaseLost   EventKind = "lease-lost"   // the lease ran out: fence now
)

// Event is a change the detector saw, with its evidence.
type Event struct {
	Kind EventKind
	Node string // the peer or node concerned ("" for lease events)
	Path int    // for path events
	At   time.Time
	// Detail is the evidence, for people: "silent for 512ms on 2 of 2
	// paths", "suspected by a, c (2 of 2 others; 2 needed)".
	Detail string
}

func (e Event) String() string {
	s := string(e.Kind)
	if e.Node != "" {
		s += " " + e.Node
	}
	if e.Kind == PathDown || e.Kind == PathUp {
		s += fmt.Sprintf(" path %d", e.Path)
	}
	return s + ": " + e.Detail
}

type msgID struct{ inc, seq uint64 }

func (a msgID) after(b msgID) bool {
	return a.inc > b.inc || (a.inc == b.inc && a.seq > b.seq)
}

type peer struct {
	name      string
	added     time.Time
	heard     []time.Time // per path; zero: never
	last      []msgID     // per path: newest accepted
	newest    msgID       // newest from this peer on any path
	since     time.Time   // heard without a break since (zero: silent)
	echoed    uint64      // newest of our seqs it echoed (our incarnation)
	suspects  []string    // its newest report
	pathDown  []bool
	silent    bool
	dead      bool
	deadSince time.Time
	deadWhy   string // the NodeDead event's evidence, while dead
}

// Detector is the pure failure detector of one node. It is not safe for
// concurrent use.
type Detector struct {
	cfg   Config
	inc   uint64
	seq   uint64
	sent  map[uint64]time.Time // our seq -> send time, pruned after Lease
	peers map[string]*peer
	names []string // the peers' names, sorted
	lease bool
}

// New returns a detector for cfg.Self, incarnation inc (it must grow
// across restarts of the node: the start time in nanoseconds will do).
func New(cfg Config, inc uint64) (*Detector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Paths == 0 {
		cfg.Paths = 1
	}
	if cfg.EchoHoldoff == 0 {
		cfg.EchoHoldoff = 2 * cfg.Window
	}
	return &Detector{cfg: cfg, inc: inc, sent: map[uint64]time.Time{}, peers: map[string]*peer{}}, nil
}

// Config returns the configuration in use (defaults filled in).
func (d *Detector) Config() Config { return d.cfg }

// AddPeer adds a node to watch (a witness too: it votes and echoes). A
// peer never heard counts as silent Window after it was added.
func (d *Detector) AddPeer(name string, now time.Time) error {
	if name == "" || name == d.cfg.Self {
		return resource.ConfigError("peer", name, "not a peer name")
	}
	if _, ok := d.peers[name]; ok {
		return resource.ConfigError("peer", name, "added twice")
	}
	n := d.cfg.Paths
	d.peers[name] = &peer{name: name, added: now, heard: make([]time.Time, n), last: make([]msgID, n), pathDown: make([]bool, n)}
	d.names = slices.Sorted(maps.Keys(d.peers))
	return nil
}

// RemovePeer stops watching a node.
func (d *Detector) RemovePeer(name string) {
	delete(d.peers, name)
	d.names = slices.Sorted(maps.Keys(d.peers))
}

// Peers lists the peers, sorted.
func (d *Detector) Peers() []string { return slices.Clone(d.names) }

// Tick makes this round's heartbeats: one per peer per path, all with the
// next sequence number, and remembers when it was sent.
func (d *Detector) Tick(now time.Time) []Outgoing {
	d.seq++
	d.sent[d.seq] = now
	for s, at := range d.sent {
		if now.Sub(at) > d.cfg.Lease {
			delete(d.sent, s)
		}
	}
	suspects := d.suspects()
	var out []Outgoing
	for _, name := range d.names {
		p := d.peers[name]
		hb := Heartbeat{From: d.cfg.Self, To: name, Incarnation: d.inc, Seq: d.seq, Suspects: suspects}
		if !p.since.IsZero() && now.Sub(p.since) >= d.cfg.EchoHoldoff {
			hb.EchoIncarnation, hb.Echo = p.newest.inc, p.newest.seq
		}
		for path := range d.cfg.Paths {
			out = append(out, Outgoing{Path: path, Msg: hb})
		}
	}
	return out
}

func (d *Detector) suspects() []string {
	var out []string
	for _, name := range d.names {
		if d.peers[name].silent {
			out = append(out, name)
		}
	}
	return out
}

// ErrRejected wraps the reasons Receive drops a heartbeat.
var ErrRejected = errors.New("heartbeat rejected")

// Receive takes a heartbeat that arrived on path at now. It returns an
// error wrapping ErrRejected (and changes nothing) for a heartbeat not
// addressed to this node, from an unknown node, on an unknown path, or
// not newer than the last one accepted on that path (a repeat or replay).
func (d *Detector) Receive(now time.Time, path int, hb Heartbeat) error {
	if hb.To != d.cfg.Self {
		return fmt.Errorf("%w: addressed to %q, not %q", ErrRejected, hb.To, d.cfg.Self)
	}
	p, ok := d.peers[hb.From]
	if !ok {
		return fmt.Errorf("%w: from unknown node %q", ErrRejected, hb.From)
	}
	if path < 0 || path >= d.cfg.Paths {
		return fmt.Errorf("%w: path %d of %d", ErrRejected, path, d.cfg.Paths)
	}
	id := msgID{hb.Incarnation, hb.Seq}
	if !id.after(p.last[path]) {
		return fmt.Errorf("%w: %s's heartbeat %d/%d on path %d is not newer than %d/%d",
			ErrRejected, hb.From, hb.Incarnation, hb.Seq, path, p.last[path].inc, p.last[path].seq)
	}
	p.last[path] = id
	p.heard[path] = now
	if p.since.IsZero() {
		p.since = now
	}
	if id.after(p.newest) {
		if id.inc != p.newest.inc {
			p.echoed = 0 // a restarted peer echoes afresh
		}
		p.newest = id
		p.suspects = slices.Clone(hb.Suspects)
	}
	if hb.EchoIncarnation == d.inc && hb.Echo <= d.seq && hb.Echo > p.echoed {
		p.echoed = hb.Echo
	}
	return nil
}

// Lease reports until when this node's lease runs (on its own clock) and
// whether it runs at now. With no peers the lease always runs.
func (d *Detector) Lease(now time.Time) (time.Time, bool) {
	need := (len(d.peers) + 1) / 2 // peers that must echo: with us, a majority
	if need == 0 {
		return now.Add(d.cfg.Lease), true
	}
	echoed := make([]uint64, 0, len(d.peers))
	for _, p := range d.peers {
		echoed = append(echoed, p.echoed)
	}
	slices.Sort(echoed)
	slices.Reverse(echoed)
	sentAt, ok := d.sent[echoed[need-1]]
	if !ok {
		return time.Time{}, false
	}
	until := sentAt.Add(d.cfg.Lease)
	return until, now.Before(until)
}

// HeardSince is when this node began to hear peer without a break (the
// zero time while it is silent or was never heard).
func (d *Detector) HeardSince(peer string) time.Time {
	if p, ok := d.peers[peer]; ok {
		return p.since
	}
	return time.Time{}
}

// heardAt is when a heartbeat from peer last arrived on path (zero:
// never, or no such peer or path).
func (d *Detector) heardAt(peer string, path int) time.Time {
	p, ok := d.peers[peer]
	if !ok || path < 0 || path >= len(p.heard) {
		return time.Time{}
	}
	return p.heard[path]
}

// Silent reports whether this node hears peer on no path.
func (d *Detector) Silent(peer string) bool {
	p, ok := d.peers[peer]
	return ok && p.silent
}

// Dead lists the nodes declared dead at the last Check, sorted.
func (d *Detector) Dead() []string {
	var out []string
	for _, name := range d.names {
		if d.peers[name].dead {
			out = append(out, name)
		}
	}
	return out
}

// DeadEvidence maps each node declared dead at the last Check to the
// evidence its NodeDead event carried ("suspected by b, c (2 of 2
// others; 2 needed)"). It is the same state as Dead, read at once, so a
// caller never sees a node dead without the reason.
func (d *Detector) DeadEvidence() map[string]string {
	out := map[string]string{}
	for _, name := range d.names {
		if p := d.peers[name]; p.dead {
			out[name] = p.deadWhy
		}
	}
	return out
}

// Check updates paths, silence, agreement and the lease at now, and
// returns what changed, the lease first. Call it after every Tick and
// Receive, or at least every Interval. A node that has been frozen must
// call Check (and act on LeaseLost) before anything else when it runs
// again.
func (d *Detector) Check(now time.Time) []Event {
	var evs []Event
	until, ok := d.Lease(now)
	if ok != d.lease {
		if ok {
			evs = append(evs, Event{Kind: LeaseGained, At: now, Detail: "runs until " + until.Format(time.StampMilli)})
		} else {
			detail := fmt.Sprintf("no heartbeat sent within the last %s was echoed by a quorum", d.cfg.Lease)
			if !until.IsZero() {
				detail = fmt.Sprintf("ran out %s ago", now.Sub(until))
			}
			evs = append(evs, Event{Kind: LeaseLost, At: now, Detail: detail})
		}
		d.lease = ok
	}
	for _, name := range d.names {
		p := d.peers[name]
		down := 0
		for path, at := range p.heard {
			if at.IsZero() {
				at = p.added
			}
			gap := now.Sub(at)
			isDown := gap >= d.cfg.Window
			if isDown {
				down++
			}
			if isDown != p.pathDown[path] && d.cfg.Paths > 1 {
				kind, detail := PathUp, "heard again"
				if isDown {
					kind, detail = PathDown, fmt.Sprintf("silent for %s (window %s)", gap, d.cfg.Window)
				}
				evs = append(evs, Event{Kind: kind, Node: name, Path: path, At: now, Detail: detail})
			}
			p.pathDown[path] = isDown
		}
		silent := down == d.cfg.Paths
		if silent {
			p.since = time.Time{}
		}
		if silent != p.silent {
			if silent {
				evs = append(evs, Event{Kind: PeerSilent, Node: name, At: now,
					Detail: fmt.Sprintf("silent for at least %s on %d of %d paths", d.cfg.Window, down, d.cfg.Paths)})
			} else {
				evs = append(evs, Event{Kind: PeerHeard, Node: name, At: now, Detail: "heard again"})
			}
			p.silent = silent
		}
	}
	evs = append(evs, d.agree(now)...)
	return evs
}

// agree declares a node dead when a majority of the other nodes suspect
// it: this node's own view, and the last report of each peer it hears.
func (d *Detector) agree(now time.Time) []Event {
	n := len(d.peers) + 1
	need := (n-1)/2 + 1
	var evs []Event
	for _, name := range d.names {
		p := d.peers[name]
		var by []string
		if p.silent {
			by = append(by, d.cfg.Self)
		}
		for _, rn := range d.names {
			r := d.peers[rn]
			if rn != name && !r.silent && slices.Contains(r.suspects, name) {
				by = append(by, rn)
			}
		}
		dead := len(by) >= need
		if dead == p.dead {
			continue
		}
		p.dead = dead
		if dead {
			p.deadSince = now
			p.deadWhy = fmt.Sprintf("suspected by %s (%d of %d others; %d needed)", strings.Join(by, ", "), len(by), n-1, need)
			evs = append(evs, Event{Kind: NodeDead, Node: name, At: now, Detail: p.deadWhy})
		} else {
			p.deadWhy = ""
			evs = append(evs, Event{Kind: NodeAlive, Node: name, At: now,
				Detail: fmt.Sprintf("suspected by %d of %d others now (%d needed), dead for %s", len(by), n-1, need, now.Sub(p.deadSince))})
		}
	}
	return evs
}
