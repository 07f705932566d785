package cgroup

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// dirIndex knows the subdirectories of the parent directories Claim looked
// in, so that a Claim need not list its parent: with a thousand instances
// under one node, listing a thousand siblings at each of a thousand Claims
// (quadratic) was most of a plugin's reopen after a crash (issue 15).
//
// It lists a parent once, after an inotify watch on it is in place, and
// from then on applies the watch's events (IN_CREATE, IN_DELETE, moves) to
// its list before each lookup. The list is exact, not a cache that may be
// stale: every mkdir and rmdir of a cgroup directory, whichever process
// makes it, goes through the VFS, which queues the event within the call
// itself; so a directory that exists when a lookup starts was either there
// at the listing or its IN_CREATE is in the queue the lookup drains first.
// In particular a sibling that another live owner (two hosts with the same
// node name) created after the listing, and left behind when it died, is
// found and its leftover killed, as when Claim listed the parent every
// time; events that happened before the listing and are applied again
// after it change nothing, since the last event for a name is the truth.
//
// The index lives while Claims come: idleAfter after the last one it
// closes its inotify instance (the kernel would otherwise queue, for a
// process that claims no more, every mkdir and rmdir under the parent, up
// to the queue limit), and the next Claim lists the parent again: one
// listing per burst of Claims (a crash's reopens), not one per Claim.
//
// A queue overflow (IN_Q_OVERFLOW) makes the next lookup list every parent
// again. A parent that was removed (IN_IGNORED, or another inode at the
// path) is forgotten and listed again when it is used next. Without
// inotify (the per-user instance or watch limit reached) a lookup lists
// the parent, as Claim did before.
type dirIndex struct {
	mu   sync.Mutex
	fd   int                  // inotify instance; -1: none (yet)
	dirs map[string]*dirEntry // by path
	byWd map[int32]*dirEntry
	buf  []byte
	// idleAfter is how long the index outlives its last lookup.
	idleAfter time.Duration
	idle      *time.Timer
	last      time.Time // of the last lookup
	// listed counts the listings of each parent (tests).
	listed map[string]int
}

// dirEntry is one watched parent.
type dirEntry struct {
	wd   int32
	path string
	ino  uint64
	// names are the subdirectories by base (see baseName); nil: list
	// again.
	names map[string]map[string]struct{}
}

const watchMask = unix.IN_CREATE | unix.IN_DELETE | unix.IN_MOVED_FROM | unix.IN_MOVED_TO | unix.IN_ONLYDIR

// claimIndex is this process's index (one inotify instance, one watch per
// parent directory Claim used).
var claimIndex = newDirIndex()

func newDirIndex() *dirIndex {
	return &dirIndex{fd: -1, idleAfter: 5 * time.Second, dirs: map[string]*dirEntry{}, byWd: map[int32]*dirEntry{}, listed: map[string]int{}}
}

// baseName is n up to its first '.': name and its siblings name.<pid>_<n>
// share it (EscapeName never writes a '.').
func baseName(n string) string {
	b, _, _ := strings.Cut(n, ".")
	return b
}

// candidates returns the subdirectories of pdir that are name or one of
// its siblings (see isSibling), name itself always first: the caller
// created it.
func (x *dirIndex) candidates(pdir, name string) ([]string, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.last = time.Now()
	if x.idle == nil {
		x.idle = time.AfterFunc(x.idleAfter, x.expire)
	} else {
		x.idle.Reset(x.idleAfter)
	}
	e, err := x.entryLocked(pdir)
	if err != nil {
		return nil, err
	}
	var set map[string]struct{}
	if e != nil {
		set = e.names[baseName(name)]
	} else {
		names, err := x.listLocked(pdir)
		if err != nil {
			return nil, err
		}
		set = names[baseName(name)]
	}
	out := []string{name}
	for n := range set {
		if isSibling(n, name) {
			out = append(out, n)
		}
	}
	return out, nil
}

// entryLocked returns pdir's entry, current (its events applied, listed
// if needed); nil without inotify.
func (x *dirIndex) entryLocked(pdir string) (*dirEntry, error) {
	if x.fd < 0 {
		fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
		if err != nil {
			return nil, nil // the next lookup tries again
		}
		x.fd = fd
	}
	if err := x.drainLocked(); err != nil {
		x.closeLocked()
		return nil, nil
	}
	var st syscall.Stat_t
	if err := syscall.Stat(pdir, &st); err != nil {
		return nil, fmt.Errorf("cgroup: %w", &os.PathError{Op: "stat", Path: pdir, Err: err})
	}
	e := x.dirs[pdir]
	if e != nil && e.ino != st.Ino {
		// Removed and created again, its IN_IGNORED not queued yet (a
		// reference to the old directory was still held); cgroupfs inode
		// numbers are kernfs node ids, which carry a generation, so a new
		// directory does not get the old one's.
		_, _ = unix.InotifyRmWatch(x.fd, uint32(e.wd))
		x.forgetLocked(e)
		e = nil
	}
	if e == nil {
		wd, err := unix.InotifyAddWatch(x.fd, pdir, watchMask)
		if err != nil {
			return nil, nil // the watch limit: list every time
		}
		// The same directory under another path shares the watch; a
		// watch number the kernel gave again after an entry's IN_IGNORED
		// went unseen replaces that entry.
		if e = x.byWd[int32(wd)]; e != nil && e.ino != st.Ino {
			x.forgetLocked(e)
			e = nil
		}
		if e == nil {
			e = &dirEntry{wd: int32(wd), path: pdir, ino: st.Ino}
			x.byWd[e.wd] = e
		}
		x.dirs[pdir] = e
	}
	if e.names == nil {
		// Listed after the watch is in place: nothing created meanwhile
		// is missed.
		names, err := x.listLocked(pdir)
		if err != nil {
			return nil, err
		}
		e.names = names
	}
	return e, nil
}

// listLocked lists the subdirectories of pdir by base. Unsorted
// (File.ReadDir, not os.ReadDir).
func (x *dirIndex) listLocked(pdir string) (map[string]map[string]struct{}, error) {
	x.listed[pdir]++
	d, err := os.Open(pdir)
	if err != nil {
		return nil, fmt.Errorf("cgroup: %w", err)
	}
	entries, err := d.ReadDir(-1)
	_ = d.Close()
	if err != nil {
		return nil, fmt.Errorf("cgroup: %w", err)
	}
	names := map[string]map[string]struct{}{}
	for _, de := range entries {
		if de.IsDir() {
			addName(names, de.Name())
		}
	}
	return names, nil
}

func addName(names map[string]map[string]struct{}, n string) {
	b := baseName(n)
	s := names[b]
	if s == nil {
		s = map[string]struct{}{}
		names[b] = s
	}
	s[n] = struct{}{}
}

func removeName(names map[string]map[string]struct{}, n string) {
	b := baseName(n)
	if s := names[b]; s != nil {
		delete(s, n)
		if len(s) == 0 {
			delete(names, b)
		}
	}
}

// drainLocked reads and applies every queued event.
func (x *dirIndex) drainLocked() error {
	if x.buf == nil {
		x.buf = make([]byte, 64<<10)
	}
	for {
		n, err := unix.Read(x.fd, x.buf)
		if errors.Is(err, unix.EAGAIN) {
			return nil
		}
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return err
		}
		if n <= 0 {
			return fmt.Errorf("inotify read: %d bytes", n)
		}
		x.applyLocked(x.buf[:n])
	}
}

// applyLocked applies a buffer of inotify events.
func (x *dirIndex) applyLocked(b []byte) {
	for len(b) >= unix.SizeofInotifyEvent {
		ev := (*unix.InotifyEvent)(unsafe.Pointer(&b[0]))
		end := unix.SizeofInotifyEvent + int(ev.Len)
		if end > len(b) {
			return
		}
		name := strings.TrimRight(string(b[unix.SizeofInotifyEvent:end]), "\x00")
		b = b[end:]
		if ev.Mask&unix.IN_Q_OVERFLOW != 0 {
			for _, e := range x.byWd {
				e.names = nil
			}
			continue
		}
		e := x.byWd[ev.Wd]
		if e == nil {
			continue
		}
		if ev.Mask&unix.IN_IGNORED != 0 {
			x.forgetLocked(e)
			continue
		}
		if e.names == nil || ev.Mask&unix.IN_ISDIR == 0 || name == "" {
			continue
		}
		switch {
		case ev.Mask&(unix.IN_CREATE|unix.IN_MOVED_TO) != 0:
			addName(e.names, name)
		case ev.Mask&(unix.IN_DELETE|unix.IN_MOVED_FROM) != 0:
			removeName(e.names, name)
		}
	}
}

// listings returns how often pdir was listed.
func (x *dirIndex) listings(pdir string) int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.listed[pdir]
}

func (x *dirIndex) forgetLocked(e *dirEntry) {
	delete(x.byWd, e.wd)
	for p, d := range x.dirs {
		if d == e {
			delete(x.dirs, p)
		}
	}
}

// expire closes the index when it was not used for idleAfter.
func (x *dirIndex) expire() {
	x.mu.Lock()
	defer x.mu.Unlock()
	if time.Since(x.last) >= x.idleAfter {
		x.closeLocked()
	}
}

func (x *dirIndex) closeLocked() {
	if x.fd >= 0 {
		_ = unix.Close(x.fd)
	}
	x.fd = -1
	clear(x.dirs)
	clear(x.byWd)
}
