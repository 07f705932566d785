package procutil

import (
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseStat(t *testing.T) {
	t.Parallel()
	st, err := parseStat("42 (a (b) c) S 7 42 42 0 -1")
	require.NoError(t, err)
	require.Equal(t, Stat{PID: 42, State: 'S', PPID: 7, PGID: 42}, st)
	_, err = parseStat("garbage")
	require.Error(t, err)
}

func TestKillGroupKillsGrandchild(t *testing.T) {
	t.Parallel()
	// sh leads a new group and starts a grandchild (sleep) in the same group.
	cmd := exec.Command("/bin/sh", "-c", "sleep 300 & echo $!; wait")
	cmd.SysProcAttr = SysProcAttr()
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	buf := make([]byte, 32)
	n, err := out.Read(buf)
	require.NoError(t, err)
	require.Positive(t, n)

	kids, err := Children(os.Getpid())
	require.NoError(t, err)
	found := false
	for _, k := range kids {
		found = found || k.PID == cmd.Process.Pid
	}
	require.True(t, found, "child not listed by Children")
	members, err := Group(cmd.Process.Pid)
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(members), 2, "sh and sleep in the group")

	require.NoError(t, KillGroup(cmd.Process.Pid))
	_ = cmd.Wait()
	require.NoError(t, KillGroup(cmd.Process.Pid), "already gone is fine")
	// The grandchild was reparented and killed; once reaped it is gone.
	// Group lists only live (non-zombie) members.
	for {
		members, err = Group(cmd.Process.Pid)
		require.NoError(t, err)
		if len(members) == 0 {
			break
		}
		// SIGKILL is delivered asynchronously; wait for the kernel to finish.
		time.Sleep(time.Millisecond)
	}
	require.Error(t, KillGroup(1))
}
