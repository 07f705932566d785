package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestEmbed builds the program, runs it until its app is online, then
// stops it with SIGINT: exit 0 and the app gone.
func TestEmbed(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "embed")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Stderr = os.Stderr
	require.NoError(t, build.Run())

	pidFile := filepath.Join(dir, "app.pid")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--", "/bin/sh", "-c", "echo $$ > "+pidFile+"; exec sleep 1000")
	cmd.Env = append(os.Environ(), "TMPDIR="+dir)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	buf := make([]byte, 4096)
	var seen strings.Builder
	for !strings.Contains(seen.String(), "group_state_changed demo: OnlinePending -> Online") {
		n, err := out.Read(buf)
		require.NoError(t, err, "output so far: %s", seen.String())
		seen.Write(buf[:n])
	}
	// Online returns once the app is started; the shell writes its pid
	// right after.
	var b []byte
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		b, err = os.ReadFile(pidFile)
		if (err == nil && len(b) > 0 && b[len(b)-1] == '\n') || time.Now().After(deadline) {
			break
		}
	}
	require.NoError(t, err)
	var appPid int
	_, err = fmt.Sscan(strings.TrimSpace(string(b)), &appPid)
	require.NoError(t, err)
	require.NoError(t, syscall.Kill(appPid, 0), "the app runs")

	require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
	go func() { _, _ = out.Read(buf) }()
	require.NoError(t, cmd.Wait(), "exit 0 after SIGINT")
	require.ErrorIs(t, syscall.Kill(appPid, 0), syscall.ESRCH, "the app is gone")
}
