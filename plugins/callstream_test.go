package plugins

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sftkit/sft/resource"
)

// TestCallPaths drives Online, Offline, LooksAlive, IsAlive and Terminate
// through a real plugin process on both paths a call can take: the call
// stream (a plugin with the "calls" capability, the default) and an RPC per
// call (a plugin built before it). On both, progress arrives in order, an
// error keeps its class, field and value, the caller's deadline and its
// cancellation reach the resource in the plugin.
func TestCallPaths(t *testing.T) {
	t.Parallel()
	for _, perCall := range []bool{false, true} {
		name := "call stream"
		if perCall {
			name = "RPC per call"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			h, _ := launch(t, func(c *Config) {
				c.perCallRPCs = perCall
				c.RemoteChecks = true // LooksAlive and IsAlive are calls too
			})
			require.Equal(t, !perCall, h.shared.current().calls != nil, "the path taken")
			dir := t.TempDir()

			fail := filepath.Join(dir, "fail")
			r := open(t, h, "p", resource.Properties{"progress": 3, "fail_looks_file": fail})
			ctx, progress := recordProgress(t.Context())
			require.NoError(t, r.Online(ctx))
			require.Equal(t, []string{"step 1", "step 2", "step 3"}, progress(), "progress, in order, before Online returns")
			require.NoError(t, r.LooksAlive(t.Context()))
			require.NoError(t, r.IsAlive(t.Context()))
			require.NoError(t, os.WriteFile(fail, nil, 0o600))
			err := r.LooksAlive(t.Context())
			require.ErrorContains(t, err, "fail_looks_file exists")
			require.Equal(t, resource.ClassTransient, resource.ClassOf(err))
			require.ErrorContains(t, r.IsAlive(t.Context()), "fail_looks_file exists")
			require.NoError(t, r.Offline(t.Context()))
			require.NoError(t, r.Terminate(t.Context()))

			// An Online's error keeps its class, field and value.
			bad := open(t, h, "bad", resource.Properties{"fail_online": "x y"})
			err = bad.Online(t.Context())
			require.ErrorIs(t, err, resource.ErrConfiguration)
			var re *resource.Error
			require.ErrorAs(t, err, &re)
			require.Equal(t, "fail_online", re.Field)
			require.Equal(t, "x y", re.Value)

			// The caller's deadline reaches the resource.
			ctxFile := filepath.Join(dir, "deadline")
			blocked := open(t, h, "deadline", resource.Properties{"block_online": true, "ctx_file": ctxFile})
			const timeout = 2 * time.Second
			dctx, cancel := context.WithTimeout(t.Context(), timeout)
			defer cancel()
			err = blocked.Online(dctx)
			require.ErrorIs(t, err, context.DeadlineExceeded)
			lines := waitLines(t, ctxFile, 2)
			var left time.Duration
			_, scanErr := fmt.Sscanf(lines[0], "deadline in %d", &left)
			require.NoError(t, scanErr, "the resource's ctx has a deadline: %q", lines[0])
			require.Positive(t, left)
			require.LessOrEqual(t, left, timeout)
			require.True(t, strings.HasPrefix(lines[1], "ended: "), "the resource's Online returned: %q", lines[1])
			require.NoError(t, blocked.Terminate(t.Context()))

			// The caller's cancellation reaches the resource.
			ctxFile = filepath.Join(dir, "cancel")
			blocked = open(t, h, "cancel", resource.Properties{"block_online": true, "ctx_file": ctxFile})
			cctx, cancelCall := context.WithCancel(t.Context())
			errc := make(chan error, 1)
			go func() { errc <- blocked.Online(cctx) }()
			waitLines(t, ctxFile, 1) // the Online runs in the plugin
			cancelCall()
			require.ErrorIs(t, <-errc, context.Canceled)
			require.Equal(t, "ended: context canceled", waitLines(t, ctxFile, 2)[1], "the resource's ctx ended with the caller's")
			require.NoError(t, blocked.Terminate(t.Context()))
		})
	}
}

// waitLines waits until path holds at least n lines and returns them.
func waitLines(t *testing.T, path string, n int) []string {
	t.Helper()
	var lines []string
	waitFor(t, "line "+string(rune('0'+n))+" of "+filepath.Base(path), func() bool {
		b, err := os.ReadFile(path)
		if err != nil {
			return false
		}
		lines = strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
		return len(lines) >= n && strings.HasSuffix(string(b), "\n")
	})
	return lines
}

// recordProgress returns ctx with a progress function that records the
// reports, and what it recorded so far.
func recordProgress(ctx context.Context) (context.Context, func() []string) {
	var (
		mu  sync.Mutex
		got []string
	)
	ctx = resource.WithProgress(ctx, func(msg string) {
		mu.Lock()
		got = append(got, msg)
		mu.Unlock()
	})
	return ctx, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(got)
	}
}
