package cgroup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Discover reads /proc/self/mountinfo and returns the cgroup layout of this
// process's mount namespace. It reads the file again only when the mount
// table changed since the last read: it keeps the file open, and poll(2)
// marks it (POLLPRI) after a mount or unmount (proc(5)), so a thousand
// Opens do not read and compare the same text a thousand times (issue 15).
func Discover() (Layout, error) {
	mounts.mu.Lock()
	defer mounts.mu.Unlock()
	if mounts.fd < 0 {
		// Opened before the read: a change in between is reported by the
		// next poll (a spurious read at worst).
		if fd, err := unix.Open("/proc/self/mountinfo", unix.O_RDONLY|unix.O_CLOEXEC, 0); err == nil {
			mounts.fd = fd
		}
	} else if mounts.ok && !mountsChanged(mounts.fd) {
		return mounts.l.clone(), nil
	}
	mounts.reads++
	b, err := readFile("/proc/self/mountinfo")
	if err != nil {
		return Layout{}, err
	}
	l, err := parsed(&layouts, b, func(b []byte) (Layout, error) { return ParseMountinfo(bytes.NewReader(b)) })
	if err != nil {
		return l.clone(), err
	}
	mounts.l, mounts.ok = l, mounts.fd >= 0
	return l.clone(), nil
}

// mounts is Discover's open /proc/self/mountinfo and its last result.
var mounts = struct {
	mu sync.Mutex
	fd int // -1: not open
	l  Layout
	ok bool // l is current as of the last poll
	// reads counts the reads of the file (tests).
	reads int
}{fd: -1}

// mountsChanged reports whether the mount table changed since the last
// call (or since fd was opened): the kernel marks the file POLLPRI|POLLERR
// once per change. An error counts as a change.
func mountsChanged(fd int) bool {
	p := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLPRI}}
	n, err := unix.Poll(p, 0)
	return err != nil || (n > 0 && p[0].Revents&(unix.POLLPRI|unix.POLLERR) != 0)
}

func (l Layout) clone() Layout {
	l.V1 = maps.Clone(l.V1)
	return l
}

// Self returns this process's own cgroup paths (see ParseOwnCgroups).
func Self() (map[string]string, error) {
	b, err := readFile("/proc/self/cgroup")
	if err != nil {
		return nil, err
	}
	own, err := parsed(&selfs, b, func(b []byte) (map[string]string, error) { return ParseOwnCgroups(bytes.NewReader(b)) })
	return maps.Clone(own), err
}

// parseCache keeps the last parse of a /proc file: a thousand Opens read
// the same text, and each parse kept its own copy of it (issue 15).
type parseCache[T any] struct {
	mu   sync.Mutex
	text []byte
	v    T
}

var (
	layouts parseCache[Layout]
	selfs   parseCache[map[string]string]
)

// parsed returns parse(text), reusing the last result when text is the
// same. The result is shared: callers copy what they may change.
func parsed[T any](c *parseCache[T], text []byte, parse func([]byte) (T, error)) (T, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.text != nil && bytes.Equal(c.text, text) {
		return c.v, nil
	}
	v, err := parse(text)
	if err != nil {
		return v, err
	}
	c.text, c.v = text, v
	return v, nil
}

// Group is one cgroup: a directory in the v2 hierarchy (containment: every
// process started into it and all their descendants, whatever they do,
// until they are killed) plus, for limits whose controller is bound to a
// v1 hierarchy, a directory of the same name in that hierarchy.
//
// The v2 directory is <Layout.V2>/<elems...>. A v1 directory is
// <mount>/<this process's own cgroup in that hierarchy>/<elems...>, so the
// limits of whatever contains the caller still apply to the group.
type Group struct {
	layout Layout
	own    map[string]string
	elems  []string
	dir    string            // v2 directory
	events string            // its cgroup.events
	v1     map[string]string // controller -> v1 directory in use (after SetLimits)
	// memV2 is set when the memory limit went to the v2 directory.
	memV2 bool
	// noKillFile forces Kill's freeze-and-kill path (tests).
	noKillFile bool
	// mu serializes Kill and Renew (Terminate may kill while Online
	// renews) and guards lock and killed.
	mu sync.Mutex
	// lock is the open directory holding the group's flock (Claim).
	lock *os.File
	// killed is set once cgroup.kill was written (see Renew).
	killed bool
	// limits are the limits last set, applied again by Renew.
	limits Limits
}

// ErrNoV2 is returned when there is no cgroup2 hierarchy.
var ErrNoV2 = errors.New("cgroup: no cgroup2 hierarchy mounted")

// New describes the group at elems below the v2 root (each element one
// directory name, see EscapeName). It has no side effects. own is the
// caller's own cgroups (Self); nil places v1 directories below the v1
// mount roots.
func New(l Layout, own map[string]string, elems ...string) (*Group, error) {
	if l.V2 == "" {
		return nil, ErrNoV2
	}
	if len(elems) == 0 {
		return nil, errors.New("cgroup: no path below the root")
	}
	for _, e := range elems {
		if e == "" || e == "." || e == ".." || strings.ContainsRune(e, '/') {
			return nil, fmt.Errorf("cgroup: bad path element %q", e)
		}
	}
	dir := filepath.Join(append([]string{l.V2}, elems...)...)
	l.V1 = shared(&layouts, l.V1, func(l Layout) map[string]string { return l.V1 })
	own = shared(&selfs, own, func(m map[string]string) map[string]string { return m })
	return &Group{layout: l, own: own, elems: slices.Clone(elems), dir: dir, events: dir + "/cgroup.events"}, nil
}

// shared returns the map of c's last parse instead of m when they are
// equal: a Group only reads its layout and own paths, and a thousand
// groups then hold one copy (issue 15: Discover and Self hand out
// copies, about 1 KB per Group).
func shared[T any](c *parseCache[T], m map[string]string, of func(T) map[string]string) map[string]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.text == nil {
		return m
	}
	if s := of(c.v); maps.Equal(s, m) {
		return s
	}
	return m
}

// Dir is the group's v2 directory.
func (g *Group) Dir() string { return g.dir }

// V1Dirs returns the v1 directories in use, by controller.
func (g *Group) V1Dirs() map[string]string {
	return maps.Clone(g.v1)
}

// Exists reports whether the v2 directory exists.
func (g *Group) Exists() bool {
	fi, err := os.Stat(g.dir)
	return err == nil && fi.IsDir()
}

// Create makes the v2 directory and its parents. An existing directory is
// fine (use Populated to learn whether something still runs there).
func (g *Group) Create() error {
	_, err := mkdirs(g.layout.V2, g.elems)
	return err
}

// mkdirs creates root/elems... and reports whether the leaf was there
// already. It tries the leaf alone first (one mkdir when the parents are
// there, as for every instance but the first of a node), then one level at
// a time; a parent that a concurrent Remove deletes between two levels is
// created again.
func mkdirs(root string, elems []string) (existed bool, err error) {
	leaf := filepath.Join(append([]string{root}, elems...)...)
	if err := os.Mkdir(leaf, 0o755); err == nil || errors.Is(err, fs.ErrExist) {
		return err != nil, nil
	}
	for attempt := 0; ; attempt++ {
		p := root
		var err error
		existed = false
		for _, e := range elems {
			p = filepath.Join(p, e)
			if err = os.Mkdir(p, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
				break
			}
			existed = err != nil
			err = nil
		}
		if err == nil || !errors.Is(err, fs.ErrNotExist) || attempt == 10 {
			if err != nil {
				return false, fmt.Errorf("cgroup: create %s: %w", leaf, err)
			}
			return existed, nil
		}
	}
}

// Renew makes an empty group fit for a new start. A group that was killed
// through cgroup.kill is removed and created again (its lock taken anew,
// its limits set again): since Linux 6.14 a process cloned into a group
// (CLONE_INTO_CGROUP) whose kill sequence differs from its parent's
// group's is killed at birth, which is every start after a cgroup.kill.
// Without cgroup.kill it does nothing. It returns the limits as applied
// again (nil if none or nothing was done).
func (g *Group) Renew() ([]Applied, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.killed {
		return nil, nil
	}
	locked := g.lock != nil
	g.unlockLocked()
	if err := rmdirRetry(g.dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("cgroup: renew %s: %w", g.dir, err)
	}
	if err := g.Create(); err != nil {
		return nil, err
	}
	g.killed = false
	if locked {
		if ok, err := g.tryLock(); err != nil || !ok {
			return nil, fmt.Errorf("cgroup: renew %s: another owner took it (%v)", g.dir, err)
		}
	}
	if g.limits.IsZero() {
		return nil, nil
	}
	return g.SetLimits(g.limits), nil
}

// OpenDir opens the v2 directory, for SysProcAttr.CgroupFD
// (CLONE_INTO_CGROUP). The caller closes it.
func (g *Group) OpenDir() (*os.File, error) {
	return os.OpenFile(g.dir, os.O_RDONLY|syscall.O_DIRECTORY, 0)
}

// Add moves pid (the whole process) into the v2 group.
func (g *Group) Add(pid int) error {
	return writeFile(filepath.Join(g.dir, "cgroup.procs"), strconv.Itoa(pid))
}

// SetLimits applies l: each limit in the v2 directory when its controller
// is available there (enabling it in the parents' cgroup.subtree_control
// below the v2 root, never in the root itself), else in the controller's
// v1 hierarchy, else not at all. It returns one Applied per limit set in
// l, saying where it went or why not. Call it after Create and before
// starting processes; call SyncV1 after a process was started.
func (g *Group) SetLimits(l Limits) []Applied {
	g.limits = l
	var out []Applied
	for _, s := range l.settings() {
		a := Applied{Limit: s.limit, Value: s.v2Value}
		if err := g.enableV2(s.controller); err == nil {
			if err := writeFile(filepath.Join(g.dir, s.v2File), s.v2Value); err == nil {
				a.Where = "v2"
				if s.controller == "memory" {
					g.memV2 = true
				}
				out = append(out, a)
				continue
			} else {
				a.Err = err
			}
		}
		mnt, ok := g.layout.V1[s.controller]
		if !ok {
			if a.Err == nil {
				a.Err = fmt.Errorf("controller %q is neither enabled in cgroup v2 nor mounted as cgroup v1", s.controller)
			}
			out = append(out, a)
			continue
		}
		root := filepath.Join(mnt, g.own[s.controller])
		dir := filepath.Join(append([]string{root}, g.elems...)...)
		if _, err := mkdirs(root, g.elems); err != nil {
			a.Err = err
			out = append(out, a)
			continue
		}
		if g.v1 == nil {
			g.v1 = map[string]string{}
		}
		g.v1[s.controller] = dir
		a.Value = s.v1Value
		if err := writeFile(filepath.Join(dir, s.v1File), s.v1Value); err != nil {
			a.Err = err
			out = append(out, a)
			continue
		}
		a.Err = nil
		a.Where = "v1:" + s.controller
		out = append(out, a)
	}
	return out
}

// enableV2 makes controller available in the group's v2 directory by
// enabling it in the cgroup.subtree_control of every parent between the v2
// root and the group. The root's own subtree_control is not ours to
// change: a controller it does not enable is reported unavailable.
func (g *Group) enableV2(controller string) error {
	p := g.layout.V2
	if !hasWord(filepath.Join(p, "cgroup.subtree_control"), controller) {
		return fmt.Errorf("controller %q is not enabled in %s", controller, filepath.Join(p, "cgroup.subtree_control"))
	}
	for _, e := range g.elems[:len(g.elems)-1] {
		p = filepath.Join(p, e)
		if err := writeFile(filepath.Join(p, "cgroup.subtree_control"), "+"+controller); err != nil {
			return err
		}
	}
	return nil
}

func hasWord(file, w string) bool {
	b, err := readFile(file)
	if err != nil {
		return false
	}
	return slices.Contains(strings.Fields(string(b)), w)
}

// SyncV1 moves every process of the v2 group into the v1 directories in
// use, until a pass finds none missing: a process forked before its parent
// was moved is caught by the next pass. Without v1 directories it does
// nothing.
func (g *Group) SyncV1() error {
	if len(g.v1) == 0 {
		return nil
	}
	for pass := 0; pass < 100; pass++ {
		procs, err := g.Procs()
		if err != nil {
			return err
		}
		moved := 0
		for _, c := range slices.Sorted(maps.Keys(g.v1)) {
			dir := g.v1[c]
			have, err := readPids(filepath.Join(dir, "cgroup.procs"))
			if err != nil {
				return err
			}
			for _, pid := range procs {
				if slices.Contains(have, pid) {
					continue
				}
				if err := writeFile(filepath.Join(dir, "cgroup.procs"), strconv.Itoa(pid)); err != nil {
					if errors.Is(err, syscall.ESRCH) {
						continue // exited meanwhile
					}
					return fmt.Errorf("cgroup: move %d into %s: %w", pid, dir, err)
				}
				moved++
			}
		}
		if moved == 0 {
			return nil
		}
	}
	return errors.New("cgroup: v1 sync did not settle (fork storm?)")
}

// Procs lists the processes in the v2 group (not zombies).
func (g *Group) Procs() ([]int, error) {
	return readPids(filepath.Join(g.dir, "cgroup.procs"))
}

func readPids(file string) ([]int, error) {
	b, err := readFile(file)
	if err != nil {
		return nil, err
	}
	var out []int
	for f := range bytes.FieldsSeq(b) {
		n, err := strconv.Atoi(string(f))
		if err != nil {
			return nil, fmt.Errorf("%s: bad pid %q", file, f)
		}
		out = append(out, n)
	}
	return out, nil
}

// Populated reads "populated" from cgroup.events: whether a live process
// is in the group or below it.
func (g *Group) Populated() (bool, error) {
	v, err := g.event("populated")
	return v == 1, err
}

// event reads key's value from cgroup.events.
func (g *Group) event(key string) (int64, error) {
	return keyedValue(g.events, key)
}

// keyedValue reads a "key value" line from a flat-keyed cgroup file.
func keyedValue(file, key string) (int64, error) {
	b, err := readFile(file)
	if err != nil {
		return 0, err
	}
	for line := range bytes.SplitSeq(b, []byte("\n")) {
		k, v, ok := bytes.Cut(line, []byte(" "))
		if ok && string(k) == key {
			return strconv.ParseInt(string(bytes.TrimSpace(v)), 10, 64)
		}
	}
	return 0, fmt.Errorf("%s: no %q", file, key)
}

// Kill kills every process in the group with SIGKILL: through cgroup.kill
// (Linux 5.14+), else by freezing the group (no fork can then escape),
// sending SIGKILL to each member and thawing it. It does not wait: see
// WaitEmpty. An empty group (cgroup.events "populated 0": nothing can join
// it but by a clone into it or a write to cgroup.procs, which are its
// owner's) is left alone, so the next start needs no Renew.
func (g *Group) Kill() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if v, err := g.event("populated"); err == nil && v == 0 {
		return nil
	}
	if !g.noKillFile {
		err := writeFile(filepath.Join(g.dir, "cgroup.kill"), "1")
		if err == nil {
			g.killed = true
		}
		if err == nil || !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return g.freezeKill()
}

// freezeKill is Kill without cgroup.kill.
func (g *Group) freezeKill() error {
	freeze := filepath.Join(g.dir, "cgroup.freeze")
	frozen := writeFile(freeze, "1") == nil
	if frozen {
		defer func() { _ = writeFile(freeze, "0") }()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		// Best effort: a member in uninterruptible sleep delays freezing;
		// SIGKILL below still reaches it.
		_ = g.waitEvent(ctx, "frozen", 1)
		cancel()
	}
	for range 100 {
		procs, err := g.Procs()
		if err != nil {
			return err
		}
		if len(procs) == 0 {
			return nil
		}
		for _, pid := range procs {
			_ = syscall.Kill(pid, syscall.SIGKILL) // members of a frozen group cannot exit and be reused
		}
		if frozen {
			return nil
		}
		time.Sleep(time.Millisecond) // without a freezer, kill until no fork is left
	}
	return errors.New("cgroup: members keep appearing")
}

// WaitEmpty waits until no live process is in the group (cgroup.events
// "populated 0"), watching the file with inotify: no polling. It returns
// ctx's error if ctx ends first.
func (g *Group) WaitEmpty(ctx context.Context) error {
	return g.waitEvent(ctx, "populated", 0)
}

// waitEvent waits until cgroup.events has key = want. It reads the file
// once before setting up the watch: a group that is already there (a
// program that exited at its stop signal) costs one read, not an inotify
// instance (a thousand programs stopping at once).
func (g *Group) waitEvent(ctx context.Context, key string, want int64) error {
	if v, err := g.event(key); err != nil || v == want {
		return err
	}
	events := filepath.Join(g.dir, "cgroup.events")
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return fmt.Errorf("cgroup: inotify: %w", err)
	}
	f := os.NewFile(uintptr(fd), "inotify")
	defer f.Close()
	if _, err := unix.InotifyAddWatch(fd, events, unix.IN_MODIFY); err != nil {
		return fmt.Errorf("cgroup: watch %s: %w", events, err)
	}
	stop := context.AfterFunc(ctx, func() { _ = f.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	buf := make([]byte, 4096)
	for {
		v, err := g.event(key)
		if err != nil {
			return err
		}
		if v == want {
			return nil
		}
		if _, err := f.Read(buf); err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("cgroup: waiting for %s %d in %s: %w", key, want, g.dir, ctx.Err())
			}
			return fmt.Errorf("cgroup: inotify read: %w", err)
		}
	}
}

// Signal sends sig to every process in the group but those in skip (the
// caller signalled them itself, for example its own child through a
// pidfd it holds). Each is opened as a pidfd and checked to still be in
// the group before it is signalled, so a pid reused by a stranger is never
// hit.
func (g *Group) Signal(sig syscall.Signal, skip ...int) error {
	procs, err := g.Procs()
	if err != nil {
		return err
	}
	var want []byte
	var errs []error
	for _, pid := range procs {
		if slices.Contains(skip, pid) {
			continue
		}
		if want == nil {
			want = []byte("0::" + g.v2Path() + "\n")
		}
		pfd, err := unix.PidfdOpen(pid, 0)
		if err != nil {
			continue // gone
		}
		b, err := readFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
		if err == nil && bytes.Contains(b, want) {
			if err := unix.PidfdSendSignal(pfd, sig, nil, 0); err != nil && !errors.Is(err, syscall.ESRCH) {
				errs = append(errs, fmt.Errorf("signal %d: %w", pid, err))
			}
		}
		_ = unix.Close(pfd)
	}
	return errors.Join(errs...)
}

// v2Path is the group's path as /proc/<pid>/cgroup shows it (relative to
// the v2 root, with a leading slash).
func (g *Group) v2Path() string { return "/" + strings.Join(g.elems, "/") }

// OOMKills returns how many processes the OOM killer killed in the group
// because of its memory limit (memory.events or memory.oom_control
// "oom_kill"); 0 without a memory limit.
func (g *Group) OOMKills() int64 {
	if g.memV2 {
		n, _ := keyedValue(filepath.Join(g.dir, "memory.events"), "oom_kill")
		return n
	}
	if dir, ok := g.v1["memory"]; ok {
		n, _ := keyedValue(filepath.Join(dir, "memory.oom_control"), "oom_kill")
		return n
	}
	return 0
}

// limitControllers are the controllers SetLimits may use.
var limitControllers = []string{"memory", "cpu", "pids"}

// Remove deletes the group's directories (v2 and v1), then each parent
// below the roots that has become empty, and releases the lock. The group
// must be empty; parents still in use by other groups stay.
func (g *Group) Remove() error {
	var errs []error
	if err := rmdirs(g.layout.V2, g.elems); err != nil {
		errs = append(errs, err)
	}
	// Every limit controller's v1 directory, not only those this Group
	// used: a reclaimed group's limits were set by its dead owner.
	for _, c := range limitControllers {
		mnt, ok := g.layout.V1[c]
		if !ok {
			continue
		}
		if err := rmdirs(filepath.Join(mnt, g.own[c]), g.elems); err != nil {
			errs = append(errs, err)
		}
	}
	g.unlock()
	return errors.Join(errs...)
}

// rmdirs removes root/elems... and then its parents up to (not including)
// root, stopping at the first parent that is still in use.
func rmdirs(root string, elems []string) error {
	leaf := filepath.Join(append([]string{root}, elems...)...)
	if err := rmdirRetry(leaf); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("cgroup: remove %s: %w", leaf, err)
	}
	for i := len(elems) - 1; i > 0; i-- {
		p := filepath.Join(append([]string{root}, elems[:i]...)...)
		if err := syscall.Rmdir(p); err != nil {
			break // EBUSY/ENOTEMPTY: another group's parent too
		}
	}
	return nil
}

// rmdirRetry removes a cgroup directory. Right after its last process was
// reaped the kernel may still count it (EBUSY) for a moment.
func rmdirRetry(p string) error {
	var err error
	for i := range 200 {
		if err = syscall.Rmdir(p); err == nil || errors.Is(err, syscall.ENOENT) {
			if err != nil {
				return fs.ErrNotExist
			}
			return nil
		}
		if !errors.Is(err, syscall.EBUSY) {
			return err
		}
		time.Sleep(time.Duration(i+1) * 100 * time.Microsecond)
	}
	return err
}

// writeFile writes v to a kernel file with plain system calls (see
// readFile). An error to open it is returned as it is (fs.ErrNotExist:
// no such interface file); one to write it names v and the file.
func writeFile(name, v string) error {
	fd, err := openFile(name, unix.O_WRONLY)
	if err != nil {
		return err
	}
	for {
		_, err = unix.Write(fd, []byte(v))
		if err != unix.EINTR {
			break
		}
	}
	if cerr := unix.Close(fd); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %q to %s: %w", v, name, err)
	}
	return nil
}

// readFile reads a kernel file (cgroup, /proc) with plain system calls:
// os.ReadFile registers a pollable cgroup file with the runtime's
// netpoller and removes it again, three more system calls per read that
// the thousand groups read at once after a plugin crash paid for nothing
// (issue 15).
func readFile(name string) ([]byte, error) {
	fd, err := openFile(name, unix.O_RDONLY)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	b := make([]byte, 0, 512)
	for {
		if len(b) == cap(b) {
			b = slices.Grow(b, cap(b))
		}
		n, err := unix.Read(fd, b[len(b):cap(b)])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "read", Path: name, Err: err}
		}
		if n == 0 {
			return b, nil
		}
		b = b[:len(b)+n]
	}
}

func openFile(name string, mode int) (int, error) {
	for {
		fd, err := unix.Open(name, mode|unix.O_CLOEXEC, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return -1, &os.PathError{Op: "open", Path: name, Err: err}
		}
		return fd, nil
	}
}
