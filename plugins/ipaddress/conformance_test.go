package ipaddress

import (
	"sync"
	"testing"
	"time"

	"github.com/sftkit/sft/resource"
	"github.com/sftkit/sft/resource/resourcetest"
)

// TestConformance runs the resource contract suite against real instances
// in a namespace, with the default probe timing: Up looks at the kernel's
// addresses directly, Hang makes Online wait in a minute-long probe.
func TestConformance(t *testing.T) {
	families(t, func(t *testing.T, v6 bool) {
		l := newLab(t, v6)
		resourcetest.ConformanceWith(t, resourcetest.Options{
			New: func(t *testing.T) resource.Resource {
				r, err := NewType().Open(t.Context(), resource.OpenRequest{Name: "vip", Properties: l.props(l.a, nil)})
				if err != nil {
					t.Fatal(err)
				}
				return r
			},
			Up: func(t *testing.T, r resource.Resource) bool { return l.has(t, l.a) },
			Hang: func(t *testing.T, r resource.Resource) <-chan struct{} {
				in := r.(*instance)
				in.cfg.ProbeCount, in.cfg.ProbeWait = 1, time.Hour
				probing := make(chan struct{})
				var once sync.Once
				in.hookProbing = func() { once.Do(func() { close(probing) }) }
				return probing
			},
		})
	})
}
