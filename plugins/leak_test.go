package plugins

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sftkit/sft/resource"
)

// TestNoGoroutineLeak runs alone (not parallel): a host that launched,
// relaunched and closed its plugin leaves no goroutine behind.
func TestNoGoroutineLeak(t *testing.T) {
	opt := goleak.IgnoreCurrent()
	func() {
		h, err := Launch(t.Context(), Config{Env: []string{roleEnv + "=plugin"}, MinBackoff: time.Millisecond})
		require.NoError(t, err)
		typ, _ := h.Type("scripted")
		r, err := typ.Open(t.Context(), resource.OpenRequest{Name: "a"})
		require.NoError(t, err)
		require.NoError(t, r.Online(t.Context()))
		require.NoError(t, r.(resource.ProcessKiller).KillProcess("test"))
		require.NoError(t, r.Terminate(t.Context()))
		require.NoError(t, r.Online(t.Context()))
		require.NoError(t, r.Offline(t.Context()))
		require.NoError(t, r.(resource.Closer).Close())
		require.NoError(t, h.Close())
	}()
	goleak.VerifyNone(t, opt)
}
