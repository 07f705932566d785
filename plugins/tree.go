package plugins

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"time"
)

// tree is the cgroup holding everything an instance runs
// (resource.Contained; a cgroup.Group on Linux). When the plugin process
// hosting the instance dies, the host kills the group, waits until it is
// empty and removes it (treeKill); Terminate only waits for that: nothing
// of the instance is left then, so no relaunch and reopen is needed for
// the cleanup. The group is removed because since Linux 6.14 a process
// cloned into a group killed through cgroup.kill is killed at birth: the
// reopened instance creates it anew.
type tree interface {
	Kill() error
	Populated() (bool, error)
	Remove() error
	Dir() string
}

// treeKill is the kill of an instance's tree after its process died.
type treeKill struct {
	g    *gen          // the dead process
	done chan struct{} // closed when err is set
	err  error         // nil: the group was killed, is empty and removed
}

// run kills t, waits (at most timeout) until it is empty and removes it.
func (k *treeKill) run(t tree, timeout time.Duration) {
	defer close(k.done)
	if err := t.Kill(); err != nil {
		k.err = fmt.Errorf("killing cgroup %s: %w", t.Dir(), err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := waitEmpty(ctx, t); err != nil {
		k.err = fmt.Errorf("cgroup %s does not empty: %w", t.Dir(), err)
		return
	}
	if err := t.Remove(); err != nil {
		k.err = fmt.Errorf("removing cgroup %s: %w", t.Dir(), err)
	}
}

// waitEmpty waits until t has no live process, reading cgroup.events with
// a short backoff (1 ms doubling to 20 ms): after a crash a thousand
// instances wait at once, more than inotify instances a user may have
// (128 by default), and their members were killed already, so most are
// empty at the first read. A group that no longer exists is empty.
func waitEmpty(ctx context.Context, t tree) error {
	d := time.Millisecond
	for {
		pop, err := t.Populated()
		if errors.Is(err, fs.ErrNotExist) || (err == nil && !pop) {
			return nil
		}
		if err != nil {
			return err
		}
		tm := time.NewTimer(d)
		select {
		case <-tm.C:
		case <-ctx.Done():
			tm.Stop()
			return context.Cause(ctx)
		}
		d = min(2*d, 20*time.Millisecond)
	}
}
