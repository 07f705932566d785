package peer

import "time"

// Verdict is a watcher's judgement of the holder of a service address.
type Verdict int

const (
	// Alive: the last echo was answered and the service is not known dead.
	Alive Verdict = iota
	// Suspect: some echoes in a row went unanswered, fewer than k, or k
	// but the functional check started since has not answered yet.
	Suspect
	// Dead: k echoes in a row unanswered and a functional check started
	// after the first of them failed (or there is no check): take over.
	Dead
	// Unpingable: k echoes unanswered but the functional check answers
	// (ICMP filtered?): no takeover.
	Unpingable
	// ServiceDead: the address answers pings but ServiceFailures
	// functional checks in a row failed: an alert, no steal.
	ServiceDead
)

var verdictNames = [...]string{"alive", "suspect", "dead", "unpingable", "service-dead"}

func (v Verdict) String() string {
	if int(v) < len(verdictNames) {
		return verdictNames[v]
	}
	return "unknown"
}

// CheckKind is a functional check's kind.
type CheckKind int

const (
	// NoCheck: none is due.
	NoCheck CheckKind = iota
	// QuickCheck: triggered by the first unanswered echo of a run; one
	// attempt bounded by the window. Its failure judges a silent holder;
	// it does not count toward ServiceFailures (under loss these fail
	// often).
	QuickCheck
	// PeriodicCheck: every checkEvery, whatever the echoes do.
	PeriodicCheck
)

// Detector is the pure decision core of one watcher: it is told what was
// sent and received, and when, and answers with a Verdict. It reads no
// clock and starts nothing; it is not safe for concurrent use. A quick
// and a periodic check may run at the same time, so a long periodic check
// never delays the quick one.
type Detector struct {
	k            int
	replyTimeout time.Duration
	hasCheck     bool
	checkEvery   time.Duration
	serviceFails int
	grace        time.Duration

	started   time.Time // watching since
	seenReply bool
	sent      int       // echoes sent since the last reply
	runStart  time.Time // send time of the first of them
	lastSent  time.Time
	lastReply time.Time

	running   [3]bool
	startedAt [3]time.Time
	quickRun  bool // a quick check started for the current run
	lastCheck struct {
		start    time.Time
		ok, done bool
	}
	checkFails int
	nextCheck  time.Time
}

// NewDetector returns a detector that starts watching at now. checkEvery
// is the periodic functional check (0: none); grace is how long it waits
// for a first reply before it may judge the holder dead (a cold start of
// both nodes).
func NewDetector(d Detect, g Group, checkEvery, grace time.Duration, now time.Time) *Detector {
	d = d.withDefaults()
	g = g.withDefaults()
	return &Detector{
		k: d.Misses, replyTimeout: d.Interval,
		hasCheck: checkEvery > 0, checkEvery: checkEvery,
		serviceFails: g.ServiceFailures, grace: grace,
		started: now, nextCheck: now.Add(checkEvery),
	}
}

// Sent records an echo request sent at now.
func (d *Detector) Sent(now time.Time) {
	if d.sent == 0 {
		d.runStart = now
		d.quickRun = false
	}
	d.sent++
	d.lastSent = now
}

// Reply records an echo reply received at now.
func (d *Detector) Reply(now time.Time) {
	d.sent = 0
	d.seenReply = true
	d.lastReply = now
}

// Misses is how many echoes in a row went unanswered: those sent since
// the last reply, except the newest while its reply may still come.
func (d *Detector) Misses(now time.Time) int {
	m := d.sent
	if m > 0 && now.Sub(d.lastSent) < d.replyTimeout {
		m--
	}
	return m
}

// LastReply is when the last echo reply arrived (zero: never).
func (d *Detector) LastReply() time.Time { return d.lastReply }

// ServiceFailures is the number of periodic functional checks in a row
// that failed.
func (d *Detector) ServiceFailures() int { return d.checkFails }

// WantCheck returns the check that should start now, if any: a quick one
// at the first miss of a run, a periodic one every checkEvery. Call it
// until it returns NoCheck.
func (d *Detector) WantCheck(now time.Time) CheckKind {
	if !d.hasCheck {
		return NoCheck
	}
	if d.Misses(now) >= 1 && !d.quickRun && !d.running[QuickCheck] {
		return QuickCheck
	}
	if !d.running[PeriodicCheck] && !now.Before(d.nextCheck) {
		return PeriodicCheck
	}
	return NoCheck
}

// CheckStarted records that a check of kind k started at now.
func (d *Detector) CheckStarted(now time.Time, k CheckKind) {
	d.running[k] = true
	d.startedAt[k] = now
	if k == QuickCheck {
		d.quickRun = true
	} else {
		d.nextCheck = now.Add(d.checkEvery)
	}
}

// CheckDone records the outcome of the running check of kind k at now.
func (d *Detector) CheckDone(now time.Time, k CheckKind, ok bool) {
	if k == NoCheck || !d.running[k] {
		return
	}
	d.running[k] = false
	if st := d.startedAt[k]; !d.lastCheck.done || !st.Before(d.lastCheck.start) {
		d.lastCheck.start, d.lastCheck.ok, d.lastCheck.done = st, ok, true
	}
	if k == PeriodicCheck {
		if ok {
			d.checkFails = 0
		} else {
			d.checkFails++
		}
	} else if ok {
		d.checkFails = 0
	}
}

// Verdict is the judgement at now.
func (d *Detector) Verdict(now time.Time) Verdict {
	m := d.Misses(now)
	if m >= d.k {
		if !d.seenReply && now.Sub(d.started) < d.grace {
			return Suspect
		}
		if !d.hasCheck {
			return Dead
		}
		if d.lastCheck.done && !d.lastCheck.start.Before(d.runStart) {
			if d.lastCheck.ok {
				return Unpingable
			}
			return Dead
		}
		return Suspect
	}
	if d.hasCheck && d.checkFails >= d.serviceFails && d.seenReply {
		return ServiceDead
	}
	if m > 0 {
		return Suspect
	}
	return Alive
}
