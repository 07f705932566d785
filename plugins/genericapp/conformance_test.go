package genericapp

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/sftkit/sft/internal/proc"
	"github.com/sftkit/sft/resource"
	"github.com/sftkit/sft/resource/resourcetest"
)

// gate is a readiness endpoint the test controls: 200, or 503 while hung.
type gate struct {
	srv     *httptest.Server
	hang    atomic.Bool
	mu      sync.Mutex
	hanging chan struct{} // closed at the first 503 after Hang
}

func newGate(t *testing.T) *gate {
	g := &gate{}
	g.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !g.hang.Load() {
			return
		}
		g.mu.Lock()
		if g.hanging != nil {
			close(g.hanging)
			g.hanging = nil
		}
		g.mu.Unlock()
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(g.srv.Close)
	return g
}

// TestConformance runs the resource contract suite against real instances
// running a real process, with a real HTTP readiness check that the Hang
// option turns into a never-ready one.
func TestConformance(t *testing.T) {
	var mu sync.Mutex
	gates := map[resource.Resource]*gate{}
	pgids := map[resource.Resource][]int{}
	resourcetest.ConformanceWith(t, resourcetest.Options{
		New: func(t *testing.T) resource.Resource {
			g := newGate(t)
			props := helperProps("sleep", nil)
			props["readiness"] = map[string]any{"http": g.srv.URL + "/ready", "interval": "10ms"}
			props["stop_grace"] = "5s"
			r, err := New().Open(t.Context(), resource.OpenRequest{Name: t.Name(), Properties: props})
			if err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			gates[r] = g
			mu.Unlock()
			return r
		},
		// Up: the current process runs, or any process group this
		// instance ever started still has a member (a zombie counts).
		Up: func(t *testing.T, r resource.Resource) bool {
			mu.Lock()
			defer mu.Unlock()
			if pid := r.(*App).Pid(); pid != 0 {
				pgids[r] = append(pgids[r], pid)
			}
			for _, pg := range pgids[r] {
				if proc.GroupExists(pg) {
					return true
				}
			}
			return false
		},
		Hang: func(t *testing.T, r resource.Resource) <-chan struct{} {
			mu.Lock()
			g := gates[r]
			mu.Unlock()
			ch := make(chan struct{})
			g.mu.Lock()
			g.hanging = ch
			g.mu.Unlock()
			g.hang.Store(true)
			return ch
		},
	})
}
