package plugins

import (
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sftkit/sft/internal/cgroup"
)

// v2Layout is the machine's cgroup layout, discovered once.
var v2Layout = sync.OnceValues(cgroup.Discover)

// treeOf returns the cgroup an instance reported as holding everything it
// runs (resource.Contained), or nil when dir is empty or not a group below
// the cgroup v2 root: the host kills what it is told only there.
func treeOf(dir string) tree {
	if dir == "" || !filepath.IsAbs(dir) {
		return nil
	}
	l, err := v2Layout()
	if err != nil || l.V2 == "" {
		return nil
	}
	rel, err := filepath.Rel(l.V2, filepath.Clean(dir))
	if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, "../") {
		return nil
	}
	g, err := cgroup.New(l, nil, strings.Split(rel, "/")...)
	if err != nil {
		return nil
	}
	return cgroupTree{g}
}

type cgroupTree struct{ *cgroup.Group }

// Remove removes the (empty) group's v2 directory, not its parents (other
// instances' groups are being created there) nor its v1 directories (the
// next Open reclaims them). The kernel may count the group busy for a
// moment after its last process exited.
func (t cgroupTree) Remove() error {
	var err error
	for i := range 100 {
		err = syscall.Rmdir(t.Dir())
		if err == nil || errors.Is(err, syscall.ENOENT) {
			return nil
		}
		if !errors.Is(err, syscall.EBUSY) {
			return err
		}
		time.Sleep(time.Duration(i+1) * 100 * time.Microsecond)
	}
	return err
}
