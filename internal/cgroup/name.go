package cgroup

import "strings"

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
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-':
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&15])
		}
	}
	return b.String()
}

const hexDigits = "0123456789ABCDEF"
