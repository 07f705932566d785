package cgroup

import (
	"encoding/binary"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// event encodes one inotify event as the kernel queues it.
func event(wd int32, mask uint32, name string) []byte {
	n := 0
	if name != "" {
		n = (len(name) + 1 + 15) / 16 * 16
	}
	b := make([]byte, unix.SizeofInotifyEvent+n)
	binary.NativeEndian.PutUint32(b[0:], uint32(wd))
	binary.NativeEndian.PutUint32(b[4:], mask)
	binary.NativeEndian.PutUint32(b[12:], uint32(n))
	copy(b[unix.SizeofInotifyEvent:], name)
	return b
}

// TestDirIndexEvents: the index applies creations and removals of
// directories in order (the last event for a name wins), ignores files and
// unknown watches, lists again after a queue overflow and forgets a parent
// whose watch went (removed).
func TestDirIndexEvents(t *testing.T) {
	t.Parallel()
	x := newDirIndex()
	p := &dirEntry{wd: 1, path: "/p", names: map[string]map[string]struct{}{}}
	q := &dirEntry{wd: 2, path: "/q", names: map[string]map[string]struct{}{}}
	x.byWd[1], x.dirs["/p"] = p, p
	x.byWd[2], x.dirs["/q"] = q, q
	var b []byte
	for _, ev := range [][]byte{
		event(1, unix.IN_CREATE|unix.IN_ISDIR, "app"),
		event(1, unix.IN_CREATE|unix.IN_ISDIR, "app.12_1"),
		event(1, unix.IN_CREATE|unix.IN_ISDIR, "app.13_1"),
		event(1, unix.IN_DELETE|unix.IN_ISDIR, "app.12_1"),
		event(1, unix.IN_CREATE|unix.IN_ISDIR, "other"),
		event(1, unix.IN_CREATE, "a-file"),
		event(1, unix.IN_MOVED_TO|unix.IN_ISDIR, "app.14_1"),
		event(1, unix.IN_MOVED_FROM|unix.IN_ISDIR, "app.13_1"),
		event(9, unix.IN_CREATE|unix.IN_ISDIR, "app.15_1"), // unknown watch
		event(2, unix.IN_CREATE|unix.IN_ISDIR, "app"),
		event(2, unix.IN_DELETE|unix.IN_ISDIR, "app"),
		event(2, unix.IN_CREATE|unix.IN_ISDIR, "app"),
	} {
		b = append(b, ev...)
	}
	x.applyLocked(b)
	require.Equal(t, map[string]map[string]struct{}{
		"app":   {"app": {}, "app.14_1": {}},
		"other": {"other": {}},
	}, p.names)
	require.Equal(t, map[string]map[string]struct{}{"app": {"app": {}}}, q.names)

	x.applyLocked(append(event(-1, unix.IN_Q_OVERFLOW, ""), event(1, unix.IN_CREATE|unix.IN_ISDIR, "late")...))
	require.Nil(t, p.names, "listed again after an overflow")
	require.Nil(t, q.names)

	x.applyLocked(event(2, unix.IN_IGNORED, ""))
	require.NotContains(t, x.byWd, int32(2))
	require.NotContains(t, x.dirs, "/q")
	require.Contains(t, x.dirs, "/p")
}

// TestMkdirs: mkdirs creates the missing parents, reports whether the leaf
// was there, and creates parents removed since.
func TestMkdirs(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	existed, err := mkdirs(root, []string{"a", "b", "c"})
	require.NoError(t, err)
	require.False(t, existed)
	require.DirExists(t, filepath.Join(root, "a", "b", "c"))
	existed, err = mkdirs(root, []string{"a", "b", "c"})
	require.NoError(t, err)
	require.True(t, existed)
	existed, err = mkdirs(root, []string{"a", "b", "d"})
	require.NoError(t, err)
	require.False(t, existed)
	require.NoError(t, os.RemoveAll(filepath.Join(root, "a")))
	existed, err = mkdirs(root, []string{"a", "b", "c"})
	require.NoError(t, err)
	require.False(t, existed)
	require.DirExists(t, filepath.Join(root, "a", "b", "c"))
	require.NoError(t, os.WriteFile(filepath.Join(root, "file"), nil, 0o644))
	_, err = mkdirs(root, []string{"file", "x"})
	require.ErrorContains(t, err, filepath.Join(root, "file", "x"))
}

// TestReadWriteFile: the plain-syscall file helpers read files of any
// size, write, and report a missing file as fs.ErrNotExist.
func TestReadWriteFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	name := filepath.Join(dir, "f")
	big := strings.Repeat("0123456789abcdef", 300) // several buffer growths
	require.NoError(t, os.WriteFile(name, []byte(big), 0o644))
	b, err := readFile(name)
	require.NoError(t, err)
	require.Equal(t, big, string(b))
	require.NoError(t, writeFile(name, "x"))
	b, err = readFile(name)
	require.NoError(t, err)
	require.Equal(t, "x", string(b[:1]), "written at the start, not truncated (as cgroup files take it)")
	_, err = readFile(filepath.Join(dir, "missing"))
	require.ErrorIs(t, err, fs.ErrNotExist)
	require.ErrorContains(t, err, filepath.Join(dir, "missing"))
	require.ErrorIs(t, writeFile(filepath.Join(dir, "missing"), "1"), fs.ErrNotExist)
	b, err = readFile("/proc/self/cgroup")
	require.NoError(t, err)
	require.Contains(t, string(b), "0::/")
}

// TestDirIndexFollowsAndExpires: on any directory, the index lists the
// parent once and follows later mkdirs and rmdirs through inotify; idle
// for idleAfter it closes its inotify instance, and the next lookup lists
// the parent again.
func TestDirIndexFollowsAndExpires(t *testing.T) {
	dir := t.TempDir()
	synctest.Test(t, func(t *testing.T) {
		x := newDirIndex()
		x.idleAfter = time.Second
		for _, d := range []string{"app", "other", "app.7_1"} {
			require.NoError(t, os.Mkdir(filepath.Join(dir, d), 0o755))
		}
		require.NoError(t, os.WriteFile(filepath.Join(dir, "app.8_1"), nil, 0o644)) // a file: not a candidate
		look := func() []string {
			t.Helper()
			c, err := x.candidates(dir, "app")
			require.NoError(t, err)
			require.Equal(t, "app", c[0])
			slices.Sort(c[1:])
			return c
		}
		require.Equal(t, []string{"app", "app.7_1"}, look())
		require.NoError(t, os.Mkdir(filepath.Join(dir, "app.9_2"), 0o755))
		require.NoError(t, os.Remove(filepath.Join(dir, "app.7_1")))
		require.Equal(t, []string{"app", "app.9_2"}, look())
		require.Equal(t, 1, x.listings(dir))

		time.Sleep(2 * time.Second)
		synctest.Wait()
		x.mu.Lock()
		fd := x.fd
		x.mu.Unlock()
		require.Equal(t, -1, fd, "closed when idle")
		require.NoError(t, os.Mkdir(filepath.Join(dir, "app.10_3"), 0o755))
		require.Equal(t, []string{"app", "app.10_3", "app.9_2"}, look())
		require.Equal(t, 2, x.listings(dir))
		time.Sleep(2 * time.Second) // closes it again
	})
}
