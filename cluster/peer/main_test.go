package peer

import (
	"os"
	"testing"
)

// TestMain doubles as a peer-mode node: the lab tests start this binary
// inside a node's network namespace with SFT_PEER_NODE set.
func TestMain(m *testing.M) {
	if spec := os.Getenv(nodeEnv); spec != "" {
		os.Exit(runLabNode(spec))
	}
	os.Exit(m.Run())
}
