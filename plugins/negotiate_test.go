package plugins

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/hashicorp/go-plugin"
	"github.com/stretchr/testify/require"

	"github.com/sftkit/sft/resource"
)

// connectServer serves s in this process and connects a Pool to it.
func connectServer(t *testing.T, s *grpcServer) (*Pool, error) {
	t.Helper()
	client, _ := plugin.TestPluginGRPCConn(t, false, plugin.PluginSet{pluginName: &grpcPlugin{server: s}})
	h, err := connectInProcess(t.Context(), Config{DisableAutoMTLS: true}, client, func() { _ = client.Close() })
	if err != nil {
		_ = client.Close()
		return nil, err
	}
	t.Cleanup(func() { require.NoError(t, h.Close()) })
	return h, nil
}

// TestCapabilitiesNegotiated: the capabilities a plugin announces used to be
// ignored. A plugin without "looksalive-loop" (or without "events") is now
// polled with calls: nothing is answered from a plugin-side state that
// would never be pushed.
func TestCapabilitiesNegotiated(t *testing.T) {
	t.Parallel()
	for _, caps := range [][]string{{capEvents}, {capLooksAliveLoop}, nil} {
		s, err := newGRPCServer([]resource.Type{scriptedType{}}, slog.New(slog.DiscardHandler))
		require.NoError(t, err)
		s.capabilities = caps
		h, err := connectServer(t, s)
		require.NoError(t, err)
		require.Nil(t, h.shared.current().calls, "caps %v: no call stream, an RPC per call", caps)
		typ, _ := h.Type("scripted")
		file := filepath.Join(t.TempDir(), "fail")
		r, err := typ.Open(t.Context(), resource.OpenRequest{Name: "a", Properties: resource.Properties{"fail_looks_file": file}})
		require.NoError(t, err)
		require.NoError(t, r.Online(t.Context()))
		require.False(t, r.(resource.InstantChecker).LooksAliveInstant(), "caps %v: no plugin-side state to answer from", caps)
		require.NoError(t, os.WriteFile(file, nil, 0o600))
		require.ErrorContains(t, r.LooksAlive(t.Context()), "fail_looks_file exists", "caps %v: a call, seen at once", caps)
		require.ErrorContains(t, r.IsAlive(t.Context()), "fail_looks_file exists")
		require.NoError(t, r.Terminate(t.Context()))
		require.NoError(t, r.(resource.Closer).Close())
	}
	// With every capability the plugin polls and the proxy answers locally.
	s, err := newGRPCServer([]resource.Type{scriptedType{}}, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	h, err := connectServer(t, s)
	require.NoError(t, err)
	require.NotNil(t, h.shared.current().calls, "calls travel on the call stream")
	typ, _ := h.Type("scripted")
	r, err := typ.Open(t.Context(), resource.OpenRequest{Name: "b"})
	require.NoError(t, err)
	require.NoError(t, r.Online(t.Context()))
	require.True(t, r.(resource.InstantChecker).LooksAliveInstant())
	require.NoError(t, r.(resource.Closer).Close())
}

// TestProtocolVersionMismatchNamesBoth: a plugin of another protocol version
// is refused with an error naming both versions, whether go-plugin's
// handshake or Info tells (TestRefusedPlugins covers the handshake with a
// real process).
func TestProtocolVersionMismatchNamesBoth(t *testing.T) {
	t.Parallel()
	s, err := newGRPCServer([]resource.Type{scriptedType{}}, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	s.protocol = 7
	_, err = connectServer(t, s)
	require.ErrorIs(t, err, errProtocolMismatch)
	require.ErrorContains(t, err, "speaks protocol version 7, this host speaks version 1")
}
