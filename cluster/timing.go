package cluster

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/hashicorp/raft"

	"github.com/sftkit/sft/cluster/detector"
	"github.com/sftkit/sft/resource"
)

// Timing is the cluster's timing: the failure detector, the owner's lease,
// the time the owner may take to drop its groups, and raft's timeouts.
// Zero fields take the default profile's values (WithDefaults). The
// package doc argues why Validate's rules make a takeover safe.
type Timing struct {
	// Heartbeat is the interval between heartbeats to each peer on each
	// path (default 10 ms).
	Heartbeat time.Duration `json:"heartbeat,omitempty" yaml:"heartbeat,omitempty"`
	// Window (W) is the silence after which a peer is suspected (default
	// 500 ms).
	Window time.Duration `json:"window,omitempty" yaml:"window,omitempty"`
	// Lease (L) is how long after sending a heartbeat a quorum echoed the
	// owner keeps its groups (default 300 ms).
	Lease time.Duration `json:"lease,omitempty" yaml:"lease,omitempty"`
	// ClockRate (rho) bounds how far a node's clock rate may differ from
	// real time (default 1e-3, far above what NTP-disciplined or even free
	// running quartz clocks show).
	ClockRate float64 `json:"clock_rate,omitempty" yaml:"clock_rate,omitempty"`
	// Drop (t_drop) is the time from the lease running out to the owner's
	// groups being down (the address gone), including the owner's own
	// scheduling delay (default 150 ms).
	Drop time.Duration `json:"drop,omitempty" yaml:"drop,omitempty"`
	// Raft timeouts (hashicorp/raft's HeartbeatTimeout, ElectionTimeout,
	// LeaderLeaseTimeout, CommitTimeout; defaults 200, 200, 200 and 5 ms).
	// Raft leadership never moves a group: they bound only how fast a
	// decision commits after the raft leader itself died.
	RaftHeartbeat   time.Duration `json:"raft_heartbeat,omitempty" yaml:"raft_heartbeat,omitempty"`
	RaftElection    time.Duration `json:"raft_election,omitempty" yaml:"raft_election,omitempty"`
	RaftLeaderLease time.Duration `json:"raft_leader_lease,omitempty" yaml:"raft_leader_lease,omitempty"`
	RaftCommit      time.Duration `json:"raft_commit,omitempty" yaml:"raft_commit,omitempty"`
}

// The timing profiles. "default" suits a host that may stall all
// processes for 100-300 ms now and then (a shared VM: FIELD-NOTES.md);
// "fast" is for hosts without such stalls.
var profiles = map[string]Timing{
	"default": {
		Heartbeat: 10 * time.Millisecond, Window: 500 * time.Millisecond, Lease: 300 * time.Millisecond,
		ClockRate: 1e-3, Drop: 150 * time.Millisecond,
		RaftHeartbeat: 200 * time.Millisecond, RaftElection: 200 * time.Millisecond,
		RaftLeaderLease: 200 * time.Millisecond, RaftCommit: 5 * time.Millisecond,
	},
	"fast": {
		Heartbeat: 5 * time.Millisecond, Window: 200 * time.Millisecond, Lease: 110 * time.Millisecond,
		ClockRate: 1e-3, Drop: 70 * time.Millisecond,
		RaftHeartbeat: 100 * time.Millisecond, RaftElection: 100 * time.Millisecond,
		RaftLeaderLease: 100 * time.Millisecond, RaftCommit: 5 * time.Millisecond,
	},
}

// Profiles lists the profile names.
func Profiles() []string {
	var out []string
	for n := range profiles {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// Profile returns the named profile ("" is "default").
func Profile(name string) (Timing, error) {
	if name == "" {
		name = "default"
	}
	t, ok := profiles[name]
	if !ok {
		return Timing{}, resource.ConfigError("profile", name, "unknown timing profile (want one of %v)", Profiles())
	}
	return t, nil
}

// DefaultTiming is the default profile.
func DefaultTiming() Timing { return profiles["default"] }

// WithDefaults fills zero fields from the default profile.
func (t Timing) WithDefaults() Timing { return DefaultTiming().Over(t) }

// Over returns t with each non-zero field of o in place of t's: a profile
// with a user's overrides.
func (t Timing) Over(o Timing) Timing {
	set := func(dst *time.Duration, v time.Duration) {
		if v != 0 {
			*dst = v
		}
	}
	set(&t.Heartbeat, o.Heartbeat)
	set(&t.Window, o.Window)
	set(&t.Lease, o.Lease)
	set(&t.Drop, o.Drop)
	set(&t.RaftHeartbeat, o.RaftHeartbeat)
	set(&t.RaftElection, o.RaftElection)
	set(&t.RaftLeaderLease, o.RaftLeaderLease)
	set(&t.RaftCommit, o.RaftCommit)
	if o.ClockRate != 0 {
		t.ClockRate = o.ClockRate
	}
	return t
}

// MinBeats is the fewest heartbeats a lease and a window must span: a
// lease of fewer ends on a handful of lost datagrams (at loss p, k lost
// echoes in a row happen at rate p^k per heartbeat).
const MinBeats = 4

// Validate checks t (call WithDefaults first). Every violated rule is
// reported with its arithmetic, naming the fields.
func (t Timing) Validate() error {
	var errs []error
	for _, d := range []struct {
		field string
		v     time.Duration
	}{{"heartbeat", t.Heartbeat}, {"window", t.Window}, {"lease", t.Lease}, {"drop", t.Drop}} {
		if d.v <= 0 {
			errs = append(errs, resource.ConfigError(d.field, d.v, "must be positive"))
		}
	}
	if t.ClockRate < 0 || t.ClockRate >= 0.1 {
		errs = append(errs, resource.ConfigError("clock_rate", t.ClockRate, "must be at least 0 and below 0.1"))
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if left, right := t.safety(); left >= right {
		errs = append(errs, resource.ConfigError("lease", t.Lease,
			"unsafe: lease %s x (1+%g) + drop %s = %s is not below window %s x (1-%g) = %s: "+
				"another node could take the groups over before this one has dropped them "+
				"(shorten lease or drop, or lengthen the window)",
			t.Lease, t.ClockRate, t.Drop, left, t.Window, t.ClockRate, right))
	}
	if t.Lease < MinBeats*t.Heartbeat {
		errs = append(errs, resource.ConfigError("lease", t.Lease,
			"spans fewer than %d heartbeats of %s (%s): a few lost echoes would end it", MinBeats, t.Heartbeat, MinBeats*t.Heartbeat))
	}
	if t.Window < MinBeats*t.Heartbeat {
		errs = append(errs, resource.ConfigError("window", t.Window,
			"spans fewer than %d heartbeats of %s (%s): a few lost datagrams would fail a node over", MinBeats, t.Heartbeat, MinBeats*t.Heartbeat))
	}
	if t.RaftHeartbeat > t.Window {
		errs = append(errs, resource.ConfigError("raft_heartbeat", t.RaftHeartbeat,
			"is longer than the window %s: when the raft leader dies, raft and not the detector would set the outage", t.Window))
	}
	if err := raft.ValidateConfig(t.Raft("validate")); err != nil {
		errs = append(errs, resource.ConfigError("raft", fmt.Sprintf("%s/%s/%s/%s", t.RaftHeartbeat, t.RaftElection, t.RaftLeaderLease, t.RaftCommit),
			"heartbeat/election/leader lease/commit: %v", err))
	}
	return errors.Join(errs...)
}

// safety returns both sides of L(1+rho) + t_drop < W(1-rho).
func (t Timing) safety() (left, right time.Duration) {
	scaled := func(d time.Duration) time.Duration { return time.Duration(math.Round(float64(d) * t.ClockRate)) }
	return t.Lease + scaled(t.Lease) + t.Drop, t.Window - scaled(t.Window)
}

// Margin is how much sooner than necessary the owner drops its groups:
// W(1-rho) - L(1+rho) - t_drop. Validate refuses a Margin <= 0.
func (t Timing) Margin() time.Duration {
	left, right := t.safety()
	return right - left
}

// Detector is the detector configuration for node self with paths
// interconnect paths.
func (t Timing) Detector(self string, paths int) detector.Config {
	return detector.Config{Self: self, Paths: paths, Interval: t.Heartbeat, Window: t.Window, Lease: t.Lease}
}

// Raft is hashicorp/raft's default configuration with t's timeouts, for
// node id.
func (t Timing) Raft(id string) *raft.Config {
	c := raft.DefaultConfig()
	c.LocalID = raft.ServerID(id)
	c.HeartbeatTimeout = t.RaftHeartbeat
	c.ElectionTimeout = t.RaftElection
	c.LeaderLeaseTimeout = t.RaftLeaderLease
	c.CommitTimeout = t.RaftCommit
	return c
}
