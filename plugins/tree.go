package plugins

import (
	"context"
	"errors"
	"io/fs"
	"time"
)

// tree is the cgroup holding everything an instance runs
// (resource.Contained; *cgroup.Group on Linux). When the plugin process
// hosting the instance dies, the host kills the group (gen.die) and
// Terminate only waits until it is empty: nothing of the instance is left
// then, so no relaunch and reopen is needed for the cleanup.
type tree interface {
	Kill() error
	Populated() (bool, error)
	Dir() string
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
