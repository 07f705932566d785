package peer

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"time"

	"github.com/sftkit/sft/internal/health"
	"github.com/sftkit/sft/policy"
	"github.com/sftkit/sft/resource"
)

// Defaults of [Detect]. See the package doc for the arithmetic.
const (
	DefaultInterval        = 10 * time.Millisecond
	DefaultMisses          = 24
	DefaultSurviveLoss     = 0.4
	DefaultMaxFalsePerYear = 1.0
	DefaultServiceFailures = 3
	DefaultReferenceWait   = 100 * time.Millisecond
	DefaultPort            = 7946
	// DefaultStablePeriod is how long a returning peer must pass both
	// checks before an automatic failback.
	DefaultStablePeriod = time.Minute
)

// Year is the period the false-takeover budget is counted over.
const Year = 365.25 * 24 * time.Hour

// Detect is how a watcher judges the holder of a service address dead.
type Detect struct {
	// Interval between ICMP echo requests (LooksAlive). Default 10 ms.
	Interval time.Duration `json:"interval,omitempty"`
	// Misses is k: echoes in a row without a reply before the holder
	// looks dead. Default 24.
	Misses int `json:"misses,omitempty"`
	// SurviveLoss is the probability q that one echo exchange is lost,
	// which the detector must survive without a takeover. Default 0.4.
	// A link losing p in each direction loses 1-(1-p)^2 of echoes.
	SurviveLoss float64 `json:"survive_loss,omitempty"`
	// MaxFalsePerYear is the false-takeover rate at SurviveLoss that
	// Validate accepts. Default 1.
	MaxFalsePerYear float64 `json:"max_false_per_year,omitempty"`
	// ReferenceWait bounds the reference (gateway) check. Default 100 ms
	// or 3 intervals, whichever is longer.
	ReferenceWait time.Duration `json:"reference_wait,omitempty"`
}

// WithDefaults returns d with its zero fields set to the defaults.
func (d Detect) WithDefaults() Detect { return d.withDefaults() }

func (d Detect) withDefaults() Detect {
	if d.Interval == 0 {
		d.Interval = DefaultInterval
	}
	if d.Misses == 0 {
		d.Misses = DefaultMisses
	}
	if d.SurviveLoss == 0 {
		d.SurviveLoss = DefaultSurviveLoss
	}
	if d.MaxFalsePerYear == 0 {
		d.MaxFalsePerYear = DefaultMaxFalsePerYear
	}
	if d.ReferenceWait == 0 {
		d.ReferenceWait = max(DefaultReferenceWait, 3*d.Interval)
	}
	return d
}

// FalseRate is the expected number of false "dead" judgements per period
// for echo loss q: a run of k lost echoes starts after any answered echo
// with probability (1-q)q^k, and there are period/interval echoes.
func FalseRate(interval time.Duration, k int, q float64, period time.Duration) float64 {
	return float64(period) / float64(interval) * (1 - q) * math.Pow(q, float64(k))
}

// MinMisses is the smallest k whose FalseRate over a year at loss q stays
// within maxPerYear.
func MinMisses(interval time.Duration, q, maxPerYear float64) int {
	for k := 1; k < 10000; k++ {
		if FalseRate(interval, k, q, Year) <= maxPerYear {
			return k
		}
	}
	return 10000
}

// Window is the silence after which the holder looks dead: k intervals.
func (d Detect) Window() time.Duration { return time.Duration(d.Misses) * d.Interval }

// Validate checks d (defaults applied) and refuses a configuration whose
// arithmetic predicts more than MaxFalsePerYear false takeovers per year at
// SurviveLoss.
func (d Detect) Validate() error {
	d = d.withDefaults()
	var errs []error
	if d.Interval < time.Millisecond || d.Interval > time.Minute {
		errs = append(errs, resource.ConfigError("detect.interval", d.Interval.String(), "must be between 1ms and 1m"))
	}
	if d.Misses < 1 || d.Misses > 1000 {
		errs = append(errs, resource.ConfigError("detect.misses", d.Misses, "must be between 1 and 1000"))
	}
	if d.SurviveLoss <= 0 || d.SurviveLoss >= 1 {
		errs = append(errs, resource.ConfigError("detect.survive_loss", d.SurviveLoss, "must be above 0 and below 1"))
	}
	if d.MaxFalsePerYear <= 0 {
		errs = append(errs, resource.ConfigError("detect.max_false_per_year", d.MaxFalsePerYear, "must be above 0"))
	}
	if d.ReferenceWait < d.Interval || d.ReferenceWait > time.Minute {
		errs = append(errs, resource.ConfigError("detect.reference_wait", d.ReferenceWait.String(), "must be between detect.interval and 1m"))
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if r := FalseRate(d.Interval, d.Misses, d.SurviveLoss, Year); r > d.MaxFalsePerYear {
		return resource.ConfigError("detect.misses", d.Misses,
			"predicts %.3g false takeovers per year at %.0f%% echo loss q with interval %v (year/interval x (1-q) x q^k); at most %g allowed: use misses >= %d",
			r, d.SurviveLoss*100, d.Interval, d.MaxFalsePerYear, MinMisses(d.Interval, d.SurviveLoss, d.MaxFalsePerYear))
	}
	return nil
}

// Group is one failover group as peer mode sees it.
type Group struct {
	// Name is the group's name in the local monitor.
	Name string `json:"name"`
	// Address is the service address the group serves (its ipaddress
	// resource); the node not holding it pings it.
	Address netip.Addr `json:"address"`
	// Home is the node that serves the group when both are up. A group
	// homed on each node is active/active (mutual takeover); all groups on
	// one node is active/passive.
	Home string `json:"home"`
	// Check is the functional check (IsAlive) of the service at Address,
	// its Interval the IsAlive period (default 1 s) and Timeout one
	// attempt's bound (default 2 s; keep it under the detect window for
	// fast takeovers). Zero: no functional check, the ping alone decides.
	Check health.Config `json:"check,omitempty"`
	// CheckBody, with an HTTP check, is text the response body must
	// contain (read up to 64 KiB).
	CheckBody string `json:"check_body,omitempty"`
	// ServiceFailures is how many functional checks in a row must fail,
	// while the address still answers pings, before the service counts as
	// dead (an alert, and a release request if Release). Default 3.
	ServiceFailures int `json:"service_failures,omitempty"`
	// NoTakeover disables takeover: the peer only watches and alerts.
	NoTakeover bool `json:"no_takeover,omitempty"`
	// Release: when the holder answers pings but its service is dead, ask
	// the peer's sft to release the group (an orderly move).
	Release bool `json:"release,omitempty"`
	// Failback moves the group back to Home automatically (policy.Failback:
	// prevent, the default, means manual with Move) once Home has been up
	// for StablePeriod.
	Failback policy.Failback `json:"failback,omitempty"`
	// StablePeriod for automatic failback. Default 1 m.
	StablePeriod time.Duration `json:"stable_period,omitempty"`
}

// Config is one node's peer-mode configuration.
type Config struct {
	// Node is this node's name; Peer the other's.
	Node string `json:"node"`
	Peer string `json:"peer"`
	// Listen is this node's interconnect address (its own address, not a
	// service address) for release requests; PeerAddr the peer's.
	Listen   netip.AddrPort `json:"listen"`
	PeerAddr netip.AddrPort `json:"peer_addr"`
	// Key authenticates interconnect messages (HMAC-SHA256), at least 16
	// bytes, the same on both nodes.
	Key []byte `json:"key"`
	// Reference is an address (the gateway) that must answer a ping
	// before this node takes anything over. Zero: no reference check.
	Reference netip.Addr `json:"reference,omitempty"`
	Detect    Detect     `json:"detect,omitempty"`
	Groups    []Group    `json:"groups"`
}

func (g Group) withDefaults() Group {
	if g.ServiceFailures == 0 {
		g.ServiceFailures = DefaultServiceFailures
	}
	if g.StablePeriod == 0 {
		g.StablePeriod = DefaultStablePeriod
	}
	return g
}

// Validate checks c; errors name the field and the value.
func (c Config) Validate() error {
	var errs []error
	if c.Node == "" {
		errs = append(errs, resource.ConfigError("node", c.Node, "is required"))
	}
	if c.Peer == "" || c.Peer == c.Node {
		errs = append(errs, resource.ConfigError("peer", c.Peer, "must be set and differ from node %q", c.Node))
	}
	if !c.Listen.IsValid() || c.Listen.Port() == 0 {
		errs = append(errs, resource.ConfigError("listen", c.Listen.String(), "must be this node's address:port"))
	}
	if !c.PeerAddr.IsValid() || c.PeerAddr.Port() == 0 {
		errs = append(errs, resource.ConfigError("peer_addr", c.PeerAddr.String(), "must be the peer's address:port"))
	}
	if len(c.Key) < 16 {
		errs = append(errs, resource.ConfigError("key", fmt.Sprintf("%d bytes", len(c.Key)), "must be at least 16 bytes"))
	}
	if err := c.Detect.Validate(); err != nil {
		errs = append(errs, err)
	}
	if len(c.Groups) == 0 {
		errs = append(errs, resource.ConfigError("groups", 0, "at least one group is required"))
	}
	seen := map[string]bool{}
	for i, g := range c.Groups {
		f := func(n string) string { return fmt.Sprintf("groups[%d].%s", i, n) }
		if g.Name == "" || seen[g.Name] {
			errs = append(errs, resource.ConfigError(f("name"), g.Name, "must be set and unique"))
		}
		seen[g.Name] = true
		if !g.Address.IsValid() {
			errs = append(errs, resource.ConfigError(f("address"), g.Address.String(), "must be the service address"))
		}
		if g.Home != c.Node && g.Home != c.Peer {
			errs = append(errs, resource.ConfigError(f("home"), g.Home, "must be %q or %q", c.Node, c.Peer))
		}
		if !g.Check.IsZero() {
			if err := g.Check.Validate(f("check")); err != nil {
				errs = append(errs, err)
			}
		}
		if g.CheckBody != "" && g.Check.HTTP == "" {
			errs = append(errs, resource.ConfigError(f("check_body"), g.CheckBody, "needs an HTTP check (check.http)"))
		}
		if g.ServiceFailures < 0 || g.ServiceFailures > 100 {
			errs = append(errs, resource.ConfigError(f("service_failures"), g.ServiceFailures, "must be between 1 and 100 (0: default %d)", DefaultServiceFailures))
		}
		if err := g.Failback.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f("failback"), err))
		}
		if g.StablePeriod < 0 {
			errs = append(errs, resource.ConfigError(f("stable_period"), g.StablePeriod.String(), "must not be negative"))
		}
	}
	return errors.Join(errs...)
}
