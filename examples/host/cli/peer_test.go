package cli

import (
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sftkit/sft/cluster/peer"
	"github.com/sftkit/sft/examples/host/api"
	"github.com/sftkit/sft/monitor"
	"github.com/sftkit/sft/resource"
)

// peerSimConfig writes a two-node peer-mode config with a key file.
func peerSimConfig(t *testing.T, detect, group string) string {
	dir := t.TempDir()
	key := filepath.Join(dir, "key")
	require.NoError(t, os.WriteFile(key, []byte("0123456789abcdef0123\n"), 0o600))
	cfg := filepath.Join(dir, "c.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(`cluster:
  mode: peer
  key_file: `+key+`
  nodes:
    - {name: a, interconnect: ["10.0.0.1:7946"]}
    - {name: b, interconnect: ["10.0.0.2:7946"]}
  peer: {detect: {`+detect+`}}
groups:
  - name: web
    placement: {preferred: [a]}
    peer: {address: 10.0.0.50, `+group+`}
    resources:
      - {name: app, type: genericapp, properties: {argv: [/bin/sleep, "1000"]}}
`), 0o600))
	return cfg
}

func TestSimulatePeer(t *testing.T) {
	cfg := peerSimConfig(t, "", `check: {tcp: "10.0.0.50:80", interval: 500ms, timeout: 100ms}`)
	var out, errb bytes.Buffer
	// No script: the standard set.
	require.Equal(t, 0, Main([]string{"simulate", "-config", cfg}, Env{Stdout: &out, Stderr: &errb, Stdin: strings.NewReader("")}), errb.String())
	o := out.String()
	require.Contains(t, o, "peer mode: echo every 10ms, dead after 24 unanswered (240ms)")
	require.Contains(t, o, "scenario duration=5s host-dead=1s\n  web: takeover at +1.2")
	require.Contains(t, o, "scenario duration=20s service-dead=1s\n  web: service dead: alert, no takeover")
	require.Contains(t, o, "scenario duration=1m0s loss=0.4\n  web: no takeover")
	require.NotContains(t, o, "FALSE TAKEOVER")

	// MiniSFT's spirit with too few misses: refused by validation, with
	// the arithmetic.
	out.Reset()
	errb.Reset()
	require.Equal(t, 1, Main([]string{"simulate", "-config", peerSimConfig(t, "misses: 5, survive_loss: 0.1", "")}, Env{Stdout: &out, Stderr: &errb, Stdin: strings.NewReader("")}))
	require.Contains(t, errb.String(), "cluster.peer.detect.misses 5: predicts")

	// A script of our own: a dying link at 90 % loss fools the watcher
	// without a check; a bad line names its number.
	out.Reset()
	errb.Reset()
	cfg = peerSimConfig(t, "", "no_takeover: false")
	require.Equal(t, 0, Main([]string{"simulate", "-config", cfg, "-"}, Env{Stdout: &out, Stderr: &errb, Stdin: strings.NewReader("duration=60s loss=90% seed=1\n")}), errb.String())
	require.Contains(t, out.String(), "web: FALSE TAKEOVER at +")
	require.Equal(t, 1, Main([]string{"simulate", "-config", cfg, "-"}, Env{Stdout: &out, Stderr: &errb, Stdin: strings.NewReader("duration=1s\nduration=1s kill=a\n")}))
	require.Contains(t, errb.String(), `line 2: "kill": unknown key`)
}

func TestPrintStatusPeer(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	st := api.Status{Node: "b", Time: now, Groups: []api.GroupStatus{
		{Owner: "a", Placement: "address 10.0.0.50 is held by another node", Autostart: true,
			GroupStatus: monitor.GroupStatus{Name: "web", State: resource.StateOffline, Target: resource.StateOffline}},
	}, Peer: &peer.Status{Node: "b", Peer: "a", PeerChecked: true, PeerUp: true, PeerSeen: now.Add(-300 * time.Millisecond), Groups: []peer.GroupStatus{
		{Name: "web", Address: netip.MustParseAddr("10.0.0.50"), Home: "a", Role: peer.Watcher, Owner: "a", State: "alive", Reason: "address 10.0.0.50 is held by another node"},
	}}}
	var b bytes.Buffer
	PrintStatus(&b, st)
	want := `GROUP  OWNER  STATE    RESOURCE  TYPE  RESOURCE STATE  RESTARTS IN PERIOD  TOTAL RESTARTS  LAST FAILURE
web    a      Offline  -         -     -               -                   -               -

Peer mode (seen from b)
NODE  STATE      LAST ANSWER
b     this node  -
a     up         300ms ago
GROUP  ADDRESS    HOME  HERE     OWNER  STATE  MISSES  CHECKS FAILED  REASON
web    10.0.0.50  a     watcher  a      alive  0       0              address 10.0.0.50 is held by another node
`
	require.Equal(t, want, b.String())
	st.Peer.PeerUp, st.Peer.PeerError = false, "dial tcp 10.0.0.1:7946: connection refused"
	b.Reset()
	PrintStatus(&b, st)
	require.Contains(t, b.String(), "a     not answering: dial tcp 10.0.0.1:7946: connection refused  300ms ago")
}
