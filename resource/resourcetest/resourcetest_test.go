package resourcetest_test

import (
	"testing"

	"github.com/sftkit/sft/resource"
	"github.com/sftkit/sft/resource/resourcetest"
)

// fakeOptions runs the conformance suite against the unscripted Fake, with
// the probes a real type would provide.
func fakeOptions() resourcetest.Options {
	return resourcetest.Options{
		New: func(t *testing.T) resource.Resource {
			f := resourcetest.NewFake(t.Name())
			t.Cleanup(func() {
				if v := f.Violations(); len(v) > 0 {
					t.Errorf("the suite broke the contract: %v", v)
				}
			})
			return f
		},
		Up: func(t *testing.T, r resource.Resource) bool { return r.(*resourcetest.Fake).Up() },
		Hang: func(t *testing.T, r resource.Resource) <-chan struct{} {
			f := r.(*resourcetest.Fake)
			f.Block(resourcetest.MethodOnline, 1, resourcetest.Cancelable)
			hanging := make(chan struct{})
			go func() {
				if f.WaitBlocked(t.Context(), resourcetest.MethodOnline) == nil {
					close(hanging)
				}
			}()
			return hanging
		},
	}
}

func TestConformanceFake(t *testing.T) {
	t.Parallel()
	resourcetest.ConformanceWith(t, fakeOptions())
}

func TestConformanceFakeMinimal(t *testing.T) {
	t.Parallel()
	// The plain entry point, and a Fake offering no optional interface.
	resourcetest.Conformance(t, func(t *testing.T) resource.Resource {
		return resourcetest.Hidden(resourcetest.NewFake(t.Name()), resourcetest.CapFailureReporter|resourcetest.CapCloser|resourcetest.CapProcessKiller)
	})
}
