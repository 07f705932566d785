package policy_test

import (
	"fmt"
	"testing"
	"time"
	_ "time/tzdata" // America/New_York without relying on the host's zoneinfo

	"github.com/stretchr/testify/require"

	"github.com/sftkit/sft/policy"
)

func TestFailbackDecide(t *testing.T) {
	t.Parallel()
	day := func(h, m int) time.Time { return time.Date(2026, time.March, 4, h, m, 0, 0, time.UTC) }
	office := policy.Failback{Mode: policy.FailbackWindow, WindowStart: 9, WindowEnd: 17}
	night := policy.Failback{Mode: policy.FailbackWindow, WindowStart: 22, WindowEnd: 2}
	tests := []struct {
		name      string
		policy    policy.Failback
		now       time.Time
		current   string
		preferred string
		want      policy.Action
		node      string
		delay     time.Duration
		reason    string
	}{
		{name: "prevent is the default", policy: policy.Failback{}, now: day(12, 0), current: "b", preferred: "a",
			want: policy.ActionNone, reason: "failback is prevented: move the group back by hand"},
		{name: "already on preferred", policy: policy.Failback{Mode: policy.FailbackImmediate}, now: day(12, 0), current: "a", preferred: "a",
			want: policy.ActionNone, reason: "already on its most preferred available node"},
		{name: "no preferred node up", policy: policy.Failback{Mode: policy.FailbackImmediate}, now: day(12, 0), current: "b", preferred: "",
			want: policy.ActionNone, reason: "already on its most preferred"},
		{name: "immediate moves now", policy: policy.Failback{Mode: policy.FailbackImmediate}, now: day(3, 0), current: "b", preferred: "a",
			want: policy.ActionMove, node: "a", reason: "failback immediate: a is preferred and up"},

		// Window 09-17.
		{name: "window open", policy: office, now: day(10, 0), current: "b", preferred: "a",
			want: policy.ActionMove, node: "a", reason: "failback window 09:00-17:00 is open"},
		{name: "window opens at its first minute", policy: office, now: day(9, 0), current: "b", preferred: "a",
			want: policy.ActionMove, node: "a"},
		{name: "window open at its last minute", policy: office, now: day(16, 59), current: "b", preferred: "a",
			want: policy.ActionMove, node: "a"},
		{name: "window closed at its end hour, opens tomorrow", policy: office, now: day(17, 0), current: "b", preferred: "a",
			want: policy.ActionNone, delay: 16 * time.Hour, reason: "waiting for the failback window 09:00-17:00"},
		{name: "window closed before opening, opens today", policy: office, now: day(8, 30), current: "b", preferred: "a",
			want: policy.ActionNone, delay: 30 * time.Minute},
		{name: "window closed at midnight", policy: office, now: day(0, 0), current: "b", preferred: "a",
			want: policy.ActionNone, delay: 9 * time.Hour},

		// Window 22-02 wraps past midnight.
		{name: "wrapping window open late evening", policy: night, now: day(23, 0), current: "b", preferred: "a",
			want: policy.ActionMove, node: "a", reason: "failback window 22:00-02:00 is open"},
		{name: "wrapping window open at midnight", policy: night, now: day(0, 0), current: "b", preferred: "a",
			want: policy.ActionMove, node: "a"},
		{name: "wrapping window open at 01:59", policy: night, now: day(1, 59), current: "b", preferred: "a",
			want: policy.ActionMove, node: "a"},
		{name: "wrapping window closed at 02:00", policy: night, now: day(2, 0), current: "b", preferred: "a",
			want: policy.ActionNone, delay: 20 * time.Hour, reason: "waiting for the failback window 22:00-02:00"},
		{name: "wrapping window closed at noon", policy: night, now: day(12, 0), current: "b", preferred: "a",
			want: policy.ActionNone, delay: 10 * time.Hour},
		{name: "wrapping window closed seconds before opening", policy: night, now: day(21, 59).Add(30 * time.Second), current: "b", preferred: "a",
			want: policy.ActionNone, delay: 30 * time.Second},
		{name: "window ending at midnight", policy: policy.Failback{Mode: policy.FailbackWindow, WindowStart: 23, WindowEnd: 0},
			now: day(23, 30), current: "b", preferred: "a", want: policy.ActionMove, node: "a"},

		// The window is in the location of now, not UTC.
		{name: "non-UTC: closed locally, delay to local opening", policy: night,
			now:     time.Date(2026, time.March, 4, 16, 0, 0, 0, time.UTC).In(time.FixedZone("IST", 5*3600+1800)), // 21:30 local
			current: "b", preferred: "a", want: policy.ActionNone, delay: 30 * time.Minute},
		{name: "same instant in UTC: closed, opens in 6h", policy: night,
			now:     time.Date(2026, time.March, 4, 16, 0, 0, 0, time.UTC),
			current: "b", preferred: "a", want: policy.ActionNone, delay: 6 * time.Hour},
		{name: "non-UTC: open locally while closed in UTC", policy: night,
			now:     time.Date(2026, time.March, 4, 20, 0, 0, 0, time.UTC).In(time.FixedZone("IST", 5*3600+1800)), // 01:30 local
			current: "b", preferred: "a", want: policy.ActionMove, node: "a"},
		{name: "negative offset crosses the UTC date", policy: office,
			now:     time.Date(2026, time.March, 5, 3, 0, 0, 0, time.UTC).In(time.FixedZone("PST", -8*3600)), // 19:00 on Mar 4 local
			current: "b", preferred: "a", want: policy.ActionNone, delay: 14 * time.Hour},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := tc.policy.Decide(tc.now, tc.current, tc.preferred)
			require.Equal(t, tc.want, d.Action, "decision %v", d)
			require.Equal(t, tc.node, d.Node, "decision %v", d)
			require.Equal(t, tc.delay, d.Delay, "decision %v", d)
			require.Contains(t, d.Reason, tc.reason)
			if tc.delay > 0 {
				open := tc.now.Add(tc.delay)
				require.Equal(t, tc.policy.WindowStart, open.Hour(), "delay must land on the opening hour in now's location")
				require.Equal(t, policy.ActionMove, tc.policy.Decide(open, tc.current, tc.preferred).Action, "window open after the delay")
			}
		})
	}
}

// TestFailbackDecideDST checks the delay in a location with daylight saving
// time on the days the clocks change (America/New_York, 2026: 8 March
// 02:00 EST -> 03:00 EDT, 1 November 02:00 EDT -> 01:00 EST).
func TestFailbackDecideDST(t *testing.T) {
	t.Parallel()
	ny, err := time.LoadLocation("America/New_York")
	require.NoError(t, err)
	at := func(mo time.Month, d, h, m int) time.Time { return time.Date(2026, mo, d, h, m, 0, 0, ny) }
	tests := []struct {
		name     string
		start    int
		end      int
		now      time.Time
		delay    time.Duration
		openWall string // the opening as a wall clock in New York
	}{
		{name: "spring: the night before loses an hour", start: 9, end: 17, now: at(time.March, 7, 10+7, 0),
			delay: 15 * time.Hour, openWall: "2026-03-08 09:00 EDT"},
		{name: "spring: opening after the gap", start: 4, end: 6, now: at(time.March, 8, 1, 0),
			delay: 2 * time.Hour, openWall: "2026-03-08 04:00 EDT"},
		{name: "spring: window 02-04 opens when the clock jumps to 03:00", start: 2, end: 4, now: at(time.March, 8, 1, 30),
			delay: 30 * time.Minute, openWall: "2026-03-08 03:00 EDT"},
		{name: "spring: window 02-03 does not exist that night, opens next night", start: 2, end: 3, now: at(time.March, 8, 1, 30),
			delay: 23*time.Hour + 30*time.Minute, openWall: "2026-03-09 02:00 EDT"},
		{name: "spring: window 02-03 asked after the gap", start: 2, end: 3, now: at(time.March, 8, 3, 30),
			delay: 22*time.Hour + 30*time.Minute, openWall: "2026-03-09 02:00 EDT"},
		{name: "autumn: window 09-17 across the extra hour", start: 9, end: 17, now: at(time.October, 31, 18, 0),
			delay: 16 * time.Hour, openWall: "2026-11-01 09:00 EST"},
		{name: "autumn: window 02-04 after the repeated hour", start: 2, end: 4, now: at(time.November, 1, 0, 30),
			delay: 2*time.Hour + 30*time.Minute, openWall: "2026-11-01 02:00 EST"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := policy.Failback{Mode: policy.FailbackWindow, WindowStart: tc.start, WindowEnd: tc.end}
			require.NoError(t, f.Validate())
			require.False(t, f.InWindow(tc.now), "test case must start outside the window")
			d := f.Decide(tc.now, "b", "a")
			require.Equal(t, policy.ActionNone, d.Action, "decision %v", d)
			require.Equal(t, tc.delay, d.Delay, "decision %v", d)
			open := tc.now.Add(d.Delay).In(ny)
			require.Equal(t, tc.openWall, open.Format("2006-01-02 15:04 MST"))
			require.Equal(t, policy.ActionMove, f.Decide(open, "b", "a").Action, "window open after the delay")
		})
	}
}

// TestFailbackDelayIsNextOpening sweeps five days around both DST changes
// in steps of 10 minutes, for several windows, and checks the delay against a
// brute-force search: the window is closed from now until now+delay and
// open at now+delay.
func TestFailbackDelayIsNextOpening(t *testing.T) {
	t.Parallel()
	ny, err := time.LoadLocation("America/New_York")
	require.NoError(t, err)
	windows := [][2]int{{9, 17}, {22, 2}, {2, 3}, {2, 4}, {1, 2}, {23, 0}, {0, 1}, {3, 4}}
	starts := []time.Time{
		time.Date(2026, time.March, 6, 0, 0, 0, 0, ny),
		time.Date(2026, time.October, 30, 0, 0, 0, 0, ny),
		time.Date(2026, time.March, 6, 0, 0, 0, 0, time.UTC),
	}
	const step = 10 * time.Minute
	for _, w := range windows {
		t.Run(fmt.Sprintf("%02d-%02d", w[0], w[1]), func(t *testing.T) {
			t.Parallel()
			f := policy.Failback{Mode: policy.FailbackWindow, WindowStart: w[0], WindowEnd: w[1]}
			require.NoError(t, f.Validate())
			for _, s := range starts {
				for now := s; now.Before(s.Add(5 * 24 * time.Hour)); now = now.Add(step) {
					d := f.Decide(now, "b", "a")
					if f.InWindow(now) {
						require.Equal(t, policy.ActionMove, d.Action, "%v: %v", now, d)
						continue
					}
					require.Equal(t, policy.ActionNone, d.Action, "%v: %v", now, d)
					require.Positive(t, d.Delay, "%v: %v", now, d)
					require.LessOrEqual(t, d.Delay, 48*time.Hour, "%v: %v", now, d)
					open := now.Add(d.Delay)
					require.True(t, f.InWindow(open), "%v + %v = %v: window not open", now, d.Delay, open)
					// Nothing earlier opens. Windows open on whole hours
					// (or at a DST jump, also on the hour here), so
					// checking every step from now is exhaustive.
					for x := now; x.Before(open); x = x.Add(step) {
						require.False(t, f.InWindow(x), "%v: window already open at %v, before the reported opening %v", now, x, open)
					}
				}
			}
		})
	}
}

func TestFailbackValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		in     policy.Failback
		fields []string
		values []string
		also   string
	}{
		{name: "zero (prevent) is valid", in: policy.Failback{}},
		{name: "immediate is valid", in: policy.Failback{Mode: policy.FailbackImmediate}},
		{name: "window fields ignored unless mode window", in: policy.Failback{Mode: policy.FailbackPrevent, WindowStart: 99, WindowEnd: -1}},
		{name: "window is valid", in: policy.Failback{Mode: policy.FailbackWindow, WindowStart: 9, WindowEnd: 17}},
		{name: "wrapping window is valid", in: policy.Failback{Mode: policy.FailbackWindow, WindowStart: 22, WindowEnd: 2}},
		{name: "window from midnight is valid", in: policy.Failback{Mode: policy.FailbackWindow, WindowStart: 0, WindowEnd: 6}},
		{name: "unknown mode", in: policy.Failback{Mode: policy.FailbackMode(7)},
			fields: []string{"mode"}, values: []string{"7"}},
		{name: "negative start", in: policy.Failback{Mode: policy.FailbackWindow, WindowStart: -1, WindowEnd: 3},
			fields: []string{"window_start"}, values: []string{"-1"}, also: "0 to 23"},
		{name: "start 24", in: policy.Failback{Mode: policy.FailbackWindow, WindowStart: 24, WindowEnd: 3},
			fields: []string{"window_start"}, values: []string{"24"}},
		{name: "end 24", in: policy.Failback{Mode: policy.FailbackWindow, WindowStart: 22, WindowEnd: 24},
			fields: []string{"window_end"}, values: []string{"24"}},
		{name: "empty window", in: policy.Failback{Mode: policy.FailbackWindow, WindowStart: 5, WindowEnd: 5},
			fields: []string{"window_end"}, values: []string{"5"}, also: "equals window_start"},
		{name: "zero window in window mode is empty", in: policy.Failback{Mode: policy.FailbackWindow},
			fields: []string{"window_end"}, values: []string{"0"}},
		{name: "both out of range", in: policy.Failback{Mode: policy.FailbackWindow, WindowStart: 30, WindowEnd: -2},
			fields: []string{"window_start", "window_end"}, values: []string{"30", "-2"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.in.Validate()
			requireValidation(t, err, tc.fields, tc.values)
			if len(tc.fields) > 0 {
				require.Contains(t, err.Error(), tc.also)
			}
		})
	}
}

func TestFailbackModeText(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		mode policy.FailbackMode
		text string
	}{
		{name: "prevent", mode: policy.FailbackPrevent, text: "prevent"},
		{name: "immediate", mode: policy.FailbackImmediate, text: "immediate"},
		{name: "window", mode: policy.FailbackWindow, text: "window"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.text, tc.mode.String())
			b, err := tc.mode.MarshalText()
			require.NoError(t, err)
			require.Equal(t, tc.text, string(b))
			var m policy.FailbackMode = -1
			require.NoError(t, m.UnmarshalText(b))
			require.Equal(t, tc.mode, m)
		})
	}
}

func TestFailbackModeUnmarshalText(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    policy.FailbackMode
		wantErr bool
	}{
		{name: "empty is prevent", in: "", want: policy.FailbackPrevent},
		{name: "known", in: "immediate", want: policy.FailbackImmediate},
		{name: "unknown", in: "sometimes", wantErr: true},
		{name: "case matters", in: "Window", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := policy.FailbackWindow
			if tc.in == "" {
				m = policy.FailbackImmediate
			}
			err := m.UnmarshalText([]byte(tc.in))
			if tc.wantErr {
				requireFieldError(t, err, "mode", fmt.Sprintf("%q", tc.in))
				require.Equal(t, policy.FailbackWindow, m, "a failed UnmarshalText leaves the value alone")
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, m)
		})
	}
}

func TestFailbackModeStringUnknown(t *testing.T) {
	t.Parallel()
	require.Equal(t, "FailbackMode(5)", policy.FailbackMode(5).String())
}

// TestFailbackDecideInvalidWindow: Decide on a window that Validate rejects
// and that can never open still returns (no endless search) and asks again
// in a day.
func TestFailbackDecideInvalidWindow(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		f    policy.Failback
	}{
		{name: "hours past 23", f: policy.Failback{Mode: policy.FailbackWindow, WindowStart: 25, WindowEnd: 30}},
		{name: "negative hours", f: policy.Failback{Mode: policy.FailbackWindow, WindowStart: -5, WindowEnd: -1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Error(t, tc.f.Validate())
			d := tc.f.Decide(t0, "b", "a")
			require.Equal(t, policy.ActionNone, d.Action, "decision %v", d)
			require.Equal(t, 24*time.Hour, d.Delay, "decision %v", d)
		})
	}
}
