package proc

import (
	"os"
	"os/exec"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestScanAndHasEnv(t *testing.T) {
	t.Parallel()
	cmd := exec.Command("/bin/sleep", "1000")
	cmd.Env = []string{"SFT_TREE_TEST=yes", "OTHER=1"}
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	infos, err := Scan()
	require.NoError(t, err)
	i := slices.IndexFunc(infos, func(in Info) bool { return in.Pid == cmd.Process.Pid })
	require.GreaterOrEqual(t, i, 0, "child in the scan")
	in := infos[i]
	require.Equal(t, os.Getpid(), in.PPid)
	self, ok := readInfo(os.Getpid())
	require.True(t, ok)
	require.Equal(t, self.Pgid, in.Pgid, "same group as its parent")
	require.Equal(t, self.Sid, in.Sid)
	require.NotEqual(t, byte('Z'), in.State)

	require.True(t, HasEnv(cmd.Process.Pid, "SFT_TREE_TEST=yes"))
	require.False(t, HasEnv(cmd.Process.Pid, "SFT_TREE_TEST=no"))
	require.False(t, HasEnv(cmd.Process.Pid, "SFT_TREE_TEST"))
	require.False(t, HasEnv(1<<30, "SFT_TREE_TEST=yes"), "no such process")
}

func TestReapZombie(t *testing.T) {
	t.Parallel()
	cmd := exec.Command("/bin/true")
	require.NoError(t, cmd.Start())
	pid := cmd.Process.Pid
	// Not reaped yet: wait (bounded) until it is a zombie.
	deadline := time.Now().Add(10 * time.Second)
	for {
		in, ok := readInfo(pid)
		require.True(t, ok, "unreaped child vanished")
		if in.State == 'Z' {
			break
		}
		require.True(t, time.Now().Before(deadline), "child never exited")
		time.Sleep(time.Millisecond)
	}
	require.True(t, ReapZombie(pid))
	_, ok := readInfo(pid)
	require.False(t, ok, "reaped")
	require.False(t, ReapZombie(pid), "only once")
	require.False(t, ReapZombie(os.Getpid()), "not a child")
}
