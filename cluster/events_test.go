package cluster_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sftkit/sft/cluster"
	"github.com/sftkit/sft/monitor"
	"github.com/sftkit/sft/policy"
	"github.com/sftkit/sft/resource"
	"github.com/sftkit/sft/resource/resourcetest"
)

// logKinds records the kind of every event a node logs ("cluster" lines).
type logKinds struct {
	mu    sync.Mutex
	kinds []string
}

func (l *logKinds) Enabled(context.Context, slog.Level) bool { return true }
func (l *logKinds) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logKinds) WithGroup(string) slog.Handler            { return l }
func (l *logKinds) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "cluster" {
		return nil
	}
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "event" {
			l.mu.Lock()
			l.kinds = append(l.kinds, a.Value.String())
			l.mu.Unlock()
			return false
		}
		return true
	})
	return nil
}

// Config.Events: the subscription Start makes has every event the node
// emitted, from the first (leader, lease, online), in order; a negative
// buffer is refused naming the field.
func TestEventsFromStart(t *testing.T) {
	ip := "127.0.0.1"
	spec := cluster.NodeSpec{Name: "a", Raft: freePort(t, "tcp", ip), Heartbeat: []string{freePort(t, "udp", ip)}}
	mon := monitor.New(monitor.Config{Managed: true})
	app := resourcetest.NewFake("app")
	if err := mon.AddGroup(monitor.GroupSpec{Name: "web", Managed: true,
		Resources: []monitor.ResourceSpec{{Name: "app", Type: "fake", Resource: app}}}); err != nil {
		t.Fatal(err)
	}
	defer mon.Close(context.Background())
	cfg := cluster.Config{Name: "a", Nodes: []cluster.NodeSpec{spec}, Key: testKey, Local: mon,
		Groups: []policy.Group{{Name: "web", Owners: prefer("a")}}}

	bad := cfg
	bad.Events = -1
	err := bad.Validate()
	if err == nil || !strings.Contains(err.Error(), "events") || !strings.Contains(err.Error(), "-1") {
		t.Fatalf("Events -1: %v, want an error naming events and -1", err)
	}
	if _, err := cluster.Start(bad); !errors.Is(err, resource.ErrConfiguration) {
		t.Fatalf("Start with Events -1: %v", err)
	}

	logged := &logKinds{}
	cfg.Events, cfg.Logger = 256, slog.New(logged)
	n, err := cluster.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for n.Status().Groups[0].Local != resource.StateOnline {
		if time.Now().After(deadline) {
			t.Fatalf("web not online: %+v", n.Status())
		}
		time.Sleep(10 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.Close(ctx); err != nil {
		t.Fatal(err)
	}
	var got []string
	for e := range n.Events().C() { // closed by Close
		got = append(got, string(e.Kind))
	}
	logged.mu.Lock()
	want := slices.Clone(logged.kinds)
	logged.mu.Unlock()
	if !slices.Equal(got, want) {
		t.Fatalf("subscription from Start saw %v, the node emitted %v", got, want)
	}
	for _, k := range []cluster.EventKind{cluster.EventLeader, cluster.EventLeaseGained, cluster.EventOnline} {
		if !slices.Contains(got, string(k)) {
			t.Errorf("no %s event among %v", k, got)
		}
	}
}
