package resourcetest_test

import (
	"testing"

	"github.com/sftkit/sft/resource"
	"github.com/sftkit/sft/resource/resourcetest"
)

// fakeOptions runs the conformance suite against typ's unscripted Fakes,
// with the probes a real type would provide.
func fakeOptions(typ *resourcetest.Type) resourcetest.Options {
	return resourcetest.Options{
		Up: func(t *testing.T, in resourcetest.Instance) bool {
			return typ.Instance(in.Name).Up()
		},
		Hang: func(t *testing.T, in resourcetest.Instance) <-chan struct{} {
			f := typ.Instance(in.Name)
			f.Block(resourcetest.MethodOnline, 1, resourcetest.Cancelable)
			hanging := make(chan struct{})
			go func() {
				if f.WaitBlocked(t.Context(), resourcetest.MethodOnline) == nil {
					close(hanging)
				}
			}()
			return hanging
		},
		BadProperties: []resourcetest.BadProperties{
			{Name: "negative failures", Properties: resource.Properties{"online_failures": -1}, Field: "online_failures"},
			{Name: "unknown property", Properties: resource.Properties{"color": "red"}, Field: "color"},
		},
	}
}

func TestSuiteFake(t *testing.T) {
	t.Parallel()
	typ := resourcetest.NewType("fake")
	resourcetest.Suite(t, typ, fakeOptions(typ))
	if typ.Validations() == 0 {
		t.Error("the suite never called Validate")
	}
	for _, f := range typ.Instances() {
		if v := f.Violations(); len(v) > 0 {
			t.Errorf("the suite broke the contract on %s: %v", f.Name(), v)
		}
	}
}

func TestSuiteFakeMinimal(t *testing.T) {
	t.Parallel()
	// A Fake offering no optional interface, with every hook opted out.
	typ := resourcetest.NewType("fake")
	typ.Hide(resourcetest.CapFailureReporter | resourcetest.CapCloser | resourcetest.CapProcessKiller)
	resourcetest.Suite(t, typ, resourcetest.Options{
		NoUp:            "a Fake's state is in memory",
		NoHang:          "testing the opt-out",
		NoBadProperties: "testing the opt-out",
	})
}
