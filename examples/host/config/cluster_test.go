package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sftkit/sft/policy"
)

// keyFile writes a shared key with mode perm and returns its path.
func keyFile(t *testing.T, key string, perm os.FileMode) string {
	p := filepath.Join(t.TempDir(), "cluster.key")
	require.NoError(t, os.WriteFile(p, []byte(key+"\n"), perm))
	require.NoError(t, os.Chmod(p, perm))
	return p
}

func clusterYAML(key, extra, placement string) string {
	return `
node: {name: a}
cluster:
  key_file: ` + key + `
` + extra + `
  nodes:
    - {name: a, raft: "10.0.0.1:7000", interconnect: ["10.0.0.1:7001"]}
    - {name: b, raft: "10.0.0.2:7000", interconnect: ["10.0.0.2:7001"]}
    - {name: w, role: witness, raft: "10.0.0.3:7000", interconnect: ["10.0.0.3:7001"]}
groups:
  - name: web
    failover: {threshold: 2, period: 1h}
    placement:
` + placement + `
    resources:
      - {name: app, type: genericapp, properties: {argv: [/bin/sleep, "1000"]}}
`
}

func TestClusterConfigGood(t *testing.T) {
	t.Parallel()
	key := keyFile(t, "0123456789abcdef0123", 0o600)
	c, err := load(t, clusterYAML(key, "  profile: fast\n  timing: {lease: 120ms, clock_rate: 0.002}",
		"      preferred: [b, a]\n      anti_affinity: [db]\n      failback: {mode: window, window_start: 22, window_end: 2}"))
	require.NoError(t, err)
	require.NotNil(t, c.Cluster)
	tm, err := c.Cluster.ClusterTiming()
	require.NoError(t, err)
	require.Equal(t, 120*time.Millisecond, tm.Lease)
	require.Equal(t, 200*time.Millisecond, tm.Window, "the fast profile's window")
	require.InDelta(t, 0.002, tm.ClockRate, 1e-12)
	specs := c.Cluster.Specs()
	require.Len(t, specs, 3)
	require.True(t, specs[2].Witness)
	require.Equal(t, []string{"10.0.0.1:7001"}, specs[0].Heartbeat)
	g := c.PolicyGroups()[0]
	require.Equal(t, []string{"b", "a"}, g.Owners.Preferred)
	require.Equal(t, policy.FailbackWindow, g.Failback.Mode)
	require.Equal(t, 22, g.Failback.WindowStart)
	require.Equal(t, 2, g.Failover.Threshold)
	k, err := c.Cluster.ReadKey()
	require.NoError(t, err)
	require.Equal(t, "0123456789abcdef0123", string(k))
}

func TestClusterConfigErrors(t *testing.T) {
	t.Parallel()
	good := keyFile(t, "0123456789abcdef0123", 0o600)
	tests := []struct {
		name, key, extra, placement string
		want                        []string
	}{
		{name: "unsafe timing names the arithmetic", key: good, extra: "  timing: {lease: 400ms}",
			want: []string{`t.yaml:5:12: cluster.timing.lease "400ms": unsafe: lease 400ms x (1+0.001) + drop 150ms = 550.4ms is not below window 500ms x (1-0.001) = 499.5ms`}},
		{name: "unknown profile", key: good, extra: "  profile: turbo",
			want: []string{`cluster.profile "turbo": unknown timing profile (want default or fast)`}},
		{name: "key readable by others", key: keyFile(t, "0123456789abcdef0123", 0o644),
			want: []string{`cluster.key_file`, `readable or writable by others (mode 0644): chmod 600 it`}},
		{name: "short key", key: keyFile(t, "short", 0o600), want: []string{`key too short (5 bytes, at least 16)`}},
		{name: "relative key", key: "cluster.key", want: []string{`cluster.key_file "cluster.key": must be an absolute path`}},
		{name: "owner not a node", key: good, placement: "      preferred: [a, zz]",
			want: []string{`t.yaml:14:22: groups[0].placement.preferred[1] "zz": is not one of cluster.nodes`}},
		{name: "witness as owner", key: good, placement: "      possible: [a, w]",
			want: []string{`groups[0].placement.possible[1] "w": is a witness: it hosts nothing`}},
		{name: "failback mode", key: good, placement: "      failback: {mode: sometimes}",
			want: []string{`groups[0].placement.failback.mode "sometimes": want prevent, immediate or window`}},
		{name: "empty failback window", key: good, placement: "      failback: {mode: window, window_start: 3, window_end: 3}",
			want: []string{`groups[0].placement.failback.window_end 3: equals window_start`}},
		{name: "window hour bound", key: good, placement: "      failback: {mode: window, window_start: 30, window_end: 3}",
			want: []string{`groups[0].placement.failback.window_start 30: too large (max 23)`}},
		{name: "bad clock rate", key: good, extra: "  timing: {clock_rate: fast}", want: []string{`cluster.timing.clock_rate "fast": want a number`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := load(t, clusterYAML(tt.key, tt.extra, tt.placement))
			require.Error(t, err)
			for _, w := range tt.want {
				require.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestClusterConfigNodeErrors(t *testing.T) {
	t.Parallel()
	key := keyFile(t, "0123456789abcdef0123", 0o600)
	_, err := load(t, `
node: {name: x}
cluster:
  key_file: `+key+`
  nodes:
    - {name: a, role: boss, raft: "10.0.0.1", interconnect: ["10.0.0.1:7001", "10.1.0.1:7001", "10.2.0.1:7001"]}
    - {name: a, raft: "10.0.0.2:0", interconnect: ["nowhere"]}
groups:
  - name: web
    resources:
      - {name: app, type: genericapp, properties: {argv: [/bin/sleep, "1000"]}}
`)
	require.Error(t, err)
	for _, w := range []string{
		`cluster.nodes[0].role "boss": want voter or witness`,
		`cluster.nodes[0].raft "10.0.0.1": want ip:port`,
		`cluster.nodes[0].interconnect ["10.0.0.1:7001" "10.1.0.1:7001" "10.2.0.1:7001"]: want 1 or 2 heartbeat addresses`,
		`cluster.nodes[1].name "a": duplicate node name (also cluster.nodes[0])`,
		`cluster.nodes[1].raft "10.0.0.2:0": port 0`,
		`cluster.nodes[1].interconnect[0] "nowhere": want ip:port`,
		`cluster.nodes[1].interconnect ["nowhere"]: has 1 paths, the nodes before have 3`,
		`node.name "x": is not one of cluster.nodes`,
	} {
		require.Contains(t, err.Error(), w)
	}
	_, err = load(t, "groups:\n  - name: web\n    placement: {preferred: [a]}\n    resources:\n      - {name: app, type: genericapp, properties: {argv: [/bin/true]}}\n")
	require.ErrorContains(t, err, "groups[0].placement: needs a cluster section")
	require.False(t, strings.Contains(err.Error(), "cluster.nodes"))
}
