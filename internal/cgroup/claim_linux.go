package cgroup

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
)

// Reclaimed is a group left by an owner that died (its lock was free): what
// ran in it when it was found. Claim killed those processes and waited for
// the group to be empty.
type Reclaimed struct {
	Dir  string
	Pids []int
}

var claimSeq atomic.Uint64

// ErrLeftover marks a Claim that found the group of a dead owner and could
// not empty it: something still runs there.
var ErrLeftover = errors.New("cgroup: leftover of a previous run still running")

// Claim returns the group for one instance, parent/name below the v2 root,
// created if needed and locked (flock on its directory, held until Remove or
// the caller's death) so that a second live owner can tell it is taken.
//
// Every group parent/name or parent/name.<n> whose lock is free belongs to
// an owner that died (SIGKILL, crash): Claim kills what still runs there,
// waits (bounded by ctx) until it is empty and reports it. It then keeps
// parent/name for itself, or, if a live owner holds that one (two hosts with
// the same node name on one machine), uses a new parent/name.<pid>_<n> and
// removes the other reclaimed ones.
//
// Claim does not list parent each time: this process keeps an index of
// its subdirectories, kept exact by inotify (see dirIndex), so a thousand
// Claims under one parent cost one listing, not a thousand.
func Claim(ctx context.Context, l Layout, own map[string]string, parent []string, name string) (*Group, []Reclaimed, error) {
	mine, err := New(l, own, append(slices.Clone(parent), name)...)
	if err != nil {
		return nil, nil, err
	}
	existed, err := mkdirs(l.V2, mine.elems) // existed: left by an owner that may have killed it
	if err != nil {
		return nil, nil, err
	}
	names, err := claimIndex.candidates(filepath.Dir(mine.Dir()), name)
	if err != nil {
		return nil, nil, err
	}
	var reclaimed []Reclaimed
	var claimed *Group
	for _, n := range names {
		g, err := New(l, own, append(slices.Clone(parent), n)...)
		if err != nil {
			continue
		}
		ok, err := g.tryLock()
		if errors.Is(err, fs.ErrNotExist) && n != name {
			continue // removed since (by the Claim of a live owner)
		}
		if err != nil {
			releaseAll(claimed)
			return nil, reclaimed, err
		}
		if !ok {
			continue // a live owner
		}
		if pop, _ := g.Populated(); pop {
			pids, _ := g.Procs()
			if err := g.Kill(); err != nil {
				g.unlock()
				releaseAll(claimed)
				return nil, reclaimed, fmt.Errorf("%w: kill %s: %w", ErrLeftover, g.Dir(), err)
			}
			if err := g.WaitEmpty(ctx); err != nil {
				g.unlock()
				releaseAll(claimed)
				return nil, reclaimed, fmt.Errorf("%w: %w", ErrLeftover, err)
			}
			reclaimed = append(reclaimed, Reclaimed{Dir: g.Dir(), Pids: pids})
		}
		if n == name {
			// A group its dead owner killed once (cgroup.kill) kills
			// what is cloned into it at birth; nothing here can tell,
			// so the first start renews a group that was there.
			g.killed = g.killed || existed
			claimed = g
			continue
		}
		_ = g.Remove() // a leftover sibling, now empty
	}
	if claimed != nil {
		return claimed, reclaimed, nil
	}
	// A live owner has parent/name: take a sibling of our own.
	alt := fmt.Sprintf("%s.%d_%d", name, os.Getpid(), claimSeq.Add(1))
	g, err := New(l, own, append(slices.Clone(parent), alt)...)
	if err != nil {
		return nil, reclaimed, err
	}
	if err := g.Create(); err != nil {
		return nil, reclaimed, err
	}
	if ok, err := g.tryLock(); err != nil || !ok {
		_ = g.Remove()
		return nil, reclaimed, fmt.Errorf("cgroup: lock %s: taken (%v)", g.Dir(), err)
	}
	return g, reclaimed, nil
}

func releaseAll(g *Group) {
	if g != nil {
		g.unlock()
	}
}

// isSibling reports whether n is name.<digits and underscores>.
func isSibling(n, name string) bool {
	rest, ok := strings.CutPrefix(n, name+".")
	if !ok || rest == "" {
		return false
	}
	return strings.Trim(rest, "0123456789_") == ""
}

// tryLock takes the group's lock without blocking; false means a live owner
// holds it.
func (g *Group) tryLock() (bool, error) {
	f, err := os.OpenFile(g.dir, os.O_RDONLY|syscall.O_DIRECTORY, 0) // O_CLOEXEC: children never hold it
	if err != nil {
		return false, fmt.Errorf("cgroup: lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return false, nil
		}
		return false, fmt.Errorf("cgroup: lock %s: %w", g.dir, err)
	}
	g.lock = f // callers: Claim before publishing g, or Renew holding g.mu
	return true, nil
}

func (g *Group) unlock() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.unlockLocked()
}

func (g *Group) unlockLocked() {
	if g.lock != nil {
		_ = g.lock.Close()
		g.lock = nil
	}
}

// Owned reports whether g holds its lock (it came from Claim).
func (g *Group) Owned() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.lock != nil
}
