package integration

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sftkit/sft/monitor"
	"github.com/sftkit/sft/plugins"
	"github.com/sftkit/sft/plugins/plugintest"
	"github.com/sftkit/sft/policy"
	"github.com/sftkit/sft/resource"
)

// slowType's Online takes "steps" steps of "every" each, reporting
// progress after each and honouring its ctx: a program whose readiness
// check passes late, but keeps saying how far it got.
type slowType struct{}

type slowRes struct {
	steps int
	every time.Duration
	up    bool
}

func (slowType) Name() string                                        { return "slow" }
func (slowType) Validate(context.Context, resource.Properties) error { return nil }
func (slowType) Open(_ context.Context, req resource.OpenRequest) (resource.Resource, error) {
	var p struct {
		Steps int               `json:"steps"`
		Every resource.Duration `json:"every"`
	}
	if err := req.Properties.Decode(&p); err != nil {
		return nil, err
	}
	return &slowRes{steps: p.Steps, every: p.Every.D()}, nil
}

func (r *slowRes) Online(ctx context.Context) error {
	for i := range r.steps {
		select {
		case <-time.After(r.every):
		case <-ctx.Done():
			return fmt.Errorf("step %d of %d: %w", i+1, r.steps, context.Cause(ctx))
		}
		resource.ReportProgress(ctx, fmt.Sprintf("step %d of %d", i+1, r.steps))
	}
	r.up = true
	return nil
}
func (r *slowRes) Offline(context.Context) error   { r.up = false; return nil }
func (r *slowRes) Terminate(context.Context) error { r.up = false; return nil }
func (r *slowRes) LooksAlive(context.Context) error {
	if !r.up {
		return errors.New("not online")
	}
	return nil
}
func (r *slowRes) IsAlive(ctx context.Context) error { return r.LooksAlive(ctx) }

// TestProgressExtendsPendingTimeoutInPlugin: the monitor moves a pending
// call's deadline with each progress report (monitor.TestProgressExtendsPendingTimeout).
// A resource in a plugin process must get the same: its Online takes more
// than five pending timeouts, reporting progress at a third of one, and comes
// online, in process and through the plugin alike. (Through the plugin
// its ctx used to end at the first deadline, which a gRPC call carries
// fixed: "Online: step 3 of 6: context deadline exceeded".)
func TestProgressExtendsPendingTimeoutInPlugin(t *testing.T) {
	h := plugintest.Launch(t, plugins.Config{DisableAutoMTLS: true})
	remote, _ := h.Type("slow")
	// 1.6 s in all: longer than the pending timeout and the plugin's
	// backstop after it together (plugins.deadlineBackstop, 1 s).
	const pending = 300 * time.Millisecond
	props := resource.Properties{"steps": 16, "every": (pending / 3).String()}
	for _, tc := range []struct {
		name string
		typ  resource.Type
	}{{"in process", slowType{}}, {"plugin", remote}} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := tc.typ.Open(t.Context(), resource.OpenRequest{Name: "slow", Properties: props})
			require.NoError(t, err)
			m, sub := newMonitor(t)
			require.NoError(t, m.AddGroup(monitor.GroupSpec{Name: "g", Resources: []monitor.ResourceSpec{{
				Name: "slow", Type: "slow", Resource: r,
				Timing:  policy.Timing{PendingTimeout: pending},
				Restart: policy.Restart{Threshold: 1},
			}}}))
			require.NoError(t, m.Online(t.Context(), "g"))
			st, err := m.GroupStatus("g")
			require.NoError(t, err)
			require.True(t, allOnline(st), "online after 2 pending timeouts of progress: %+v", st)
			for {
				select {
				case e := <-sub.C():
					require.NotEqual(t, monitor.EventCallTimedOut, e.Kind, "no timeout: %+v", e)
					continue
				default:
				}
				break
			}
		})
	}
}
