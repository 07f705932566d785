package ipaddress

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/sftkit/sft/resource"
)

// Defaults for the properties; see the package documentation.
const (
	// DefaultProbeCount is how many duplicate-address probes Online sends.
	DefaultProbeCount = 3
	// DefaultProbeInterval is the gap between two probes.
	DefaultProbeInterval = 50 * time.Millisecond
	// DefaultProbeWait is how long Online listens for an answer after the
	// last probe. With the defaults, deciding that an address is free takes
	// 2 x 50 ms + 100 ms = 200 ms (RFC 5227 itself takes 7 s or more: fine
	// for DHCP clients, too slow for a failover).
	DefaultProbeWait = 100 * time.Millisecond
)

// DefaultAnnounce is the default announcement schedule: gratuitous ARP (or
// unsolicited neighbour advertisement) at 0, 100 ms and 1 s after binding.
var DefaultAnnounce = []time.Duration{0, 100 * time.Millisecond, time.Second}

// Limits on the properties.
const (
	maxLabel       = 15 // IFNAMSIZ-1: the kernel rejects longer labels (ERANGE)
	maxAnnounce    = 32
	maxAnnounceAt  = time.Hour
	minRefresh     = 10 * time.Millisecond
	maxProbeCount  = 20
	maxProbeWindow = time.Minute
)

// props is the wire form of the properties (see Properties.Decode).
type props struct {
	Address       string              `json:"address"`
	Interface     string              `json:"interface,omitempty"`
	Label         string              `json:"label,omitempty"`
	Announce      []resource.Duration `json:"announce,omitempty"`
	Refresh       resource.Duration   `json:"refresh,omitempty"`
	ProbeCount    *int                `json:"probe_count,omitempty"`
	ProbeInterval *resource.Duration  `json:"probe_interval,omitempty"`
	ProbeWait     *resource.Duration  `json:"probe_wait,omitempty"`
	NetNS         string              `json:"netns,omitempty"`
}

// config is the validated configuration of one instance.
type config struct {
	Prefix        netip.Prefix // the address with its prefix length
	Interface     string       // "" = automatic
	Label         string
	Announce      []time.Duration // sorted
	Refresh       time.Duration   // 0 = off
	ProbeCount    int             // 0 = no probe
	ProbeInterval time.Duration
	ProbeWait     time.Duration
	NetNS         string // "" = the process's namespace
}

// Addr is the virtual address itself.
func (c *config) Addr() netip.Addr { return c.Prefix.Addr() }

// parseConfig decodes and checks properties without touching the system.
// defNS is the namespace used when the netns property is empty.
func parseConfig(p resource.Properties, defNS string) (*config, error) {
	var w props
	if err := p.Decode(&w); err != nil {
		return nil, err
	}
	c := &config{
		Interface:     w.Interface,
		Label:         w.Label,
		Refresh:       w.Refresh.D(),
		ProbeCount:    DefaultProbeCount,
		ProbeInterval: DefaultProbeInterval,
		ProbeWait:     DefaultProbeWait,
		NetNS:         w.NetNS,
	}
	if w.Address == "" {
		return nil, resource.ConfigError("address", w.Address, "required: an address with prefix length, such as 192.0.2.10/24 or 2001:db8::10/64")
	}
	pfx, err := netip.ParsePrefix(w.Address)
	if err != nil {
		return nil, resource.ConfigError("address", w.Address, "not an address with prefix length (want e.g. 192.0.2.10/24 or 2001:db8::10/64): %v", err)
	}
	a := pfx.Addr()
	switch {
	case a.Is4In6():
		return nil, resource.ConfigError("address", w.Address, "IPv4-mapped IPv6 address: write it as IPv4")
	case a.Zone() != "":
		return nil, resource.ConfigError("address", w.Address, "zone not allowed")
	case a.IsUnspecified(), a.IsMulticast(), a.IsLoopback():
		return nil, resource.ConfigError("address", w.Address, "not a unicast host address")
	case a.Is4() && a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return nil, resource.ConfigError("address", w.Address, "not a unicast host address")
	}
	c.Prefix = pfx

	if n := w.Interface; n != "" {
		if len(n) > 15 || strings.ContainsAny(n, "/ \t\n:") || n == "." || n == ".." {
			return nil, resource.ConfigError("interface", n, "not a valid interface name (at most 15 characters, no '/', ':' or spaces)")
		}
	}
	if l := w.Label; l != "" {
		if a.Is6() {
			return nil, resource.ConfigError("label", l, "labels exist only for IPv4 addresses")
		}
		if len(l) > maxLabel {
			return nil, resource.ConfigError("label", l, "longer than %d characters", maxLabel)
		}
		for _, r := range l {
			if r <= ' ' || r > '~' {
				return nil, resource.ConfigError("label", l, "only printable ASCII without spaces allowed")
			}
		}
	}
	if w.Announce == nil {
		c.Announce = slices.Clone(DefaultAnnounce)
	} else {
		if len(w.Announce) > maxAnnounce {
			return nil, resource.ConfigError("announce", len(w.Announce), "at most %d announcements", maxAnnounce)
		}
		c.Announce = make([]time.Duration, 0, len(w.Announce))
		for _, d := range w.Announce {
			if d < 0 || d.D() > maxAnnounceAt {
				return nil, resource.ConfigError("announce", d.D().String(), "offsets must be between 0 and %v", maxAnnounceAt)
			}
			c.Announce = append(c.Announce, d.D())
		}
		slices.Sort(c.Announce)
	}
	if c.Refresh < 0 || (c.Refresh > 0 && c.Refresh < minRefresh) {
		return nil, resource.ConfigError("refresh", c.Refresh.String(), "must be 0 (off) or at least %v", minRefresh)
	}
	if w.ProbeCount != nil {
		c.ProbeCount = *w.ProbeCount
		if c.ProbeCount < 0 || c.ProbeCount > maxProbeCount {
			return nil, resource.ConfigError("probe_count", c.ProbeCount, "must be between 0 (no probe) and %d", maxProbeCount)
		}
	}
	if w.ProbeInterval != nil {
		c.ProbeInterval = w.ProbeInterval.D()
		if c.ProbeInterval <= 0 || c.ProbeInterval > maxProbeWindow {
			return nil, resource.ConfigError("probe_interval", c.ProbeInterval.String(), "must be above 0 and at most %v", maxProbeWindow)
		}
	}
	if w.ProbeWait != nil {
		c.ProbeWait = w.ProbeWait.D()
		if c.ProbeWait < 0 || c.ProbeWait > maxProbeWindow {
			return nil, resource.ConfigError("probe_wait", c.ProbeWait.String(), "must be between 0 and %v", maxProbeWindow)
		}
	}
	if c.NetNS == "" {
		c.NetNS = defNS
	} else if !filepath.IsAbs(c.NetNS) {
		return nil, resource.ConfigError("netns", c.NetNS, "must be an absolute path (/run/netns/NAME or /proc/PID/ns/net)")
	}
	return c, nil
}

// probeWindow is how long a full duplicate-address probe takes.
func (c *config) probeWindow() time.Duration {
	if c.ProbeCount == 0 {
		return 0
	}
	return time.Duration(c.ProbeCount-1)*c.ProbeInterval + c.ProbeWait
}

func (c *config) String() string {
	ifn := c.Interface
	if ifn == "" {
		ifn = "auto"
	}
	return fmt.Sprintf("%s on %s", c.Prefix, ifn)
}
