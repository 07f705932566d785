package peer

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
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

// DefaultScenarios are what a dry run checks when given no scenario: the
// holder dying after 1 s, its service dying with pings still answered,
// and a minute of 20 % and of 40 % echo loss (no takeover wanted).
const DefaultScenarios = `duration=5s host-dead=1s
duration=20s service-dead=1s
duration=60s loss=0.2
duration=60s loss=0.4
`

// ParseScenarios reads one scenario per line (see ParseScenario); blank
// lines and lines starting with # are skipped. Errors name the line.
func ParseScenarios(text string) ([]Scenario, error) {
	var out []Scenario
	var errs []error
	for i, line := range strings.Split(text, "\n") {
		line, _, _ = strings.Cut(line, "#")
		if line = strings.TrimSpace(line); line == "" {
			continue
		}
		s, err := ParseScenario(line)
		if err != nil {
			errs = append(errs, fmt.Errorf("line %d: %w", i+1, err))
			continue
		}
		out = append(out, s)
	}
	return out, errors.Join(errs...)
}

// ParseScenario reads KEY=VALUE fields: duration, host-dead,
// service-dead, check-timeout (durations), loss (0 to below 1, or a
// percentage "40%"), seed (an integer). duration is required and at most
// an hour.
func ParseScenario(line string) (Scenario, error) {
	var s Scenario
	for _, f := range strings.Fields(line) {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return s, fmt.Errorf("%q: want KEY=VALUE", f)
		}
		var err error
		switch k {
		case "duration":
			s.Duration, err = time.ParseDuration(v)
		case "host-dead":
			s.HostDeadAt, err = time.ParseDuration(v)
		case "service-dead":
			s.ServiceDeadAt, err = time.ParseDuration(v)
		case "check-timeout":
			s.CheckTimeout, err = time.ParseDuration(v)
		case "loss":
			pct := strings.HasSuffix(v, "%")
			s.Loss, err = strconv.ParseFloat(strings.TrimSuffix(v, "%"), 64)
			if pct {
				s.Loss /= 100
			}
			if err == nil && (s.Loss < 0 || s.Loss >= 1) {
				err = errors.New("want 0 to below 1 (or 0% to below 100%)")
			}
		case "seed":
			s.Seed, err = strconv.ParseUint(v, 10, 64)
		default:
			return s, fmt.Errorf("%q: unknown key (want duration, host-dead, service-dead, loss, seed, check-timeout)", k)
		}
		if err != nil {
			return s, fmt.Errorf("%s %q: %w", k, v, err)
		}
	}
	switch {
	case s.Duration <= 0 || s.Duration > time.Hour:
		return s, fmt.Errorf("duration %v: want above 0 and at most 1h", s.Duration)
	case s.HostDeadAt < 0 || s.ServiceDeadAt < 0 || s.CheckTimeout < 0:
		return s, errors.New("times must not be negative")
	}
	return s, nil
}

// String renders s as ParseScenario reads it.
func (s Scenario) String() string {
	parts := []string{"duration=" + s.Duration.String()}
	if s.HostDeadAt > 0 {
		parts = append(parts, "host-dead="+s.HostDeadAt.String())
	}
	if s.ServiceDeadAt > 0 {
		parts = append(parts, "service-dead="+s.ServiceDeadAt.String())
	}
	if s.Loss > 0 {
		parts = append(parts, "loss="+strconv.FormatFloat(s.Loss, 'g', -1, 64))
	}
	if s.Seed != 0 {
		parts = append(parts, "seed="+strconv.FormatUint(s.Seed, 10))
	}
	if s.CheckTimeout != 0 {
		parts = append(parts, "check-timeout="+s.CheckTimeout.String())
	}
	return strings.Join(parts, " ")
}
