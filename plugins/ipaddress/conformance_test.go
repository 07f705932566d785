package ipaddress

import (
	"testing"

	"github.com/sftkit/sft/plugins"
	"github.com/sftkit/sft/plugins/plugintest"
	"github.com/sftkit/sft/resource"
	"github.com/sftkit/sft/resource/resourcetest"
)

// TestSuite runs the resource contract suite against real instances in a
// namespace, in-process, through the gRPC shims and in a plugin process
// (this test binary, see TestMain): Up looks at the kernel's addresses
// directly, and a one-probe, one-minute probe wait makes Online hang.
func TestSuite(t *testing.T) {
	families(t, func(t *testing.T, v6 bool) {
		l := newLab(t, v6)
		plugintest.Suite(t, NewType(), plugintest.Options{
			Options: resourcetest.Options{
				Properties: func(t *testing.T) resource.Properties { return l.props(l.a, nil) },
				Up:         func(t *testing.T, in resourcetest.Instance) bool { return l.has(t, l.a) },
				HangProperties: func(t *testing.T, p resource.Properties) resource.Properties {
					p["probe_count"], p["probe_wait"] = 1, "1m"
					return p
				},
				BadProperties: []resourcetest.BadProperties{
					{Name: "no prefix length", Properties: l.props(l.a, resource.Properties{"address": "192.0.2.10"}), Field: "address"},
					{Name: "missing interface", Properties: l.props(l.a, resource.Properties{"interface": "nope0"}), Field: "interface"},
					{Name: "probe wait too long", Properties: l.props(l.a, resource.Properties{"probe_wait": "1h"}), Field: "probe_wait"},
					{Name: "relative netns", Properties: l.props(l.a, resource.Properties{"netns": "ns1"}), Field: "netns"},
				},
			},
			Config: plugins.Config{DisableAutoMTLS: true},
		})
	})
}
