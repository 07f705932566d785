package peer

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/sftkit/sft/internal/health"
	"github.com/sftkit/sft/resource"
)

func validConfig() Config {
	return Config{
		Node: "a", Peer: "b",
		Listen:   netip.MustParseAddrPort("192.0.2.1:7946"),
		PeerAddr: netip.MustParseAddrPort("192.0.2.2:7946"),
		Key:      []byte("0123456789abcdef"),
		Groups:   []Group{{Name: "web", Address: netip.MustParseAddr("192.0.2.10"), Home: "a"}},
	}
}

func TestConfigValid(t *testing.T) {
	if err := validConfig().Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestConfigErrorsNameFieldAndValue(t *testing.T) {
	for _, tc := range []struct {
		name  string
		mod   func(*Config)
		field string
		value string
	}{
		{"key", func(c *Config) { c.Key = []byte("short") }, "key", "5 bytes"},
		{"peer", func(c *Config) { c.Peer = "a" }, "peer", "a"},
		{"home", func(c *Config) { c.Groups[0].Home = "x" }, "groups[0].home", "x"},
		{"dup", func(c *Config) { c.Groups = append(c.Groups, c.Groups[0]) }, "groups[1].name", "web"},
		{"interval", func(c *Config) { c.Detect.Interval = time.Microsecond }, "detect.interval", "1µs"},
		{"loss", func(c *Config) { c.Detect.SurviveLoss = 1.5 }, "detect.survive_loss", "1.5"},
		{"check", func(c *Config) { c.Groups[0].Check = health.Config{TCP: "nonsense"} }, "groups[0].check", ""},
		{"listen", func(c *Config) { c.Listen = netip.AddrPort{} }, "listen", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := validConfig()
			tc.mod(&c)
			err := c.Validate()
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tc.field) || !strings.Contains(err.Error(), tc.value) {
				t.Fatalf("error %q does not name %q and %q", err, tc.field, tc.value)
			}
			if !errors.Is(err, resource.ErrConfiguration) {
				t.Fatalf("not a configuration error: %v", err)
			}
		})
	}
}

// The arithmetic refuses MiniSFT's 3 s x 3 and a fast detector with too
// few misses, and names the k that would do.
func TestDetectArithmetic(t *testing.T) {
	for _, tc := range []struct {
		d    Detect
		want string
	}{
		{Detect{Interval: 3 * time.Second, Misses: 3}, "use misses >= 18"},
		{Detect{Interval: 10 * time.Millisecond, Misses: 23}, "use misses >= 24"},
		{Detect{Misses: 40, SurviveLoss: 0.64}, "use misses >= 47"},
	} {
		err := tc.d.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "detect.misses") {
			t.Errorf("%+v: %v, want %q", tc.d, err, tc.want)
		}
	}
	if err := (Detect{}).Validate(); err != nil {
		t.Fatalf("defaults refused: %v", err)
	}
	// Documented figures (package doc).
	if k := MinMisses(DefaultInterval, 0.4, 1); k != DefaultMisses {
		t.Fatalf("MinMisses = %d, the default is %d", k, DefaultMisses)
	}
	if r := FalseRate(DefaultInterval, DefaultMisses, 0.4, time.Minute); r < 0.9e-6 || r > 1.1e-6 {
		t.Fatalf("false rate per minute at 40%% = %g, documented 1.0e-6", r)
	}
	if w := (Detect{}).withDefaults().Window(); w != 240*time.Millisecond {
		t.Fatalf("window %v", w)
	}
}
