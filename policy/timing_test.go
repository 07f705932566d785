package policy_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sftkit/sft/policy"
	"github.com/sftkit/sft/resource"
)

func TestTimingWithDefaults(t *testing.T) {
	t.Parallel()
	s := time.Second
	// The DESIGN.md defaults table, written out rather than via the
	// package's constants so that a changed constant fails here.
	design := policy.Timing{LooksAliveInterval: 1 * s, IsAliveInterval: 10 * s, CallTimeout: 2 * s, PendingTimeout: 60 * s, DeadlockTimeout: 4 * s}
	tests := []struct {
		name  string
		in    policy.Timing
		hints []resource.Timing
		want  policy.Timing
	}{
		{name: "zero takes the DESIGN.md table", in: policy.Timing{}, want: design},
		{name: "deadlock is twice an explicit call timeout", in: policy.Timing{CallTimeout: 5 * s},
			want: policy.Timing{LooksAliveInterval: s, IsAliveInterval: 10 * s, CallTimeout: 5 * s, PendingTimeout: 60 * s, DeadlockTimeout: 10 * s}},
		{name: "set fields kept",
			in:   policy.Timing{LooksAliveInterval: 3 * s, IsAliveInterval: 30 * s, CallTimeout: 4 * s, PendingTimeout: 90 * s, DeadlockTimeout: 5 * s},
			want: policy.Timing{LooksAliveInterval: 3 * s, IsAliveInterval: 30 * s, CallTimeout: 4 * s, PendingTimeout: 90 * s, DeadlockTimeout: 5 * s}},
		{name: "hint fills before defaults", in: policy.Timing{},
			hints: []resource.Timing{{PendingTimeout: 300 * s, IsAliveInterval: 20 * s}},
			want:  policy.Timing{LooksAliveInterval: s, IsAliveInterval: 20 * s, CallTimeout: 2 * s, PendingTimeout: 300 * s, DeadlockTimeout: 4 * s}},
		{name: "own fields beat hints", in: policy.Timing{PendingTimeout: 30 * s},
			hints: []resource.Timing{{PendingTimeout: 300 * s, LooksAliveInterval: 500 * time.Millisecond}},
			want:  policy.Timing{LooksAliveInterval: 500 * time.Millisecond, IsAliveInterval: 10 * s, CallTimeout: 2 * s, PendingTimeout: 30 * s, DeadlockTimeout: 4 * s}},
		{name: "earlier hint beats later hint, later fills the gaps", in: policy.Timing{},
			hints: []resource.Timing{{CallTimeout: 3 * s}, {CallTimeout: 9 * s, IsAliveInterval: 15 * s}},
			want:  policy.Timing{LooksAliveInterval: s, IsAliveInterval: 15 * s, CallTimeout: 3 * s, PendingTimeout: 60 * s, DeadlockTimeout: 6 * s}},
		{name: "hinted call timeout doubles into deadlock", in: policy.Timing{},
			hints: []resource.Timing{{CallTimeout: 7 * s}},
			want:  policy.Timing{LooksAliveInterval: s, IsAliveInterval: 10 * s, CallTimeout: 7 * s, PendingTimeout: 60 * s, DeadlockTimeout: 14 * s}},
		{name: "hinted deadlock used as is", in: policy.Timing{},
			hints: []resource.Timing{{DeadlockTimeout: 30 * s}},
			want:  policy.Timing{LooksAliveInterval: s, IsAliveInterval: 10 * s, CallTimeout: 2 * s, PendingTimeout: 60 * s, DeadlockTimeout: 30 * s}},
		{name: "empty hint changes nothing", in: policy.Timing{}, hints: []resource.Timing{{}}, want: design},
		// issue 8 bug 11: a type's deadlock hint made for its own call
		// timeout does not survive a larger call timeout configured by the
		// user; the unset deadlock is derived from the final call timeout.
		{name: "bug 11: hinted deadlock below the final call timeout is derived", in: policy.Timing{CallTimeout: 10 * s},
			hints: []resource.Timing{{CallTimeout: 4 * s, DeadlockTimeout: 8 * s}},
			want:  policy.Timing{LooksAliveInterval: s, IsAliveInterval: 10 * s, CallTimeout: 10 * s, PendingTimeout: 60 * s, DeadlockTimeout: 20 * s}},
		{name: "bug 11: hinted deadlock equal to the final call timeout is derived", in: policy.Timing{CallTimeout: 8 * s},
			hints: []resource.Timing{{DeadlockTimeout: 8 * s}},
			want:  policy.Timing{LooksAliveInterval: s, IsAliveInterval: 10 * s, CallTimeout: 8 * s, PendingTimeout: 60 * s, DeadlockTimeout: 16 * s}},
		{name: "second hint's deadlock when the first's is too short", in: policy.Timing{CallTimeout: 10 * s},
			hints: []resource.Timing{{DeadlockTimeout: 8 * s}, {DeadlockTimeout: 25 * s}},
			want:  policy.Timing{LooksAliveInterval: s, IsAliveInterval: 10 * s, CallTimeout: 10 * s, PendingTimeout: 60 * s, DeadlockTimeout: 25 * s}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := policy.ResolveTiming(tc.in, tc.hints...)
			require.Equal(t, tc.want, got)
			require.Equal(t, got, policy.ResolveTiming(got, tc.hints...), "idempotent")
			require.NoError(t, policy.ValidateTiming(got))
		})
	}
}

func TestDefaultTiming(t *testing.T) {
	t.Parallel()
	d := policy.DefaultTiming()
	require.Equal(t, time.Second, d.LooksAliveInterval)
	require.Equal(t, 10*time.Second, d.IsAliveInterval)
	require.Equal(t, 2*time.Second, d.CallTimeout)
	require.Equal(t, 60*time.Second, d.PendingTimeout)
	require.Equal(t, 2*d.CallTimeout, d.DeadlockTimeout)
	require.Equal(t, policy.ResolveTiming(policy.Timing{}), d)
}

func TestTimingValidate(t *testing.T) {
	t.Parallel()
	s := time.Second
	tests := []struct {
		name   string
		in     policy.Timing
		fields []string
		values []string
		also   string // more text the message must hold
	}{
		{name: "zero is valid", in: policy.Timing{}},
		{name: "defaults are valid", in: policy.DefaultTiming()},
		{name: "deadlock just over call is valid", in: policy.Timing{CallTimeout: s, DeadlockTimeout: s + 1}},
		{name: "explicit deadlock over default call is valid", in: policy.Timing{DeadlockTimeout: 3 * s}},
		{name: "long call timeout with default deadlock is valid", in: policy.Timing{CallTimeout: time.Minute}},
		{name: "negative looks_alive_interval", in: policy.Timing{LooksAliveInterval: -s},
			fields: []string{"looks_alive_interval"}, values: []string{"-1s"}},
		{name: "negative is_alive_interval", in: policy.Timing{IsAliveInterval: -2 * s},
			fields: []string{"is_alive_interval"}, values: []string{"-2s"}},
		{name: "negative call_timeout", in: policy.Timing{CallTimeout: -3 * s},
			fields: []string{"call_timeout"}, values: []string{"-3s"}},
		{name: "negative pending_timeout", in: policy.Timing{PendingTimeout: -time.Minute},
			fields: []string{"pending_timeout"}, values: []string{"-1m0s"}},
		{name: "negative deadlock_timeout", in: policy.Timing{DeadlockTimeout: -5 * s},
			fields: []string{"deadlock_timeout"}, values: []string{"-5s"}},
		{name: "deadlock equal to call", in: policy.Timing{CallTimeout: 2 * s, DeadlockTimeout: 2 * s},
			fields: []string{"deadlock_timeout"}, values: []string{"2s"}, also: "longer than call_timeout (2s)"},
		{name: "deadlock below default call", in: policy.Timing{DeadlockTimeout: 1500 * time.Millisecond},
			fields: []string{"deadlock_timeout"}, values: []string{"1.5s"}, also: "call_timeout (2s)"},
		{name: "deadlock below explicit call", in: policy.Timing{CallTimeout: 10 * s, DeadlockTimeout: 5 * s},
			fields: []string{"deadlock_timeout"}, values: []string{"5s"}, also: "call_timeout (10s)"},
		{name: "several at once", in: policy.Timing{LooksAliveInterval: -s, PendingTimeout: -s, CallTimeout: 4 * s, DeadlockTimeout: 3 * s},
			fields: []string{"looks_alive_interval", "pending_timeout", "deadlock_timeout"}, values: []string{"-1s", "-1s", "3s"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := policy.ValidateTiming(tc.in)
			requireValidation(t, err, tc.fields, tc.values)
			if len(tc.fields) > 0 {
				require.Contains(t, err.Error(), tc.also)
			}
		})
	}
}

func TestTimingDeadlockGrace(t *testing.T) {
	t.Parallel()
	s := time.Second
	tests := []struct {
		name string
		in   policy.Timing
		want time.Duration
	}{
		{name: "defaults: 4s - 2s", in: policy.Timing{}, want: 2 * s},
		{name: "call timeout doubles: grace equals call", in: policy.Timing{CallTimeout: 5 * s}, want: 5 * s},
		{name: "explicit deadlock", in: policy.Timing{CallTimeout: 2 * s, DeadlockTimeout: 3 * s}, want: s},
		{name: "explicit deadlock, default call", in: policy.Timing{DeadlockTimeout: 30 * s}, want: 28 * s},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.want, policy.DeadlockGrace(tc.in))
		})
	}
}

func TestTimingIsResourceTiming(t *testing.T) {
	t.Parallel()
	in := resource.Timing{LooksAliveInterval: 1, IsAliveInterval: 2, CallTimeout: 3, PendingTimeout: 4, DeadlockTimeout: 5}
	var p policy.Timing = in // one type: no conversion
	require.Equal(t, in, policy.ResolveTiming(policy.Timing{}, p), "a full hint round-trips")
}
