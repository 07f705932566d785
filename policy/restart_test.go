package policy_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sftkit/sft/policy"
	"github.com/sftkit/sft/resource"
)

func TestRestartDecide(t *testing.T) {
	t.Parallel()
	errBoom := errors.New("process exited")
	const period = policy.DefaultRestartPeriod
	tests := []struct {
		name     string
		policy   policy.Restart
		restarts []time.Time
		err      error
		want     policy.Action
		delay    time.Duration
		reason   string // substring of Decision.Reason
	}{
		// Within the threshold: restart here after the delay.
		{name: "first failure restarts after default delay", err: errBoom,
			want: policy.ActionRestart, delay: 500 * time.Millisecond, reason: "restart 1 of 3 within 15m0s"},
		{name: "unclassified error is transient", err: errBoom, restarts: ago(time.Minute),
			want: policy.ActionRestart, delay: 500 * time.Millisecond, reason: "restart 2 of 3 within 15m0s"},
		{name: "explicit transient error restarts", err: resource.Transient(errBoom), restarts: ago(2*time.Minute, time.Minute),
			want: policy.ActionRestart, delay: 500 * time.Millisecond, reason: "restart 3 of 3 within 15m0s"},
		{name: "nil error counts as transient", err: nil,
			want: policy.ActionRestart, delay: 500 * time.Millisecond, reason: "restart 1 of 3"},
		{name: "custom delay", policy: policy.Restart{Delay: 2 * time.Second}, err: errBoom,
			want: policy.ActionRestart, delay: 2 * time.Second, reason: "restart 1 of 3"},
		{name: "negative delay means restart at once", policy: policy.Restart{Delay: -1}, err: errBoom,
			want: policy.ActionRestart, delay: 0, reason: "restart 1 of 3"},
		{name: "negative delay survives WithDefaults before Decide", policy: policy.Restart{Delay: -1}.WithDefaults(), err: errBoom,
			want: policy.ActionRestart, delay: 0, reason: "restart 1 of 3"},
		{name: "restart-no-failover restarts within threshold", policy: policy.Restart{Action: policy.RestartNoFailover},
			restarts: ago(time.Minute), err: errBoom,
			want: policy.ActionRestart, delay: 500 * time.Millisecond, reason: "restart 2 of 3"},
		{name: "custom threshold and period in reason", policy: policy.Restart{Threshold: 5, Period: time.Minute},
			restarts: ago(50*time.Second, 40*time.Second, 30*time.Second, 20*time.Second), err: errBoom,
			want: policy.ActionRestart, delay: 500 * time.Millisecond, reason: "restart 5 of 5 within 1m0s"},

		// Past the threshold: escalate.
		{name: "restart-then-failover escalates after threshold", err: errBoom,
			restarts: ago(3*time.Minute, 2*time.Minute, time.Minute),
			want:     policy.ActionFailover, delay: 0, reason: "restart threshold reached: 3 restarts within 15m0s: failing the group over"},
		{name: "explicit restart-then-failover escalates", policy: policy.Restart{Action: policy.RestartThenFailover}, err: errBoom,
			restarts: ago(3*time.Minute, 2*time.Minute, time.Minute),
			want:     policy.ActionFailover, delay: 0, reason: "failing the group over"},
		{name: "more restarts than threshold still escalates", err: errBoom,
			restarts: ago(5*time.Minute, 4*time.Minute, 3*time.Minute, 2*time.Minute, time.Minute),
			want:     policy.ActionFailover, reason: "5 restarts within 15m0s"},
		{name: "threshold 1 escalates on second failure", policy: policy.Restart{Threshold: 1}, err: errBoom,
			restarts: ago(time.Minute), want: policy.ActionFailover, reason: "1 restarts within 15m0s"},
		{name: "restart-no-failover stays failed with retry period", policy: policy.Restart{Action: policy.RestartNoFailover}, err: errBoom,
			restarts: ago(3*time.Minute, 2*time.Minute, time.Minute),
			want:     policy.ActionStayFailed, delay: time.Hour, reason: "restart-no-failover; retry here in 1h0m0s"},
		{name: "restart-no-failover custom retry period", policy: policy.Restart{Action: policy.RestartNoFailover, RetryPeriod: 10 * time.Minute}, err: errBoom,
			restarts: ago(3*time.Minute, 2*time.Minute, time.Minute),
			want:     policy.ActionStayFailed, delay: 10 * time.Minute, reason: "retry here in 10m0s"},
		{name: "restart-no-failover negative retry period never retries", policy: policy.Restart{Action: policy.RestartNoFailover, RetryPeriod: -1}, err: errBoom,
			restarts: ago(3*time.Minute, 2*time.Minute, time.Minute),
			want:     policy.ActionStayFailed, delay: 0, reason: "restart threshold reached"},

		// No restart at all.
		{name: "no-restart stays failed with retry period", policy: policy.Restart{Action: policy.NoRestart}, err: errBoom,
			want: policy.ActionStayFailed, delay: time.Hour, reason: "restart action is no-restart; retry here in 1h0m0s"},
		{name: "no-restart without retry", policy: policy.Restart{Action: policy.NoRestart, RetryPeriod: -time.Second}, err: errBoom,
			want: policy.ActionStayFailed, delay: 0, reason: "restart action is no-restart"},

		// Configuration errors: never restart, no retry delay, whatever the action.
		{name: "configuration error never restarts", err: resource.ConfigError("address", "x", "not an address"),
			want: policy.ActionStayFailed, delay: 0, reason: "configuration error"},
		{name: "wrapped configuration error never restarts", err: fmt.Errorf("online: %w", resource.Configuration(errBoom)),
			want: policy.ActionStayFailed, delay: 0, reason: "configuration error"},
		{name: "configuration error with restart-no-failover", policy: policy.Restart{Action: policy.RestartNoFailover, RetryPeriod: time.Minute},
			err: resource.Configuration(errBoom), want: policy.ActionStayFailed, delay: 0, reason: "configuration error"},
		{name: "configuration error with no-restart", policy: policy.Restart{Action: policy.NoRestart},
			err: resource.Configuration(errBoom), want: policy.ActionStayFailed, delay: 0, reason: "configuration error"},
		{name: "configuration error past threshold does not fail over", err: resource.Configuration(errBoom),
			restarts: ago(3*time.Minute, 2*time.Minute, time.Minute),
			want:     policy.ActionStayFailed, delay: 0, reason: "not restarting anywhere"},

		// Node-local errors: fail over at once (restart-then-failover).
		{name: "node-local error fails over immediately", err: resource.NodeLocal(errBoom),
			want: policy.ActionFailover, delay: 0, reason: "this node cannot host the resource"},
		{name: "wrapped node-local error fails over immediately", err: fmt.Errorf("online: %w", resource.NodeLocal(errBoom)),
			want: policy.ActionFailover, delay: 0, reason: "failing the group over"},
		{name: "node-local with restart-no-failover stays failed with retry", policy: policy.Restart{Action: policy.RestartNoFailover},
			err: resource.NodeLocal(errBoom), want: policy.ActionStayFailed, delay: time.Hour, reason: "restart action is restart-no-failover"},
		{name: "node-local with no-restart stays failed", policy: policy.Restart{Action: policy.NoRestart},
			err: resource.NodeLocal(errBoom), want: policy.ActionStayFailed, delay: time.Hour, reason: "restart action is no-restart"},

		// The failure count forgets restarts older than Period.
		{name: "restarts older than period are forgotten", err: errBoom,
			restarts: ago(period+3*time.Minute, period+2*time.Minute, period+time.Minute),
			want:     policy.ActionRestart, delay: 500 * time.Millisecond, reason: "restart 1 of 3"},
		{name: "only recent restarts count", err: errBoom,
			restarts: ago(period+time.Hour, period+time.Minute, 10*time.Minute, time.Minute),
			want:     policy.ActionRestart, delay: 500 * time.Millisecond, reason: "restart 3 of 3"},
		{name: "restart exactly period ago is forgotten", err: errBoom,
			restarts: ago(period, period, period),
			want:     policy.ActionRestart, delay: 500 * time.Millisecond, reason: "restart 1 of 3"},
		{name: "restart just inside period still counts", err: errBoom,
			restarts: ago(period-time.Nanosecond, period-time.Nanosecond, period-time.Nanosecond),
			want:     policy.ActionFailover, reason: "3 restarts within 15m0s"},
		{name: "custom period forgets sooner", policy: policy.Restart{Period: time.Minute}, err: errBoom,
			restarts: ago(3*time.Minute, 2*time.Minute, time.Minute),
			want:     policy.ActionRestart, delay: 500 * time.Millisecond, reason: "restart 1 of 3 within 1m0s"},
		{name: "restarts recorded after now do not count", err: errBoom,
			restarts: ago(-time.Minute, -2*time.Minute, -3*time.Minute),
			want:     policy.ActionRestart, delay: 500 * time.Millisecond, reason: "restart 1 of 3"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := tc.policy.Decide(t0, tc.restarts, tc.err)
			require.Equal(t, tc.want, d.Action, "decision %v", d)
			require.Equal(t, tc.delay, d.Delay, "decision %v", d)
			require.Contains(t, d.Reason, tc.reason)
			require.Empty(t, d.Node, "restart policy does not pick nodes")
		})
	}
}

// TestRestartDecideSequence plays the monitor: it records each restart it
// acts on and checks that the fourth failure escalates and that the count
// starts over once the old restarts fall out of the period.
func TestRestartDecideSequence(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		policy policy.Restart
		want   []policy.Action
	}{
		{name: "restart-then-failover", policy: policy.Restart{},
			want: []policy.Action{policy.ActionRestart, policy.ActionRestart, policy.ActionRestart, policy.ActionFailover}},
		{name: "restart-no-failover", policy: policy.Restart{Action: policy.RestartNoFailover},
			want: []policy.Action{policy.ActionRestart, policy.ActionRestart, policy.ActionRestart, policy.ActionStayFailed}},
		{name: "threshold 1", policy: policy.Restart{Threshold: 1},
			want: []policy.Action{policy.ActionRestart, policy.ActionFailover}},
		{name: "no-restart", policy: policy.Restart{Action: policy.NoRestart},
			want: []policy.Action{policy.ActionStayFailed}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			period := tc.policy.WithDefaults().Period
			var h policy.History
			now := t0
			for i, want := range tc.want {
				d := tc.policy.Decide(now, h, errors.New("boom"))
				require.Equal(t, want, d.Action, "failure %d: %v", i+1, d)
				if d.Action == policy.ActionRestart {
					h = h.Add(now, period)
				}
				now = now.Add(time.Minute)
			}
			if tc.policy.WithDefaults().Action == policy.NoRestart {
				require.Empty(t, h, "no-restart never restarts")
				return
			}
			// One period after the last restart every restart is forgotten.
			later := h[len(h)-1].Add(period)
			d := tc.policy.Decide(later, h, errors.New("boom"))
			require.Equal(t, policy.ActionRestart, d.Action, "after the period: %v", d)
			require.Contains(t, d.Reason, "restart 1 of")
		})
	}
}

func TestRestartWithDefaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   policy.Restart
		want policy.Restart
	}{
		{name: "zero takes DESIGN.md defaults", in: policy.Restart{},
			want: policy.Restart{Action: policy.RestartThenFailover, Threshold: 3, Period: 15 * time.Minute, Delay: 500 * time.Millisecond, RetryPeriod: time.Hour}},
		{name: "set fields are kept",
			in:   policy.Restart{Action: policy.RestartNoFailover, Threshold: 5, Period: time.Minute, Delay: time.Second, RetryPeriod: 2 * time.Hour},
			want: policy.Restart{Action: policy.RestartNoFailover, Threshold: 5, Period: time.Minute, Delay: time.Second, RetryPeriod: 2 * time.Hour}},
		{name: "negative delay (none) and negative retry (never) stay negative",
			in:   policy.Restart{Action: policy.NoRestart, Delay: -time.Second, RetryPeriod: -time.Second},
			want: policy.Restart{Action: policy.NoRestart, Threshold: 3, Period: 15 * time.Minute, Delay: -time.Second, RetryPeriod: -time.Second}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.want, tc.in.WithDefaults())
			require.Equal(t, tc.want, tc.in.WithDefaults().WithDefaults(), "idempotent")
		})
	}
}

func TestRestartValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		in     policy.Restart
		fields []string // fields named, in order
		values []string // the bad values as printed
	}{
		{name: "zero is valid", in: policy.Restart{}},
		{name: "everything set is valid", in: policy.Restart{Action: policy.RestartNoFailover, Threshold: 1, Period: time.Second, Delay: time.Second, RetryPeriod: time.Second}},
		{name: "negative delay and retry period are valid (none, never)", in: policy.Restart{Delay: -1, RetryPeriod: -1}},
		{name: "unknown action", in: policy.Restart{Action: policy.RestartAction(9)}, fields: []string{"action"}, values: []string{"9"}},
		{name: "negative threshold", in: policy.Restart{Threshold: -1}, fields: []string{"threshold"}, values: []string{"-1"}},
		{name: "negative period", in: policy.Restart{Period: -time.Second}, fields: []string{"period"}, values: []string{"-1s"}},
		{name: "all bad at once", in: policy.Restart{Action: -2, Threshold: -4, Period: -time.Minute},
			fields: []string{"action", "threshold", "period"}, values: []string{"-2", "-4", "-1m0s"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			requireValidation(t, tc.in.Validate(), tc.fields, tc.values)
		})
	}
}

func TestRestartActionText(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		action policy.RestartAction
		text   string
	}{
		{name: "default", action: policy.RestartDefault, text: "default"},
		{name: "no-restart", action: policy.NoRestart, text: "no-restart"},
		{name: "restart-no-failover", action: policy.RestartNoFailover, text: "restart-no-failover"},
		{name: "restart-then-failover", action: policy.RestartThenFailover, text: "restart-then-failover"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.text, tc.action.String())
			b, err := tc.action.MarshalText()
			require.NoError(t, err)
			require.Equal(t, tc.text, string(b))

			got, err := policy.ParseRestartAction(tc.text)
			require.NoError(t, err)
			require.Equal(t, tc.action, got)

			var u policy.RestartAction = -1
			require.NoError(t, u.UnmarshalText(b))
			require.Equal(t, tc.action, u)

			// Through a config struct as JSON.
			in := policy.Restart{Action: tc.action, Threshold: 2}
			j, err := json.Marshal(in)
			require.NoError(t, err)
			if tc.action != policy.RestartDefault { // omitempty
				require.Contains(t, string(j), `"action":"`+tc.text+`"`)
			}
			var out policy.Restart
			require.NoError(t, json.Unmarshal(j, &out))
			require.Equal(t, in, out)
		})
	}
}

func TestParseRestartAction(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    policy.RestartAction
		wantErr bool
	}{
		{name: "empty is default", in: "", want: policy.RestartDefault},
		{name: "known name", in: "no-restart", want: policy.NoRestart},
		{name: "unknown name", in: "restart-sometimes", wantErr: true},
		{name: "case matters", in: "No-Restart", wantErr: true},
		{name: "WSFC number is not a name", in: "2", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := policy.ParseRestartAction(tc.in)
			if tc.wantErr {
				requireFieldError(t, err, "action", fmt.Sprintf("%q", tc.in))
				u := policy.RestartNoFailover
				requireFieldError(t, u.UnmarshalText([]byte(tc.in)), "action", fmt.Sprintf("%q", tc.in))
				require.Equal(t, policy.RestartNoFailover, u, "a failed UnmarshalText leaves the value alone")
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestRestartActionStringUnknown(t *testing.T) {
	t.Parallel()
	require.Equal(t, "RestartAction(9)", policy.RestartAction(9).String())
}
