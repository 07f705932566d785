package node_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sftkit/sft/examples/host/alert"
	"github.com/sftkit/sft/examples/host/api"
	"github.com/sftkit/sft/examples/host/config"
	"github.com/sftkit/sft/examples/host/node"
	"github.com/sftkit/sft/resource"
	"github.com/sftkit/sft/resource/resourcetest"
)

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var errFound = errors.New("found")

// waitEvent follows the node's events (history first) until match says
// yes. The deadline only keeps a broken test from hanging.
func waitEvent(t *testing.T, c *api.Client, after uint64, match func(api.Event) bool) api.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var got api.Event
	err := c.Events(ctx, true, func(e api.Event) error {
		if e.Seq > after && match(e) {
			got = e
			return errFound
		}
		return nil
	})
	require.ErrorIs(t, err, errFound)
	return got
}

func groupIs(group, state string) func(api.Event) bool {
	return func(e api.Event) bool { return e.Kind == "group_state_changed" && e.Group == group && e.To == state }
}

func scrape(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}

// TestNodeLifecycle runs a node on fake resources in-process and drives it
// through its API: autostart, a pushed failure and its restart (events,
// metrics, no alert), a node-local failure failing the group
// (failover alert), online again by an operator over TCP, move refused,
// graceful shutdown.
func TestNodeLifecycle(t *testing.T) {
	xdg := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(xdg, "sft"), 0o755))
	t.Setenv("XDG_RUNTIME_DIR", xdg)

	alerts := make(chan alert.Alert, 16)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var a alert.Alert
		if json.NewDecoder(r.Body).Decode(&a) == nil {
			alerts <- a
		}
	}))
	defer hook.Close()

	typ := resourcetest.NewType("fake")
	reg, err := resource.NewRegistry(typ)
	require.NoError(t, err)
	no := false
	const token = "0123456789abcdef0"
	cfg := &config.Config{
		Node:    config.Node{Name: "n1"},
		API:     config.API{TCP: "127.0.0.1:0", Token: token},
		Metrics: config.Metrics{Listen: "127.0.0.1:0"},
		Alerts:  config.Alerts{Webhook: hook.URL, Backoff: config.Duration(time.Millisecond)},
		Groups: []config.Group{
			{Name: "g1", Resources: []config.Resource{
				{Name: "base", Type: "fake", Restart: config.Restart{Delay: new(config.Duration(time.Millisecond))}},
				{Name: "top", Type: "fake", DependsOn: []string{"base"}},
			}},
			{Name: "g2", Autostart: &no, Resources: []config.Resource{{Name: "r", Type: "fake"}}},
		},
	}
	var logs syncBuffer
	ready := make(chan *node.Node, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- node.Run(ctx, node.Options{
			Config: cfg, Registry: reg,
			Logger: slog.New(slog.NewJSONHandler(&logs, nil)),
			Ready:  func(n *node.Node) { ready <- n },
		})
	}()
	n := <-ready

	// The default socket lives in a private directory.
	require.Equal(t, filepath.Join(xdg, "sft", "host.sock"), n.SocketPath())
	di, err := os.Stat(filepath.Join(xdg, "sft"))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o700), di.Mode().Perm())

	c := api.NewUnixClient(n.SocketPath())
	defer c.Close()
	tc := api.NewTCPClient(n.TCPAddr(), token)
	defer tc.Close()
	bctx := context.Background()

	// Autostart: g1 online, g2 stays offline.
	waitEvent(t, c, 0, groupIs("g1", "Online"))
	st, err := c.Status(bctx)
	require.NoError(t, err)
	require.Equal(t, "n1", st.Node)
	require.Len(t, st.Groups, 2)
	require.Equal(t, "g1", st.Groups[0].Name)
	require.Equal(t, "n1", st.Groups[0].Owner)
	require.Equal(t, resource.StateOnline, st.Groups[0].State)
	require.Equal(t, resource.StateOffline, st.Groups[1].State)
	require.False(t, st.Groups[1].Autostart)

	// Counters exist from the start, at 0.
	m0 := scrape(t, n.MetricsAddr())
	for _, want := range []string{
		`sft_resource_restarts_total{group="g2",resource="r",type="fake"} 0`,
		`sft_resource_failures_pushed_total{group="g1",resource="top",type="fake"} 0`,
		`sft_resource_failures_total{group="g2",resource="r",type="fake"} 0`,
		`sft_group_failures_total{group="g2"} 0`,
		`sft_alerts_sent_total{kind="failed"} 0`,
	} {
		require.Contains(t, m0, want)
	}

	// A pushed failure: restarted, visible in events and metrics, and a
	// recovery alert once the group is online again.
	base := typ.Instance("g1/base")
	require.NotNil(t, base)
	last := waitEvent(t, c, 0, func(api.Event) bool { return true }).Seq // any event: the history's first
	require.True(t, base.PushFailure(errors.New("process exited")))
	r := waitEvent(t, c, last, func(e api.Event) bool { return e.Kind == "restart" && e.Resource == "base" })
	require.Equal(t, "restart 1 of 3 within 15m0s", r.Reason)
	waitEvent(t, c, r.Seq, groupIs("g1", "Online"))
	st, err = c.Status(bctx)
	require.NoError(t, err)
	rb := st.Groups[0].Resources[0]
	require.Equal(t, "base", rb.Name)
	require.Equal(t, 1, rb.RestartsInPeriod)
	require.Equal(t, 1, rb.RestartsTotal)
	require.Equal(t, "15m0s", rb.RestartPeriod)
	require.Equal(t, "process exited", rb.LastFailure, "a pushed failure says what happened")

	m := scrape(t, n.MetricsAddr())
	require.Contains(t, m, `sft_resource_restarts_total{group="g1",resource="base",type="fake"} 1`)
	require.Contains(t, m, `sft_resource_failures_pushed_total{group="g1",resource="base",type="fake"} 1`)
	require.Contains(t, m, `sft_resource_failures_total{group="g1",resource="base",type="fake"} 1`)
	require.Contains(t, m, `sft_resource_state{group="g1",resource="base",state="Online",type="fake"} 1`)
	require.Contains(t, m, `sft_group_state{group="g2",state="Offline"} 1`)
	require.Contains(t, m, `sft_resource_call_duration_seconds_bucket{method="Online",type="fake"`)

	// A node-local failure fails the group; the policy asks for a failover.
	st, err = c.Status(bctx)
	require.NoError(t, err)
	require.Equal(t, 1, st.Groups[0].Resources[0].Restarts)
	last = r.Seq
	require.True(t, base.PushFailure(resource.NodeLocal(errors.New("address held by another host"))))
	gf := waitEvent(t, c, last, func(e api.Event) bool { return e.Kind == "group_failed" })
	// A single node: nothing can move, so no failover, and it says so.
	require.False(t, gf.Failover)
	require.Equal(t, "resource base: this node cannot host the resource: failed; no other node to fail over to", gf.Reason)
	waitEvent(t, c, gf.Seq, groupIs("g1", "Failed"))
	a := <-alerts // the first alert: a restart in place raised none
	require.Equal(t, alert.KindFailed, a.Kind)
	require.Equal(t, "g1", a.Group)
	require.Equal(t, "n1", a.Node)
	require.Equal(t, "base", a.Resource)
	require.False(t, a.Failover)
	require.Contains(t, a.Reason, "this node cannot host the resource: failed; no other node to fail over to")
	require.NotContains(t, a.Reason, "failing the group over")
	st, err = c.Status(bctx)
	require.NoError(t, err)
	require.True(t, st.Groups[0].Failed)

	// Move elsewhere needs a cluster section; an operator brings it back
	// here over the TCP API instead.
	_, err = tc.Move(bctx, "g1", "n2")
	var se *api.StatusError
	require.ErrorAs(t, err, &se)
	require.Equal(t, http.StatusConflict, se.Code)
	require.Contains(t, se.Msg, "no cluster section")
	res, err := tc.Action(bctx, "g1", "online")
	require.NoError(t, err)
	require.Equal(t, resource.StateOnline, res.Status.State)
	a = <-alerts
	require.Equal(t, alert.KindRecovery, a.Kind)
	require.Equal(t, "g1", a.Group)
	m = scrape(t, n.MetricsAddr())
	require.Contains(t, m, `sft_group_failures_total{group="g1"} 1`)
	require.Contains(t, m, `sft_group_failovers_total{group="g1"} 0`)
	st, err = c.Status(bctx)
	require.NoError(t, err)
	rb = st.Groups[0].Resources[0]
	require.Equal(t, 0, rb.RestartsInPeriod, "the policy's count starts anew once the failed group is back")
	require.Equal(t, 1, rb.RestartsTotal, "the total is never reset")

	// Offline and online of the manual group; unknown group is a 404.
	_, err = c.Action(bctx, "g2", "online")
	require.NoError(t, err)
	res, err = c.Action(bctx, "g2", "offline")
	require.NoError(t, err)
	require.Equal(t, resource.StateOffline, res.Status.State)
	_, err = c.Action(bctx, "nope", "online")
	require.ErrorAs(t, err, &se)
	require.Equal(t, http.StatusNotFound, se.Code)
	require.Equal(t, `no such group "nope"`, se.Msg, "said once")

	// The event log is JSON, one event per line.
	require.Contains(t, logs.String(), `"msg":"event","node":"n1","kind":"group_failed","group":"g1","resource":"base"`)

	// Graceful shutdown: groups offline in reverse order, resources closed.
	cancel()
	require.NoError(t, <-done)
	for _, f := range typ.Instances() {
		require.True(t, f.Closed(), f.Name())
		require.False(t, f.Up(), f.Name())
	}
	top, base := typ.Instance("g1/top"), typ.Instance("g1/base")
	require.Less(t, lastCall(top, resourcetest.MethodOffline), lastCall(base, resourcetest.MethodOffline), "top goes offline before base")
	_, err = os.Stat(n.SocketPath())
	require.True(t, os.IsNotExist(err), "socket removed")
	require.Contains(t, logs.String(), "every group is offline")
}

// lastCall is the time of f's last call of m.
func lastCall(f *resourcetest.Fake, m resourcetest.Method) time.Time {
	var at time.Time
	for _, c := range f.Log() {
		if c.Method == m {
			at = c.Start
		}
	}
	return at
}

func TestValidationRegistryHasTheBundledTypes(t *testing.T) {
	require.Equal(t, []string{"genericapp", "genericservice", "ipaddress"}, node.ValidationRegistry().Names())
}

func TestNewLogger(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "host.log")
	l, c, err := node.NewLogger(config.Log{Level: "warn", Format: "json", File: f}, io.Discard)
	require.NoError(t, err)
	l.Info("hidden")
	l.Warn("shown", "k", "v")
	require.NoError(t, c.Close())
	b, err := os.ReadFile(f)
	require.NoError(t, err)
	require.NotContains(t, string(b), "hidden")
	var rec map[string]any
	require.NoError(t, json.Unmarshal(bytes.TrimSpace(b), &rec))
	require.Equal(t, "shown", rec["msg"])
	require.Equal(t, "v", rec["k"])

	var buf bytes.Buffer
	l, _, err = node.NewLogger(config.Log{Level: "info", Format: "text"}, &buf)
	require.NoError(t, err)
	l.Info("hello")
	require.True(t, strings.Contains(buf.String(), "msg=hello"), buf.String())
}

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestStartupErrors: a resource that cannot be opened, or an API socket in
// use by another host, stops Run with an error naming the cause; whatever
// was opened is closed and no goroutine is left (TestMain checks).
func TestStartupErrors(t *testing.T) {
	typ := resourcetest.NewType("fake")
	reg, err := resource.NewRegistry(typ)
	require.NoError(t, err)
	dir := t.TempDir()
	sock := filepath.Join(dir, "h.sock")
	cfg := func() *config.Config {
		return &config.Config{
			Node: config.Node{Name: "n1"},
			API:  config.API{Socket: sock},
			Groups: []config.Group{{Name: "g", Resources: []config.Resource{
				{Name: "a", Type: "fake"}, {Name: "b", Type: "fake", DependsOn: []string{"a"}},
			}}},
		}
	}
	run := func(ctx context.Context, ready func(*node.Node)) error {
		return node.Run(ctx, node.Options{Config: cfg(), Registry: reg, Logger: slog.New(slog.DiscardHandler), Ready: ready})
	}

	// Open fails.
	typ.SetOpenError(resource.NodeLocal(errors.New("no such service here")))
	err = run(context.Background(), func(*node.Node) { t.Error("Ready called") })
	require.EqualError(t, err, "group g: resource a: no such service here")
	typ.SetOpenError(nil)

	// The socket belongs to a running host.
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan *node.Node, 1)
	done := make(chan error, 1)
	go func() { done <- run(ctx, func(n *node.Node) { ready <- n }) }()
	<-ready
	err = run(context.Background(), func(*node.Node) { t.Error("second node Ready called") })
	require.EqualError(t, err, "api socket "+sock+" is in use: is another host running?")
	cancel()
	require.NoError(t, <-done)
	for _, f := range typ.Instances() {
		require.True(t, f.Closed(), "%s not closed", f.Name())
	}
}

// TestSlowFollowerIsDisconnected: an events follower that never reads does
// not hold the node up; once its buffer is full it is disconnected (its
// channel closed) while the node goes on.
func TestSlowFollowerIsDisconnected(t *testing.T) {
	typ := resourcetest.NewType("fake")
	reg, err := resource.NewRegistry(typ)
	require.NoError(t, err)
	no := false
	cfg := &config.Config{
		Node:   config.Node{Name: "n1"},
		API:    config.API{Socket: filepath.Join(t.TempDir(), "h.sock")},
		Groups: []config.Group{{Name: "g", Autostart: &no, Resources: []config.Resource{{Name: "r", Type: "fake"}}}},
	}
	ready := make(chan *node.Node, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- node.Run(ctx, node.Options{Config: cfg, Registry: reg, Logger: slog.New(slog.DiscardHandler), Ready: func(n *node.Node) { ready <- n }})
	}()
	n := <-ready
	_, live, stop := n.Events(true)
	defer stop()
	// Online/offline cycles make events (at least the resource's four state
	// changes each) until the follower's buffer is full; one more cycle
	// overflows it. The node answers every request meanwhile.
	cycle := func() {
		require.NoError(t, n.Online(context.Background(), "g"))
		require.NoError(t, n.Offline(context.Background(), "g"))
	}
	for len(live) < cap(live) {
		cycle()
	}
	cycle()
	// Events reach followers asynchronously: wait (bounded) until the node
	// has dropped the follower before reading, or reading would make room.
	for deadline := time.Now().Add(10 * time.Second); n.Followers() > 0; time.Sleep(time.Millisecond) {
		require.False(t, time.Now().After(deadline), "the full follower was not disconnected")
	}
	got := 0
	for range live {
		got++
	}
	require.Equal(t, 256, got, "the buffered events, then the channel is closed")
	cancel()
	require.NoError(t, <-done)
}
