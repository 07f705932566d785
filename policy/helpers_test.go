package policy_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sftkit/sft/resource"
)

// t0 is a fixed "now" for decisions: policy never reads the clock.
var t0 = time.Date(2026, time.March, 4, 12, 0, 0, 0, time.UTC)

// ago returns t0 minus each of ds, as a History.
func ago(ds ...time.Duration) []time.Time {
	out := make([]time.Time, len(ds))
	for i, d := range ds {
		out[i] = t0.Add(-d)
	}
	return out
}

// requireValidation checks a Validate result: nil when no fields are
// expected, else exactly the fields named, in order, each with its value.
func requireValidation(t *testing.T, err error, fields, values []string) {
	t.Helper()
	if len(fields) == 0 {
		require.NoError(t, err)
		return
	}
	require.Equal(t, fields, fieldErrors(err))
	for i := range fields {
		requireFieldError(t, err, fields[i], values[i])
	}
}

// requireFieldError checks that err is a configuration error whose message
// names field and shows value (as it is printed: strings quoted), and that
// one of the joined errors is a *resource.Error for exactly that field.
func requireFieldError(t *testing.T, err error, field, value string) {
	t.Helper()
	require.Error(t, err)
	require.ErrorIs(t, err, resource.ErrConfiguration)
	require.Contains(t, err.Error(), field)
	require.Contains(t, err.Error(), value)
	for _, e := range flatten(err) {
		var re *resource.Error
		if errors.As(e, &re) && re.Field == field {
			require.Equal(t, resource.ClassConfiguration, re.Class)
			require.Contains(t, e.Error(), value, "error for field %s", field)
			return
		}
	}
	require.Failf(t, "no error for field", "field %q not among %v", field, err)
}

// flatten unpacks errors.Join.
func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}

// fieldErrors lists the fields named by the configuration errors in err.
func fieldErrors(err error) []string {
	var out []string
	for _, e := range flatten(err) {
		var re *resource.Error
		if errors.As(e, &re) {
			out = append(out, re.Field)
		} else if e != nil {
			out = append(out, fmt.Sprintf("unclassified(%v)", e))
		}
	}
	return out
}
