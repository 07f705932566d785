package genericservice

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/sftkit/sft/plugins"
	"github.com/sftkit/sft/plugins/plugintest"
	"github.com/sftkit/sft/resource"
	"github.com/sftkit/sft/resource/resourcetest"
)

// TestSuite runs the resource contract suite against real systemd in a
// sandbox, one fresh unit per instance, in-process, through the gRPC shims
// and in a plugin process (this test binary, see TestMain). Up asks systemd
// from outside; replacing the unit by one that never gets ready makes
// Online hang.
func TestSuite(t *testing.T) {
	e := newEnv(t, nil)
	var n atomic.Int64
	unit := func(in resourcetest.Instance) string { return in.Properties["service"].(string) }
	plugintest.Suite(t, New(), plugintest.Options{
		Options: resourcetest.Options{
			Properties: func(t *testing.T) resource.Properties {
				u := fmt.Sprintf("conf%d.service", n.Add(1))
				e.writeUnit(t, u, sleeperUnit)
				return e.props(resource.Properties{"service": u})
			},
			Up: func(t *testing.T, in resourcetest.Instance) bool {
				return e.status(t, unit(in)).Active.Up() || len(e.pids(t, unit(in))) > 0
			},
			Hang: func(t *testing.T, in resourcetest.Instance) <-chan struct{} {
				e.writeUnit(t, unit(in), hangUnit)
				return nil
			},
			BadProperties: []resourcetest.BadProperties{
				{Name: "no service", Properties: e.props(resource.Properties{}), Field: "service"},
				{Name: "bad unit name", Properties: e.props(resource.Properties{"service": "a b"}), Field: "service"},
				{Name: "unknown manager", Properties: e.props(resource.Properties{"service": "x", "manager": "upstart"}), Field: "manager"},
				{Name: "negative start_timeout", Properties: e.props(resource.Properties{"service": "x", "start_timeout": "-1s"}), Field: "start_timeout"},
			},
		},
		Config: plugins.Config{DisableAutoMTLS: true},
	})
}
