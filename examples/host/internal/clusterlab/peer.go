package clusterlab

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/sftkit/sft/examples/host/api"
)

// ModePeer is Options.Mode for peer mode: two nodes (Options.Nodes,
// default a and b), the group homed on the first (or Preferred[0]), the
// client's address as the reference (the gateway), and the watcher's
// functional check a TCP connect to the app on the VIP (unless GroupYAML
// sets a peer section).
const ModePeer = "peer"

// ClientIP is the client namespace's address (peer mode's reference).
const ClientIP = "10.77.0.100"

// PeerPort is the peer interconnect's TCP port on each node's address.
const PeerPort = 7946

func (l *Lab) writePeerConfig() error {
	if len(l.Nodes) != 2 {
		return fmt.Errorf("clusterlab: peer mode needs two nodes, got %d", len(l.Nodes))
	}
	key := filepath.Join(l.Dir, "cluster.key")
	if err := os.WriteFile(key, []byte("clusterlab-shared-key-"+l.Prefix+"\n"), 0o600); err != nil {
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "log: {level: info, format: text}\nshutdown_timeout: 10s\ncluster:\n  mode: peer\n  key_file: %s\n  peer: {reference: %s}\n  nodes:\n", key, ClientIP)
	for _, n := range l.Nodes {
		fmt.Fprintf(&b, "    - {name: %s, interconnect: [%q]}\n", n.Name, fmt.Sprintf("%s:%d", n.IP, PeerPort))
	}
	preferred := []string{l.Nodes[0].Name}
	if len(l.Opts.Preferred) > 0 {
		preferred = l.Opts.Preferred
	}
	if !strings.Contains(l.Opts.GroupYAML, "peer:") {
		l.Opts.GroupYAML += fmt.Sprintf("    peer: {check: {tcp: \"%s:%d\", interval: 500ms, timeout: 200ms}}\n", VIP, Port)
	}
	b.WriteString(l.groupsYAML(preferred))
	l.Config = filepath.Join(l.Dir, "cluster.yaml")
	return os.WriteFile(l.Config, []byte(b.String()), 0o600)
}

// peerOwner is the group's owner in a peer-mode status.
func peerOwner(st api.Status, group string) string {
	for _, g := range st.Peer.Groups {
		if g.Name == group {
			return g.Owner
		}
	}
	return ""
}
