package integration

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sftkit/sft/internal/proc"
	"github.com/sftkit/sft/monitor"
	"github.com/sftkit/sft/plugins"
	"github.com/sftkit/sft/plugins/plugintest"
	"github.com/sftkit/sft/policy"
	"github.com/sftkit/sft/resource"
)

// hangType's Online hangs forever, ignoring ctx and Terminate, while the
// file named by property "hang_file" exists.
type hangType struct{}

type hangRes struct {
	file string
	up   bool
}

func (hangType) Name() string                                        { return "hang" }
func (hangType) Validate(context.Context, resource.Properties) error { return nil }
func (hangType) Open(_ context.Context, req resource.OpenRequest) (resource.Resource, error) {
	f, _ := req.Properties["hang_file"].(string)
	return &hangRes{file: f}, nil
}

func (r *hangRes) Online(context.Context) error {
	if r.file != "" {
		if _, err := os.Stat(r.file); err == nil {
			select {}
		}
	}
	r.up = true
	return nil
}
func (r *hangRes) Offline(context.Context) error   { r.up = false; return nil }
func (r *hangRes) Terminate(context.Context) error { r.up = false; return nil }
func (r *hangRes) LooksAlive(context.Context) error {
	if !r.up {
		return os.ErrClosed
	}
	return nil
}
func (r *hangRes) IsAlive(ctx context.Context) error { return r.LooksAlive(ctx) }

func TestMain(m *testing.M) { plugintest.Main(m, hangType{}, slowType{}) }

// waitStatus polls the monitor's status until cond holds: a liveness bound
// on asynchronous work, not a speed requirement.
func waitStatus(t *testing.T, m *monitor.Monitor, what string, cond func(monitor.GroupStatus) bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := m.GroupStatus("g")
		require.NoError(t, err)
		if cond(st) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s; status %+v", what, st)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func allOnline(st monitor.GroupStatus) bool {
	for _, r := range st.Resources {
		if r.State != resource.StateOnline {
			return false
		}
	}
	return st.State == resource.StateOnline
}

func newMonitor(t *testing.T) (*monitor.Monitor, *monitor.Subscription) {
	m := monitor.New(monitor.Config{})
	sub := m.Subscribe(4096)
	t.Cleanup(func() { require.NoError(t, m.Close(context.Background())) })
	return m, sub
}

func TestMonitorRestoresResourcesAfterPluginCrash(t *testing.T) {
	h := plugintest.Launch(t, plugins.Config{DisableAutoMTLS: true, MinBackoff: time.Millisecond})
	typ, _ := h.Type("hang")
	m, sub := newMonitor(t)
	spec := monitor.GroupSpec{Name: "g"}
	for i := range 3 {
		r, err := typ.Open(t.Context(), resource.OpenRequest{Name: "r" + strconv.Itoa(i)})
		require.NoError(t, err)
		spec.Resources = append(spec.Resources, monitor.ResourceSpec{Name: "r" + strconv.Itoa(i), Type: "hang", Resource: r,
			Restart: policy.Restart{Delay: time.Millisecond}})
	}
	require.NoError(t, m.AddGroup(spec))
	require.NoError(t, m.Online(t.Context(), "g"))
	pid := h.Pid()

	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
	failed := map[string]bool{}
	for len(failed) < 3 {
		select {
		case e := <-sub.C():
			if e.Kind == monitor.EventStateChanged && e.To == resource.StateFailed {
				failed[e.Resource] = true
				require.Contains(t, e.Reason, plugins.ErrPluginExited.Error())
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("failures seen: %v", failed)
		}
	}
	waitStatus(t, m, "the group back online", allOnline)
	require.NotEqual(t, pid, h.Pid(), "a relaunched plugin process")
	require.False(t, proc.Alive(pid))
}

// TestDeadlockedCallKillsPlugin: Online hangs ignoring ctx and Terminate.
// The monitor's call returns at the pending timeout (gRPC honours the
// deadline) and Terminate runs; the plugin sees the call still running
// DeadlockGrace later and reports it; the host kills the plugin's process
// group; the restart policy brings the resource back in a new process.
func TestDeadlockedCallKillsPlugin(t *testing.T) {
	h := plugintest.Launch(t, plugins.Config{DisableAutoMTLS: true, MinBackoff: time.Millisecond, DeadlockGrace: 100 * time.Millisecond})
	typ, _ := h.Type("hang")
	hang := filepath.Join(t.TempDir(), "hang")
	require.NoError(t, os.WriteFile(hang, nil, 0o600))
	r, err := typ.Open(t.Context(), resource.OpenRequest{Name: "stuck", Properties: resource.Properties{"hang_file": hang}})
	require.NoError(t, err)
	m, sub := newMonitor(t)
	require.NoError(t, m.AddGroup(monitor.GroupSpec{Name: "g", Resources: []monitor.ResourceSpec{{
		Name: "stuck", Type: "hang", Resource: r,
		Timing:  policy.Timing{PendingTimeout: 100 * time.Millisecond},
		Restart: policy.Restart{Delay: 50 * time.Millisecond, Threshold: 100},
	}}}))
	pid := h.Pid()
	go func() { _ = m.Online(context.Background(), "g") }()
	for failed := false; !failed; {
		select {
		case e := <-sub.C():
			failed = e.Kind == monitor.EventStateChanged && e.To == resource.StateFailed
		case <-time.After(30 * time.Second):
			t.Fatal("the hung Online never failed")
		}
	}
	waitStatus(t, m, "the deadlocked plugin to be killed", func(monitor.GroupStatus) bool { return !proc.Alive(pid) })
	require.NoError(t, os.Remove(hang)) // the relaunched plugin's Online succeeds
	waitStatus(t, m, "the resource restored in a new plugin process", allOnline)
	require.NotEqual(t, pid, h.Pid())
}
