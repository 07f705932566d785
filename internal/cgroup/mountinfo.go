package cgroup

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// Layout is where the cgroup hierarchies are mounted, as read from
// /proc/self/mountinfo.
type Layout struct {
	// V2 is the mount point of the cgroup2 hierarchy ("" when there is
	// none): /sys/fs/cgroup on a unified system, /sys/fs/cgroup/unified
	// on a hybrid one.
	V2 string
	// V1 maps a v1 controller ("memory", "pids", "cpu", ...) to the mount
	// point of its hierarchy. Controllers bound to v1 are not available in
	// the v2 hierarchy.
	V1 map[string]string
}

// ParseMountinfo reads a /proc/<pid>/mountinfo file (proc(5)) and returns
// the cgroup mounts in it. The first mount of each hierarchy wins (a later
// bind mount of the same hierarchy elsewhere is ignored).
func ParseMountinfo(r io.Reader) (Layout, error) {
	l := Layout{V1: map[string]string{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		// 36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
		pre, post, ok := strings.Cut(line, " - ")
		if !ok {
			return Layout{}, fmt.Errorf("mountinfo line %d: no separator: %q", n, line)
		}
		f := strings.Fields(pre)
		g := strings.Fields(post)
		if len(f) < 5 || len(g) < 3 {
			return Layout{}, fmt.Errorf("mountinfo line %d: too few fields: %q", n, line)
		}
		mnt := unescapeMount(f[4])
		switch g[0] {
		case "cgroup2":
			if l.V2 == "" {
				l.V2 = mnt
			}
		case "cgroup":
			for _, opt := range strings.Split(g[2], ",") {
				switch opt {
				case "rw", "ro", "":
					continue
				}
				if strings.Contains(opt, "=") {
					continue // name=systemd, release_agent=...
				}
				if _, seen := l.V1[opt]; !seen {
					l.V1[opt] = mnt
				}
			}
		}
	}
	if err := sc.Err(); err != nil {
		return Layout{}, fmt.Errorf("mountinfo: %w", err)
	}
	return l, nil
}

// unescapeMount undoes the octal escapes (\040 for a space, ...) that the
// kernel uses in mountinfo paths.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, ok := octal(s[i+1 : i+4]); ok {
				b.WriteByte(v)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func octal(s string) (byte, bool) {
	if len(s) != 3 {
		return 0, false
	}
	var v int
	for _, c := range s {
		if c < '0' || c > '7' {
			return 0, false
		}
		v = v*8 + int(c-'0')
	}
	if v > 255 {
		return 0, false
	}
	return byte(v), true
}

// ParseOwnCgroups reads a /proc/<pid>/cgroup file and returns the process's
// path in each v1 controller's hierarchy (keyed by controller) and its v2
// path (key "").
func ParseOwnCgroups(r io.Reader) (map[string]string, error) {
	out := map[string]string{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		// hierarchy-ID:controller-list:cgroup-path
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			return nil, fmt.Errorf("cgroup file: bad line %q", sc.Text())
		}
		if parts[1] == "" {
			out[""] = parts[2]
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			out[c] = parts[2]
		}
	}
	return out, sc.Err()
}
