package main

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestHostWithBuiltPlugin builds the plugin binary and runs the host
// program's run against it: the README's walk-through, end to end.
func TestHostWithBuiltPlugin(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "filelock-plugin")
	out, err := exec.Command("go", "build", "-o", bin, "../plugin").CombinedOutput()
	require.NoError(t, err, "%s", out)
	var buf bytes.Buffer
	require.NoError(t, run(t.Context(), &buf, bin, "", filepath.Join(t.TempDir(), "demo.lock")))
	require.Contains(t, buf.String(), "types: [filelock]")
	require.Contains(t, buf.String(), "configuration error: true")
	require.Contains(t, buf.String(), "online; LooksAlive: <nil> IsAlive: <nil>")
	require.Contains(t, buf.String(), "is locked by another process (class transient)")
	require.Contains(t, buf.String(), "offline")

	err = run(t.Context(), &buf, bin, "0000000000000000000000000000000000000000000000000000000000000000", filepath.Join(t.TempDir(), "x.lock"))
	require.ErrorContains(t, err, "refusing to run a binary that does not match the pin")
}
