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

// Detector is the pure decision core of one watcher: it is told what was
// sent and received, and when, and answers with a Verdict. It reads no
// clock and starts nothing; it is not safe for concurrent use.
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

	checkRunning bool
	checkQuick   bool
	checkStart   time.Time
	lastCheck    struct {
		start, end time.Time
		ok, done   bool
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

// ServiceFailures is the number of functional checks in a row that failed.
func (d *Detector) ServiceFailures() int { return d.checkFails }

// WantCheck reports whether a functional check should start now: the
// first miss of a run triggers one at once, otherwise every checkEvery.
func (d *Detector) WantCheck(now time.Time) bool {
	if !d.hasCheck || d.checkRunning {
		return false
	}
	if d.Misses(now) >= 1 && d.lastCheck.start.Before(d.runStart) {
		return true
	}
	return !now.Before(d.nextCheck)
}

// CheckStarted records that a functional check started at now. A check
// started while echoes are missing is a quick one (one attempt, bounded
// by the window, see Node): its failure judges a silent holder, it does
// not count toward ServiceFailures.
func (d *Detector) CheckStarted(now time.Time) {
	d.checkRunning = true
	d.checkQuick = d.Misses(now) > 0
	d.checkStart = now
	d.nextCheck = now.Add(d.checkEvery)
}

// CheckDone records the outcome of the running check at now.
func (d *Detector) CheckDone(now time.Time, ok bool) {
	if !d.checkRunning {
		return
	}
	d.checkRunning = false
	d.lastCheck.start, d.lastCheck.end, d.lastCheck.ok, d.lastCheck.done = d.checkStart, now, ok, true
	if ok {
		d.checkFails = 0
	} else if !d.checkQuick {
		d.checkFails++
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
