package config_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sftkit/sft/examples/host/config"
	"github.com/sftkit/sft/plugins/genericapp"
	"github.com/sftkit/sft/plugins/ipaddress"
	"github.com/sftkit/sft/policy"
	"github.com/sftkit/sft/resource"
)

// loadPeer is load with the ipaddress type registered too.
func loadPeer(t testing.TB, yaml string) (*config.Config, error) {
	reg, err := resource.NewRegistry(genericapp.New(), ipaddress.NewType())
	require.NoError(t, err)
	return config.Load(context.Background(), "t.yaml", []byte(yaml), reg, "/bin/true")
}

func peerYAML(key, extra, group string) string {
	return `
node: {name: a}
cluster:
  mode: peer
  key_file: ` + key + `
  nodes:
    - {name: a, interconnect: ["10.0.0.1:7946"]}
    - {name: b, interconnect: ["10.0.0.2:7946"]}
` + extra + `
groups:
  - name: web
` + group + `
    resources:
      - {name: app, type: genericapp, properties: {argv: [/bin/sleep, "1000"]}}
`
}

const peerGroupGood = `    placement: {preferred: [b], failback: {mode: immediate}, stable_period: 10s}
    peer: {address: 10.0.0.50, check: {tcp: "10.0.0.50:80", interval: 500ms, timeout: 200ms}, service_failures: 2, release: true}
`

func TestPeerConfigGood(t *testing.T) {
	t.Parallel()
	key := keyFile(t, "0123456789abcdef0123", 0o600)
	c, err := loadPeer(t, peerYAML(key, "  peer: {reference: 10.0.0.254, detect: {interval: 5ms, misses: 49, survive_loss: 0.64}, grace: 3s}", peerGroupGood))
	require.NoError(t, err)
	require.True(t, c.Cluster.IsPeer())
	k, err := c.Cluster.ReadKey()
	require.NoError(t, err)
	pc := c.PeerConfig("a", k)
	require.NoError(t, pc.Validate(), "the host's config makes a valid peer.Config")
	require.Equal(t, "b", pc.Peer)
	require.Equal(t, netip.MustParseAddrPort("10.0.0.1:7946"), pc.Listen)
	require.Equal(t, netip.MustParseAddrPort("10.0.0.2:7946"), pc.PeerAddr)
	require.Equal(t, netip.MustParseAddr("10.0.0.254"), pc.Reference)
	require.Equal(t, 5*time.Millisecond, pc.Detect.Interval)
	require.Equal(t, 49, pc.Detect.Misses)
	g := pc.Groups[0]
	require.Equal(t, netip.MustParseAddr("10.0.0.50"), g.Address)
	require.Equal(t, "b", g.Home)
	require.Equal(t, policy.FailbackImmediate, g.Failback.Mode)
	require.Equal(t, 10*time.Second, g.StablePeriod)
	require.Equal(t, "10.0.0.50:80", g.Check.TCP)
	require.Equal(t, 200*time.Millisecond, time.Duration(g.Check.Timeout))
	require.Equal(t, 2, g.ServiceFailures)
	require.True(t, g.Release)

	require.Equal(t, "a", c.PeerConfig("b", k).Peer)
}

func TestPeerAddress(t *testing.T) {
	t.Parallel()
	vip := config.Resource{Name: "vip", Type: "ipaddress", Properties: map[string]any{"address": "10.0.0.50/24"}}
	app := config.Resource{Name: "app", Type: "genericapp"}
	a, src := config.Group{Resources: []config.Resource{app, vip}}.PeerAddress()
	require.Equal(t, netip.MustParseAddr("10.0.0.50"), a, "the ipaddress resource's address")
	require.Equal(t, "resources[1].properties.address", src)
	a, src = config.Group{Peer: &config.PeerGroup{Address: "10.0.0.60"}, Resources: []config.Resource{vip}}.PeerAddress()
	require.Equal(t, netip.MustParseAddr("10.0.0.60"), a, "an explicit address wins")
	require.Equal(t, "peer.address", src)
	_, src = config.Group{Resources: []config.Resource{app}}.PeerAddress()
	require.Empty(t, src)
}

func TestPeerConfigErrors(t *testing.T) {
	t.Parallel()
	good := keyFile(t, "0123456789abcdef0123", 0o600)
	tests := []struct {
		name, extra, group string
		want               []string
	}{
		{name: "arithmetic", extra: "  peer: {detect: {misses: 10}}", group: peerGroupGood,
			want: []string{`cluster.peer.detect.misses 10: predicts`, `false takeovers per year at 40% echo loss`, `use misses >= 24`}},
		{name: "detect bounds", extra: "  peer: {detect: {interval: 2m, survive_loss: 1.5}}", group: peerGroupGood,
			want: []string{`cluster.peer.detect.interval "2m0s": too large (max 1m)`}},
		{name: "survive loss", extra: "  peer: {detect: {survive_loss: 1.5}}", group: peerGroupGood,
			want: []string{`cluster.peer.detect.survive_loss 1.5: must be above 0 and below 1`}},
		{name: "reference", extra: "  peer: {reference: gateway}", group: peerGroupGood,
			want: []string{`cluster.peer.reference "gateway": want an IP address`}},
		{name: "quorum fields", extra: "  profile: fast\n  data_dir: /tmp/x\n  timing: {lease: 1s}", group: peerGroupGood,
			want: []string{`cluster.profile "fast": quorum mode only`, `cluster.data_dir "/tmp/x": quorum mode only`, `cluster.timing: quorum mode only`}},
		{name: "no home", group: "    placement: {possible: [a, b]}\n",
			want: []string{`groups[0].placement.preferred []: peer mode wants the group's home node`, `groups[0].placement.possible ["a" "b"]: quorum mode only`}},
		{name: "home not a node", group: "    placement: {preferred: [c]}\n",
			want: []string{`groups[0].placement.preferred[0] "c": is not one of cluster.nodes`}},
		{name: "bad check", group: "    placement: {preferred: [a]}\n    peer: {address: 10.0.0.50, check: {tcp: nowhere, http: http://x/}}\n",
			want: []string{`groups[0].peer.check: set exactly one of tcp, http, command (got 2)`}},
		{name: "check body", group: "    placement: {preferred: [a]}\n    peer: {address: 10.0.0.50, check: {tcp: \"10.0.0.50:80\"}, check_body: ok}\n",
			want: []string{`groups[0].peer.check_body "ok": needs an HTTP check`}},
		{name: "release without check", group: "    placement: {preferred: [a]}\n    peer: {address: 10.0.0.50, release: true}\n",
			want: []string{`groups[0].peer.release true: needs a check`}},
		{name: "bad address", group: "    placement: {preferred: [a]}\n    peer: {address: 10.0.0.999}\n",
			want: []string{`groups[0].peer.address "10.0.0.999": want an IP address`}},
		{name: "failback", group: "    placement: {preferred: [a], failback: {mode: later}}\n",
			want: []string{`groups[0].placement.failback.mode "later": want prevent, immediate or window`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := loadPeer(t, peerYAML(good, tt.extra, tt.group))
			require.Error(t, err)
			for _, w := range tt.want {
				require.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestPeerConfigNodeErrors(t *testing.T) {
	t.Parallel()
	key := keyFile(t, "0123456789abcdef0123", 0o600)
	_, err := loadPeer(t, `
node: {name: a}
cluster:
  mode: peer
  key_file: `+key+`
  nodes:
    - {name: a, role: witness, raft: "10.0.0.1:7000", interconnect: ["10.0.0.1:7946", "10.1.0.1:7946"]}
    - {name: b, interconnect: ["0.0.0.0:7946"]}
    - {name: c, interconnect: ["10.0.0.3:7946"]}
groups:
  - name: web
    placement: {preferred: [a]}
    resources:
      - {name: app, type: genericapp, properties: {argv: [/bin/sleep, "1000"]}}
  - name: db
    placement: {preferred: [b]}
    peer: {address: 10.0.0.50}
    resources:
      - {name: app, type: genericapp, properties: {argv: [/bin/sleep, "1000"]}}
  - name: db2
    placement: {preferred: [b]}
    peer: {address: 10.0.0.50}
    resources:
      - {name: app, type: genericapp, properties: {argv: [/bin/sleep, "1000"]}}
`)
	require.Error(t, err)
	for _, w := range []string{
		`cluster.nodes 3: peer mode needs exactly two nodes`,
		`cluster.nodes[0].role "witness": peer mode has no witness`,
		`cluster.nodes[0].raft "10.0.0.1:7000": peer mode runs no raft`,
		`cluster.nodes[0].interconnect ["10.0.0.1:7946" "10.1.0.1:7946"]: peer mode wants one ip:port`,
		`cluster.nodes[1].interconnect[0] "0.0.0.0:7946": must be the node's own address`,
		`groups[0].peer.address: required: the group has no ipaddress resource`,
		`groups[2].peer.address "10.0.0.50": the service address of group db too`,
	} {
		require.Contains(t, err.Error(), w)
	}

	// Mode and section mistakes.
	_, err = loadPeer(t, `
cluster: {mode: raft, key_file: `+key+`, nodes: [{name: a, raft: "10.0.0.1:7000", interconnect: ["10.0.0.1:7001"]}]}
groups:
  - name: web
    peer: {address: 10.0.0.50}
    resources:
      - {name: app, type: genericapp, properties: {argv: [/bin/sleep, "1000"]}}
`)
	require.ErrorContains(t, err, `cluster.mode "raft": want quorum or peer`)
	require.ErrorContains(t, err, `groups[0].peer: peer mode only (cluster.mode: peer)`)
	_, err = loadPeer(t, `
node: {name: a}
cluster: {key_file: `+key+`, peer: {reference: 10.0.0.1}, nodes: [{name: a, raft: "10.0.0.1:7000", interconnect: ["10.0.0.1:7001"]}]}
groups:
  - name: web
    resources:
      - {name: app, type: genericapp, properties: {argv: [/bin/sleep, "1000"]}}
`)
	require.ErrorContains(t, err, `cluster.peer: peer mode only (cluster.mode: peer)`)
}
