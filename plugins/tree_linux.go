package plugins

import (
	"path/filepath"
	"strings"
	"sync"

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
	return g
}
