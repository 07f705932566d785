package peer

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks for leaked goroutines and doubles as a peer-mode node: the lab tests start this binary
// inside a node's network namespace with SFT_PEER_NODE set.
func TestMain(m *testing.M) {
	if spec := os.Getenv(nodeEnv); spec != "" {
		os.Exit(runLabNode(spec))
	}
	goleak.VerifyTestMain(m)
}
