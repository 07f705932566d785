package cgroup

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sftkit/sft/internal/testenv"
)

const helperEnv = "SFT_CGROUP_HELPER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		helper(mode)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// helper modes:
//
//	sleep    block
//	escape   start a child that calls setsid and a double-forked
//	         grandchild, each blocking; print their pids; block
//	alloc    allocate and touch memory 1 MiB at a time, for ever
//	term     on SIGTERM write "term" to stdout and exit 0
//	mounts   in a mount namespace of its own: Discover three times,
//	         replace the v2 mount by one at $SFT_CGROUP_MOUNT, Discover;
//	         print the reads of mountinfo and both V2 paths; exit
//	claim    Claim $SFT_CGROUP_CLAIM (parent elements and the name,
//	         '/'-separated), start a sleep helper into the group, print
//	         the group's directory and the sleeper's pid; block
func helper(mode string) {
	switch mode {
	case "claim":
		claimHelper()
	case "mounts":
		mountsHelper()
	case "sleep":
		for {
			time.Sleep(time.Hour)
		}
	case "escape":
		a := exec.Command(os.Args[0])
		a.Env = append(os.Environ(), helperEnv+"=sleep")
		a.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		b := exec.Command(os.Args[0])
		b.Env = append(os.Environ(), helperEnv+"=fork-exit")
		b.Stdout = os.Stdout
		if a.Start() != nil || b.Start() != nil {
			os.Exit(2)
		}
		fmt.Println(a.Process.Pid)
		_ = b.Wait() // b prints its child's pid and exits: that child is orphaned
		select {}
	case "fork-exit":
		c := exec.Command(os.Args[0])
		c.Env = append(os.Environ(), helperEnv+"=sleep")
		c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if c.Start() != nil {
			os.Exit(2)
		}
		fmt.Println(c.Process.Pid)
		os.Exit(0)
	case "alloc":
		for {
			b := make([]byte, 1<<20)
			for i := range b {
				b[i] = 1
			}
			memHog = append(memHog, b) // kept reachable: the limit must kill us
		}
	case "term":
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGTERM)
		fmt.Println("ready")
		<-ch
		fmt.Println("term")
		os.Exit(0)
	}
	os.Exit(2)
}

func claimHelper() {
	elems := strings.Split(os.Getenv(claimEnv), "/")
	l, err := Discover()
	if err != nil {
		os.Exit(2)
	}
	own, err := Self()
	if err != nil {
		os.Exit(2)
	}
	g, _, err := Claim(context.Background(), l, own, elems[:len(elems)-1], elems[len(elems)-1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	dir, err := g.OpenDir()
	if err != nil {
		os.Exit(2)
	}
	c := exec.Command(os.Args[0])
	c.Env = append(os.Environ(), helperEnv+"=sleep")
	c.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(dir.Fd())}
	if c.Start() != nil {
		os.Exit(2)
	}
	fmt.Println(g.Dir())
	fmt.Println(c.Process.Pid)
	select {}
}

const claimEnv = "SFT_CGROUP_CLAIM"

func mountsHelper() {
	var l Layout
	for range 3 {
		var err error
		if l, err = Discover(); err != nil || l.V2 == "" {
			os.Exit(2)
		}
	}
	fmt.Println(mounts.reads)
	dir := os.Getenv(mountEnv)
	if err := syscall.Unmount(l.V2, syscall.MNT_DETACH); err != nil {
		fmt.Fprintln(os.Stderr, "unmount:", err)
		os.Exit(2)
	}
	if err := syscall.Mount("none", dir, "cgroup2", 0, ""); err != nil {
		fmt.Fprintln(os.Stderr, "mount:", err)
		os.Exit(2)
	}
	after, err := Discover()
	if err != nil {
		os.Exit(2)
	}
	fmt.Println(mounts.reads)
	fmt.Println(l.V2)
	fmt.Println(after.V2)
	_ = syscall.Unmount(dir, syscall.MNT_DETACH)
	os.Exit(0)
}

const mountEnv = "SFT_CGROUP_MOUNT"

// testGroup creates a group named after the test below sft-test/ and
// removes it (killing what is left) when the test ends.
func testGroup(t *testing.T) *Group {
	t.Helper()
	l, own, elems := claimParent(t)
	g, err := New(l, own, elems...)
	require.NoError(t, err)
	require.NoError(t, g.Create())
	t.Cleanup(func() {
		_ = g.Kill()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := g.WaitEmpty(ctx); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		require.NoError(t, g.Remove())
		require.NoDirExists(t, g.Dir())
		for _, d := range g.V1Dirs() {
			require.NoDirExists(t, d)
		}
	})
	return g
}

// startIn starts the helper in mode inside g (CLONE_INTO_CGROUP) and
// returns it with its stdout.
func startIn(t *testing.T, g *Group, mode string) (*exec.Cmd, *os.File) {
	t.Helper()
	dir, err := g.OpenDir()
	require.NoError(t, err)
	defer dir.Close()
	r, w, err := os.Pipe()
	require.NoError(t, err)
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), helperEnv+"="+mode)
	cmd.Stdout = w
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(dir.Fd())}
	require.NoError(t, cmd.Start())
	w.Close()
	t.Cleanup(func() { r.Close() })
	go func() { _ = cmd.Wait() }()
	return cmd, r
}

func readLine(t *testing.T, r *os.File) string {
	t.Helper()
	var b []byte
	one := make([]byte, 1)
	for {
		n, err := r.Read(one)
		require.NoError(t, err, "read after %q", b)
		if n == 1 && one[0] == '\n' {
			return string(b)
		}
		b = append(b, one[:n]...)
	}
}

func TestKillFollowsEscapes(t *testing.T) {
	t.Parallel()
	for _, viaFreeze := range []bool{false, true} {
		t.Run(fmt.Sprintf("freeze=%v", viaFreeze), func(t *testing.T) {
			t.Parallel()
			g := testGroup(t)
			g.noKillFile = viaFreeze
			_, out := startIn(t, g, "escape")
			setsid, _ := strconv.Atoi(readLine(t, out))
			orphan, _ := strconv.Atoi(readLine(t, out))
			require.NotZero(t, setsid)
			require.NotZero(t, orphan)
			procs, err := g.Procs()
			require.NoError(t, err)
			require.Contains(t, procs, setsid)
			require.Contains(t, procs, orphan)
			pop, err := g.Populated()
			require.NoError(t, err)
			require.True(t, pop)

			require.NoError(t, g.Kill())
			require.NoError(t, g.WaitEmpty(t.Context()))
			procs, err = g.Procs()
			require.NoError(t, err)
			require.Empty(t, procs)
			// Gone from the process table or a zombie awaiting init.
			for _, pid := range []int{setsid, orphan} {
				require.False(t, liveProcess(pid), "pid %d alive", pid)
			}
		})
	}
}

// liveProcess reports whether pid exists and is not a zombie.
func liveProcess(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && i+2 < len(s) && s[i+2] != 'Z'
}

func TestWaitEmptyHonoursContext(t *testing.T) {
	t.Parallel()
	g := testGroup(t)
	startIn(t, g, "sleep")
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, g.WaitEmpty(ctx), context.DeadlineExceeded)
}

func TestSignal(t *testing.T) {
	t.Parallel()
	g := testGroup(t)
	_, out := startIn(t, g, "term")
	require.Equal(t, "ready", readLine(t, out))
	require.NoError(t, g.Signal(syscall.SIGTERM))
	require.Equal(t, "term", readLine(t, out))
	require.NoError(t, g.WaitEmpty(t.Context()))
}

// TestSignalSkips: a process in skip is not signalled (its owner did it
// through its own pidfd); the others are.
func TestSignalSkips(t *testing.T) {
	t.Parallel()
	g := testGroup(t)
	skipped, out1 := startIn(t, g, "term")
	other, out2 := startIn(t, g, "term")
	require.Equal(t, "ready", readLine(t, out1))
	require.Equal(t, "ready", readLine(t, out2))
	require.NoError(t, g.Signal(syscall.SIGTERM, skipped.Process.Pid))
	require.Equal(t, "term", readLine(t, out2))
	for liveProcess(other.Process.Pid) {
		time.Sleep(time.Millisecond)
	}
	// The other one handled the signal and exited; the skipped one says
	// nothing (it would say "term" at once).
	require.NoError(t, out1.SetReadDeadline(time.Now().Add(100*time.Millisecond)))
	_, err := out1.Read(make([]byte, 1))
	require.ErrorIs(t, err, os.ErrDeadlineExceeded, "the skipped process was signalled")
	require.NoError(t, out1.SetReadDeadline(time.Time{}))
	require.NoError(t, g.Signal(syscall.SIGTERM))
	require.Equal(t, "term", readLine(t, out1))
	require.NoError(t, g.WaitEmpty(t.Context()))
}

func TestMemoryLimitOOM(t *testing.T) {
	t.Parallel()
	g := testGroup(t)
	applied := g.SetLimits(Limits{MemoryBytes: 32 << 20, Tasks: 64, CPU: 0.5})
	require.Len(t, applied, 3)
	for _, a := range applied {
		require.NoError(t, a.Err, a.String())
		require.NotEmpty(t, a.Where)
	}
	cmd, _ := startIn(t, g, "alloc")
	require.NoError(t, g.SyncV1())
	// The limit is in place: the allocator is killed by the OOM killer.
	done := make(chan struct{})
	go func() {
		for liveProcess(cmd.Process.Pid) {
			time.Sleep(time.Millisecond)
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("allocator not killed by the 32 MiB limit")
	}
	require.NoError(t, g.WaitEmpty(t.Context()))
	require.Positive(t, g.OOMKills())
}

func TestSyncV1MovesForks(t *testing.T) {
	t.Parallel()
	g := testGroup(t)
	applied := g.SetLimits(Limits{Tasks: 100})
	require.NoError(t, applied[0].Err)
	_, out := startIn(t, g, "escape")
	setsid, _ := strconv.Atoi(readLine(t, out))
	orphan, _ := strconv.Atoi(readLine(t, out))
	require.NoError(t, g.SyncV1())
	dir, ok := g.V1Dirs()["pids"]
	if !ok {
		t.Skip("pids limit in v2: nothing to sync")
	}
	have, err := readPids(filepath.Join(dir, "cgroup.procs"))
	require.NoError(t, err)
	require.Contains(t, have, setsid)
	require.Contains(t, have, orphan)
}

func TestNewRejectsBadPaths(t *testing.T) {
	t.Parallel()
	l := Layout{V2: "/sys/fs/cgroup"}
	for _, elems := range [][]string{nil, {""}, {".."}, {"a/b"}} {
		_, err := New(l, nil, elems...)
		require.Error(t, err, "%q", elems)
	}
	_, err := New(Layout{}, nil, "sft")
	require.ErrorIs(t, err, ErrNoV2)
}

func TestClaim(t *testing.T) {
	t.Parallel()
	l, own, parent := claimParent(t)
	var groups []*Group
	t.Cleanup(func() {
		for _, g := range groups {
			_ = g.Kill()
			_ = g.WaitEmpty(context.Background())
			require.NoError(t, g.Remove())
		}
		require.NoDirExists(t, filepath.Join(append([]string{l.V2}, parent...)...))
	})
	claim := func() (*Group, []Reclaimed) {
		g, rec, err := Claim(t.Context(), l, own, parent, "app")
		require.NoError(t, err)
		groups = append(groups, g)
		return g, rec
	}

	// First owner: a fresh group, nothing reclaimed.
	a, rec := claim()
	require.Empty(t, rec)
	require.True(t, a.Owned())
	require.Equal(t, "app", filepath.Base(a.Dir()))
	cmd, _ := startIn(t, a, "sleep")

	// A second live owner gets a sibling and leaves a's process alone.
	b, rec := claim()
	require.Empty(t, rec)
	require.NotEqual(t, a.Dir(), b.Dir())
	require.True(t, isSibling(filepath.Base(b.Dir()), "app"), b.Dir())
	require.True(t, liveProcess(cmd.Process.Pid))
	_, bout := startIn(t, b, "escape")
	escaped, _ := strconv.Atoi(readLine(t, bout))

	// Both owners die (their locks go): the next Claim kills both trees,
	// keeps "app" and removes the sibling.
	a.unlock()
	b.unlock()
	c, rec := claim()
	require.Len(t, rec, 2)
	require.Equal(t, a.Dir(), c.Dir())
	require.NoDirExists(t, b.Dir())
	require.False(t, liveProcess(cmd.Process.Pid))
	require.False(t, liveProcess(escaped))
	pop, err := c.Populated()
	require.NoError(t, err)
	require.False(t, pop)
	groups = groups[2:] // a and b are reclaimed by c: c removes the directory
}

// A group is reused after Kill: the next process started into it lives.
func TestReuseAfterKill(t *testing.T) {
	t.Parallel()
	g := testGroup(t)
	startIn(t, g, "sleep")
	require.NoError(t, g.Kill())
	require.NoError(t, g.WaitEmpty(t.Context()))
	_, err := g.Renew()
	require.NoError(t, err)
	cmd, _ := startIn(t, g, "sleep")
	time.Sleep(100 * time.Millisecond)
	require.True(t, liveProcess(cmd.Process.Pid))
}

// Issue 15: Kill of an empty group (its programs exited at their stop
// signal) does nothing: the group is not marked killed, so the next start
// needs no Renew (which would remove and create the directory again), and a
// process started into it lives; WaitEmpty of an empty group returns at
// once.
func TestKillEmptyGroupIsNoop(t *testing.T) {
	t.Parallel()
	g := testGroup(t)
	cmd, _ := startIn(t, g, "sleep")
	require.NoError(t, syscall.Kill(cmd.Process.Pid, syscall.SIGTERM))
	require.NoError(t, g.WaitEmpty(t.Context()))
	before, err := os.Stat(g.Dir())
	require.NoError(t, err)
	require.NoError(t, g.Kill())
	g.mu.Lock()
	killed := g.killed
	g.mu.Unlock()
	require.False(t, killed, "an empty group is not killed")
	_, err = g.Renew()
	require.NoError(t, err)
	after, err := os.Stat(g.Dir())
	require.NoError(t, err)
	require.True(t, os.SameFile(before, after), "Renew left the directory alone")
	cmd, _ = startIn(t, g, "sleep")
	time.Sleep(100 * time.Millisecond)
	require.True(t, liveProcess(cmd.Process.Pid))
	done, cancel := context.WithCancel(t.Context())
	cancel()
	require.Error(t, g.WaitEmpty(done), "a populated group is not empty")
	require.NoError(t, g.Kill())
	require.NoError(t, g.WaitEmpty(t.Context()))
}

// BenchmarkKillToEmpty measures Kill plus WaitEmpty of a three-process
// tree (a setsid child and an orphaned grandchild): the kernel's part of
// genericapp's Offline-to-empty figure.
func BenchmarkKillToEmpty(b *testing.B) {
	testenv.RequireRoot(b)
	l, err := Discover()
	require.NoError(b, err)
	own, err := Self()
	require.NoError(b, err)
	g, err := New(l, own, "sft-test", fmt.Sprintf("%d-bench", os.Getpid()))
	require.NoError(b, err)
	require.NoError(b, g.Create())
	defer func() { require.NoError(b, g.Remove()) }()
	var d []time.Duration
	for b.Loop() {
		_, err := g.Renew()
		require.NoError(b, err)
		dir, err := g.OpenDir()
		require.NoError(b, err)
		r, w, err := os.Pipe()
		require.NoError(b, err)
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), helperEnv+"=escape")
		cmd.Stdout = w
		cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(dir.Fd())}
		require.NoError(b, cmd.Start())
		dir.Close()
		w.Close()
		buf := make([]byte, 64)
		for got := 0; strings.Count(string(buf[:got]), "\n") < 2; {
			n, err := r.Read(buf[got:])
			require.NoError(b, err)
			got += n
		}
		r.Close()
		t0 := time.Now()
		require.NoError(b, g.Kill())
		require.NoError(b, g.WaitEmpty(b.Context()))
		d = append(d, time.Since(t0))
		_ = cmd.Wait()
	}
	slices.Sort(d)
	b.ReportMetric(float64(d[len(d)/2].Microseconds()), "p50-us")
	b.ReportMetric(float64(d[len(d)*99/100].Microseconds()), "p99-us")
	b.ReportMetric(float64(len(d)), "samples")
}

// memHog holds the memory the hog helper allocates, so it stays in use.
var memHog [][]byte

// TestClaimRenewsDeadOwnersKilledGroup: an owner killed its group
// (cgroup.kill) and died; the next owner's Claim finds the group and its
// first start (after Renew, as genericapp does) lives: without the
// renewal the kernel kills it at birth.
func TestClaimRenewsDeadOwnersKilledGroup(t *testing.T) {
	t.Parallel()
	l, own, parent := claimParent(t)
	first, _, err := Claim(t.Context(), l, own, parent, "app")
	require.NoError(t, err)
	startIn(t, first, "sleep")
	require.NoError(t, first.Kill())
	require.NoError(t, first.WaitEmpty(t.Context()))
	first.unlock() // its owner dies
	g, _, err := Claim(t.Context(), l, own, parent, "app")
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = g.Kill()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, g.WaitEmpty(ctx))
		require.NoError(t, g.Remove())
		require.NoDirExists(t, g.Dir())
	})
	_, err = g.Renew()
	require.NoError(t, err)
	cmd, _ := startIn(t, g, "sleep")
	time.Sleep(100 * time.Millisecond)
	require.True(t, liveProcess(cmd.Process.Pid), "the first start after the dead owner's kill lives")
}

// claimParent returns the layout, this process's cgroups and a parent
// for the test's groups (below sft-test, named after the test).
func claimParent(t testing.TB) (Layout, map[string]string, []string) {
	t.Helper()
	testenv.RequireRoot(t)
	l, err := Discover()
	require.NoError(t, err)
	if l.V2 == "" {
		t.Skip("no cgroup2 hierarchy")
	}
	own, err := Self()
	require.NoError(t, err)
	parent := []string{"sft-test", EscapeName(fmt.Sprintf("%d-%s", os.Getpid(), t.Name()))}
	// Registered first, so it runs after the test's own cleanups (which
	// assert what they removed): whatever a test that failed half-way
	// left below its parent is killed and removed, and sft-test with it
	// once it is empty.
	t.Cleanup(func() {
		removeTree(t, filepath.Join(l.V2, parent[0], parent[1]))
		_ = syscall.Rmdir(filepath.Join(l.V2, parent[0])) // fails while another test uses it
	})
	return l, own, parent
}

// removeTree kills what runs in the cgroup tree at dir and removes it,
// children first.
func removeTree(t testing.TB, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	for _, e := range entries {
		if e.IsDir() {
			removeTree(t, filepath.Join(dir, e.Name()))
		}
	}
	_ = writeFile(filepath.Join(dir, "cgroup.kill"), "1")
	if err := rmdirRetry(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("cleanup: %v", err)
	}
}

// claimer is another process that claimed a group and runs a program in
// it (helper mode claim).
type claimer struct {
	cmd     *exec.Cmd
	waited  chan struct{} // closed when cmd was reaped
	dir     string
	program int // pid of the program in dir
}

// startClaimer starts a claimer of parent/name and reads what it claimed.
func startClaimer(t *testing.T, parent []string, name string) *claimer {
	t.Helper()
	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer r.Close()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), helperEnv+"=claim", claimEnv+"="+strings.Join(append(slices.Clone(parent), name), "/"))
	cmd.Stdout = w
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	w.Close()
	waited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(waited) }()
	c := &claimer{cmd: cmd, waited: waited}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-waited
		if c.dir == "" {
			return
		}
		// Its program too, also when the test failed before a Claim
		// reclaimed it (then it is gone already).
		l, own, _ := claimParent(t)
		g, err := New(l, own, append(slices.Clone(parent), filepath.Base(c.dir))...)
		require.NoError(t, err)
		if g.Exists() {
			require.NoError(t, g.Kill())
			require.NoError(t, g.WaitEmpty(context.Background()))
			require.NoError(t, g.Remove())
		}
	})
	c.dir = readLine(t, r)
	c.program, err = strconv.Atoi(readLine(t, r))
	require.NoError(t, err)
	return c
}

// kill kills the claimer (SIGKILL, not its program) and waits until it
// was reaped: its leader turns zombie before its other threads are gone
// and its files (the lock) closed.
func (c *claimer) kill(t *testing.T) {
	t.Helper()
	require.NoError(t, c.cmd.Process.Kill())
	<-c.waited
}

// TestClaimManySiblings (issue 15): Claim lists a parent with hundreds of
// groups once, not at every Claim, and still sees what other processes do
// there afterwards: a sibling another owner created after the listing and
// left behind when it died is reclaimed (its program killed, the sibling
// removed); a live owner in another process keeps its group and its
// program. After the parent was removed and created again, a dead owner's
// leftover in the new parent is reclaimed too.
func TestClaimManySiblings(t *testing.T) {
	t.Parallel()
	l, own, parent := claimParent(t)
	pdir := filepath.Join(append([]string{l.V2}, parent...)...)
	var groups []*Group
	removeAll := func() {
		for _, g := range groups {
			_ = g.Kill()
			_ = g.WaitEmpty(context.Background())
			require.NoError(t, g.Remove())
		}
		groups = nil
		require.NoDirExists(t, pdir)
	}
	t.Cleanup(removeAll)
	claim := func(name string) (*Group, []Reclaimed) {
		t.Helper()
		g, rec, err := Claim(t.Context(), l, own, parent, name)
		require.NoError(t, err)
		groups = append(groups, g)
		return g, rec
	}
	// The index must not expire between two Claims of a slow run.
	claimIndex.mu.Lock()
	idle := claimIndex.idleAfter
	claimIndex.idleAfter = time.Hour
	claimIndex.mu.Unlock()
	t.Cleanup(func() {
		claimIndex.mu.Lock()
		claimIndex.idleAfter = idle
		claimIndex.mu.Unlock()
	})
	before := claimIndex.listings(pdir)
	for i := range 300 {
		g, rec := claim("r" + strconv.Itoa(i))
		require.Empty(t, rec)
		require.Equal(t, "r"+strconv.Itoa(i), filepath.Base(g.Dir()))
	}
	a, _ := claim("app")

	// Another process claims "app" after the listing: a holds it, so it
	// gets a sibling; it starts a program there and dies.
	dead := startClaimer(t, parent, "app")
	require.True(t, isSibling(filepath.Base(dead.dir), "app"), dead.dir)
	dead.kill(t)
	require.True(t, liveProcess(dead.program))

	// a's owner dies too: the next Claim reclaims both.
	a.unlock()
	c, rec := claim("app")
	require.Equal(t, a.Dir(), c.Dir())
	require.Equal(t, []Reclaimed{{Dir: dead.dir, Pids: []int{dead.program}}}, rec)
	require.False(t, liveProcess(dead.program))
	require.NoDirExists(t, dead.dir)

	// A live owner in another process keeps its group.
	live := startClaimer(t, parent, "live")
	require.Equal(t, filepath.Join(pdir, "live"), live.dir)
	g, rec := claim("live")
	require.Empty(t, rec)
	require.True(t, isSibling(filepath.Base(g.Dir()), "live"), g.Dir())
	require.True(t, liveProcess(live.program))
	live.kill(t)
	g, rec = claim("live") // now its owner is dead: reclaimed
	require.Equal(t, []Reclaimed{{Dir: live.dir, Pids: []int{live.program}}}, rec)
	require.Equal(t, live.dir, g.Dir())
	require.False(t, liveProcess(live.program))

	require.Equal(t, 1, claimIndex.listings(pdir)-before, "one listing for %d Claims", len(groups))

	// The parent goes and comes back: the index follows.
	removeAll()
	gone := startClaimer(t, parent, "app")
	require.Equal(t, filepath.Join(pdir, "app"), gone.dir)
	gone.kill(t)
	c, rec = claim("app")
	require.Equal(t, gone.dir, c.Dir())
	require.Equal(t, []Reclaimed{{Dir: gone.dir, Pids: []int{gone.program}}}, rec)
	require.False(t, liveProcess(gone.program))
	removeAll()
	another := startClaimer(t, parent, "other")
	g, _ = claim("other")
	require.True(t, isSibling(filepath.Base(g.Dir()), "other"), "the live owner of the new parent's group is seen")
	another.kill(t)
	g, rec = claim("other")
	require.Equal(t, []Reclaimed{{Dir: another.dir, Pids: []int{another.program}}}, rec)
	require.Equal(t, another.dir, g.Dir())
}

// TestDiscoverRereadsOnlyAfterAMountChange (issue 15): Discover reads
// mountinfo once while the mount table stays the same, and again after it
// changed: in a mount namespace of its own, a helper moves the v2 mount
// and Discover reports the new place.
func TestDiscoverRereadsOnlyAfterAMountChange(t *testing.T) {
	t.Parallel()
	testenv.RequireRoot(t)
	l, err := Discover()
	require.NoError(t, err)
	if l.V2 == "" {
		t.Skip("no cgroup2 hierarchy")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), helperEnv+"=mounts", mountEnv+"="+dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS} // and made private by os/exec
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	require.NoError(t, err)
	lines := strings.Fields(string(out))
	require.Equal(t, []string{"1", "2", l.V2, dir}, lines)
}

// Groups made from Discover's and Self's copies hold one shared copy of
// the layout and own paths (issue 15: a thousand groups), and a caller
// changing its copy afterwards changes no group.
func TestGroupsShareLayout(t *testing.T) {
	l, err := Discover()
	if err != nil || l.V2 == "" {
		t.Skip("no cgroup2 here")
	}
	own, err := Self()
	if err != nil {
		t.Fatal(err)
	}
	g1, err := New(l, own, "sft-test", "a")
	if err != nil {
		t.Fatal(err)
	}
	l2, _ := Discover()
	own2, _ := Self()
	g2, err := New(l2, own2, "sft-test", "b")
	if err != nil {
		t.Fatal(err)
	}
	same := func(a, b map[string]string) bool {
		return reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
	}
	if !same(g1.own, g2.own) || (len(l.V1) > 0 && !same(g1.layout.V1, g2.layout.V1)) {
		t.Fatal("two groups of the same process hold two copies of its cgroup paths")
	}
	if same(g1.own, own) {
		t.Fatal("a group holds the caller's copy")
	}
	want := maps.Clone(g1.own)
	for k := range own {
		own[k] = "/changed"
	}
	own["new"] = "/x"
	if !maps.Equal(g1.own, want) {
		t.Fatalf("the caller's change reached the group: %v", g1.own)
	}
}
