package cgroup

import (
	"fmt"
	"strings"
)

// EscapeName turns an arbitrary string (a node or resource name) into one
// cgroup directory name: ASCII letters, digits, '_' and '-' stay, every
// other byte becomes %XX (its hex value). The result has no '.', so it can
// never collide with a cgroup interface file ("cgroup.procs", "memory.max"),
// and no '/'. The empty string becomes "%". EscapeName is injective, so two
// names never share a directory.
func EscapeName(s string) string {
	if s == "" {
		return "%"
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-':
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}
