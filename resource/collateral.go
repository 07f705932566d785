package resource

import "errors"

// ErrCollateral marks a failure a resource did not cause: the process that
// hosted it was killed because another resource in the same process
// deadlocked or hung. Collateral wraps an error with it; IsCollateral tests
// for it through any wrapping.
//
// The monitor restarts a resource whose failure is collateral like any other,
// but does not count the failure against the resource's restart threshold, so
// one misbehaving resource cannot push unrelated groups into failover.
var ErrCollateral = errors.New("collateral failure: the hosting process was killed for another resource")

type collateralError struct{ err error }

func (e *collateralError) Error() string {
	if e.err == nil {
		return ErrCollateral.Error()
	}
	return e.err.Error()
}

func (e *collateralError) Unwrap() []error { return []error{e.err, ErrCollateral} }

// Collateral marks err as a collateral failure (see ErrCollateral). The error
// keeps its class and message. Collateral(nil) is ErrCollateral.
func Collateral(err error) error {
	if err == nil {
		return ErrCollateral
	}
	return &collateralError{err: err}
}

// IsCollateral reports whether err is marked as a collateral failure.
func IsCollateral(err error) bool { return errors.Is(err, ErrCollateral) }
