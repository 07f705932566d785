package genericapp

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sftkit/sft/internal/proc"
	"github.com/sftkit/sft/resource"
)

// Terminate racing Online (with and without a readiness wait) never leaves
// a process behind once both returned and a final Terminate ran, and an
// Online that returned nil left exactly one running process.
func TestTerminateRacesOnline(t *testing.T) {
	t.Parallel()
	for _, ready := range []bool{false, true} {
		t.Run(fmt.Sprintf("readiness=%v", ready), func(t *testing.T) {
			t.Parallel()
			props := resource.Properties{"argv": []any{"/bin/sleep", "1000"}, "stdout": "discard", "stderr": "discard"}
			if ready {
				props["readiness"] = map[string]any{"tcp": "127.0.0.1:" + freePort(t), "interval": "1ms"}
			}
			a := open(t, props, nil)
			var seen []int
			for range 30 {
				// An Online that begins after Terminate returned is
				// a fresh Online; with a readiness check that never
				// passes only its deadline ends it.
				ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
				defer cancel()
				ctx = resource.WithProgress(ctx, func(string) {})
				onl := make(chan error, 1)
				go func() { onl <- a.Online(ctx) }()
				require.NoError(t, a.Terminate(t.Context()))
				err := <-onl
				// Either Online ran (and won) after Terminate, and one
				// process runs, or Terminate won and nothing runs.
				pid := a.Pid()
				if pid != 0 {
					seen = append(seen, pid)
					require.NoError(t, err)
					require.NoError(t, a.LooksAlive(t.Context()))
				} else {
					require.Error(t, a.LooksAlive(t.Context()))
				}
				if ready {
					require.Error(t, err, "readiness never passes: Terminate or the deadline ends Online")
				}
				if err != nil {
					require.Zero(t, pid, "a failed Online leaves no process")
				}
				require.NoError(t, a.Terminate(t.Context()))
				require.Zero(t, a.Pid())
				for _, p := range seen {
					require.False(t, proc.GroupExists(p), "group %d left behind", p)
				}
			}
		})
	}
}
