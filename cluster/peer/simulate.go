package peer

import (
	"math/rand/v2"
	"time"
)

// Scenario is a what-if run of one watcher (Simulate): a holder that may
// die, or whose service may die, under random echo loss.
type Scenario struct {
	// Duration of the run.
	Duration time.Duration
	// HostDeadAt: the holder stops answering anything (0: never).
	HostDeadAt time.Duration
	// ServiceDeadAt: the service stops answering, pings still do (0: never).
	ServiceDeadAt time.Duration
	// Loss is the probability that one echo exchange (or one functional
	// check) is lost; Seed makes the run repeatable.
	Loss float64
	Seed uint64
	// CheckTimeout is how long a failing functional check takes; a
	// passing one takes one millisecond. Default 200 ms.
	CheckTimeout time.Duration
	// CheckEvery is the periodic functional check (0: no check).
	CheckEvery time.Duration
}

// Decision is a verdict change in a simulated run.
type Decision struct {
	At      time.Duration
	Verdict Verdict
	Misses  int
}

// SimResult is what Simulate saw.
type SimResult struct {
	// Decisions are the verdict changes, in order.
	Decisions []Decision
	// FirstDead is when the watcher first judged the holder dead (-1: never).
	FirstDead time.Duration
	// Echoes and Lost count the echo exchanges.
	Echoes, Lost int
}

// Simulate runs the watcher's decision logic (the same [Detector] the
// node runs) for one group against s, in simulated time, and returns its
// verdict changes: a dry run of the configuration, without a network.
func Simulate(d Detect, g Group, s Scenario) SimResult {
	d = d.withDefaults()
	if s.CheckTimeout == 0 {
		s.CheckTimeout = 200 * time.Millisecond
	}
	rng := rand.New(rand.NewPCG(s.Seed, s.Seed^0x9e3779b97f4a7c15))
	t0 := time.Unix(0, 0)
	det := NewDetector(d, g, s.CheckEvery, 0, t0)
	res := SimResult{FirstDead: -1}
	last := Verdict(-1)
	hostUp := func(at time.Duration) bool { return s.HostDeadAt == 0 || at < s.HostDeadAt }
	svcUp := func(at time.Duration) bool { return hostUp(at) && (s.ServiceDeadAt == 0 || at < s.ServiceDeadAt) }
	checkEnd := [3]time.Duration{-1, -1, -1}
	var checkOK [3]bool
	step := time.Millisecond
	for at := time.Duration(0); at <= s.Duration; at += step {
		now := t0.Add(at)
		for k := QuickCheck; k <= PeriodicCheck; k++ {
			if checkEnd[k] >= 0 && at >= checkEnd[k] {
				det.CheckDone(now, k, checkOK[k])
				checkEnd[k] = -1
			}
		}
		if at%d.Interval == 0 {
			det.Sent(now)
			res.Echoes++
			if hostUp(at) && rng.Float64() >= s.Loss {
				det.Reply(now.Add(step / 2)) // a LAN round trip
			} else {
				res.Lost++
			}
		}
		for k := det.WantCheck(now); k != NoCheck; k = det.WantCheck(now) {
			det.CheckStarted(now, k)
			checkOK[k] = svcUp(at) && rng.Float64() >= s.Loss
			if checkOK[k] {
				checkEnd[k] = at + time.Millisecond
			} else {
				checkEnd[k] = at + s.CheckTimeout
			}
		}
		v := det.Verdict(now)
		if v != last {
			res.Decisions = append(res.Decisions, Decision{At: at, Verdict: v, Misses: det.Misses(now)})
			last = v
		}
		if v == Dead && res.FirstDead < 0 {
			res.FirstDead = at
		}
	}
	return res
}
