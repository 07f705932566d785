package ipaddress

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sftkit/sft/resource"
)

func TestParseConfigDefaults(t *testing.T) {
	c, err := parseConfig(resource.Properties{"address": "192.0.2.10/24"}, "/run/netns/x")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Announce, DefaultAnnounce) || c.Refresh != 0 || c.ProbeCount != 3 ||
		c.ProbeInterval != 50*time.Millisecond || c.ProbeWait != 100*time.Millisecond || c.NetNS != "/run/netns/x" {
		t.Fatalf("defaults: %+v", c)
	}
	if got := c.probeWindow(); got != 200*time.Millisecond {
		t.Fatalf("probe window %v, want 200ms", got)
	}
}

func TestParseConfigValues(t *testing.T) {
	c, err := parseConfig(resource.Properties{
		"address": "2001:db8::10/64", "interface": "eth0", "announce": []any{"1s", 0, "100ms"},
		"refresh": 30, "probe_count": 0, "probe_interval": "10ms", "probe_wait": "20ms", "netns": "/proc/1/ns/net",
	}, "")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Announce, []time.Duration{0, 100 * time.Millisecond, time.Second}) {
		t.Errorf("announce not sorted: %v", c.Announce)
	}
	if c.Refresh != 30*time.Second || c.ProbeCount != 0 || c.probeWindow() != 0 || c.NetNS != "/proc/1/ns/net" || c.Interface != "eth0" {
		t.Errorf("config %+v", c)
	}
	c, err = parseConfig(resource.Properties{"address": "192.0.2.10/24", "announce": []any{}}, "")
	if err != nil || len(c.Announce) != 0 {
		t.Errorf("empty announce list: %v %v", c.Announce, err)
	}
}

// TestParseConfigErrors checks that every bad property is a configuration
// error naming the property.
func TestParseConfigErrors(t *testing.T) {
	tests := []struct {
		props resource.Properties
		field string
	}{
		{resource.Properties{}, "address"},
		{resource.Properties{"address": "10.0.0.300/24"}, "address"},
		{resource.Properties{"address": "192.0.2.10"}, "address"},
		{resource.Properties{"address": "0.0.0.0/0"}, "address"},
		{resource.Properties{"address": "224.0.0.1/4"}, "address"},
		{resource.Properties{"address": "::ffff:192.0.2.1/120"}, "address"},
		{resource.Properties{"address": 42}, "address"},
		{resource.Properties{"address": "192.0.2.10/24", "interface": "a/b"}, "interface"},
		{resource.Properties{"address": "192.0.2.10/24", "interface": "waytoolonginterfacename"}, "interface"},
		{resource.Properties{"address": "192.0.2.10/24", "label": "sixteen-chars-xx"}, "label"},
		{resource.Properties{"address": "192.0.2.10/24", "label": "has space"}, "label"},
		{resource.Properties{"address": "2001:db8::1/64", "label": "eth0:v"}, "label"},
		{resource.Properties{"address": "192.0.2.10/24", "announce": []any{"-1s"}}, "announce"},
		{resource.Properties{"address": "192.0.2.10/24", "announce": []any{"2h"}}, "announce"},
		{resource.Properties{"address": "192.0.2.10/24", "refresh": "1ms"}, "refresh"},
		{resource.Properties{"address": "192.0.2.10/24", "probe_count": -1}, "probe_count"},
		{resource.Properties{"address": "192.0.2.10/24", "probe_count": 1000}, "probe_count"},
		{resource.Properties{"address": "192.0.2.10/24", "probe_interval": "0s"}, "probe_interval"},
		{resource.Properties{"address": "192.0.2.10/24", "probe_wait": "-1s"}, "probe_wait"},
		{resource.Properties{"address": "192.0.2.10/24", "netns": "relative/path"}, "netns"},
		{resource.Properties{"address": "192.0.2.10/24", "bogus": 1}, "bogus"},
	}
	for _, tt := range tests {
		t.Run(tt.field, func(t *testing.T) {
			_, err := parseConfig(tt.props, "")
			var re *resource.Error
			if !errors.As(err, &re) || re.Class != resource.ClassConfiguration || re.Field != tt.field {
				t.Fatalf("props %v: got %v (%#v), want a configuration error naming %q", tt.props, err, re, tt.field)
			}
			if !strings.Contains(err.Error(), tt.field) {
				t.Fatalf("message %q does not name %q", err, tt.field)
			}
		})
	}
}

func TestTypeName(t *testing.T) {
	if got := NewType().Name(); got != "ipaddress" {
		t.Fatalf("Name() = %q", got)
	}
}

// TestRunSchedule checks the announcement times with a fake clock: the
// offsets, then the refresh period, and that cancelling stops it.
func TestRunSchedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		var at []time.Duration
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			runSchedule(ctx, start, []time.Duration{100 * time.Millisecond, time.Second}, 5*time.Second, func() {
				at = append(at, time.Since(start))
			})
		}()
		time.Sleep(16*time.Second + time.Millisecond)
		synctest.Wait()
		cancel()
		<-done
		want := []time.Duration{100 * time.Millisecond, time.Second, 6 * time.Second, 11 * time.Second, 16 * time.Second}
		if !slices.Equal(at, want) {
			t.Fatalf("sent at %v, want %v", at, want)
		}
	})
}

func TestRunScheduleNoRefreshEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := 0
		runSchedule(context.Background(), time.Now(), []time.Duration{time.Second, 2 * time.Second}, 0, func() { n++ })
		if n != 2 {
			t.Fatalf("sent %d announcements, want 2", n)
		}
	})
}

func TestRunScheduleCanceledBeforeFirst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		n := 0
		runSchedule(ctx, time.Now(), []time.Duration{time.Second}, time.Second, func() { n++ })
		if n != 0 {
			t.Fatalf("sent %d announcements after cancel", n)
		}
	})
}
