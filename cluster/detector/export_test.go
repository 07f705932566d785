package detector

import (
	"net"
	"net/netip"
)

// SignForTest appends the MAC to body, so fuzzing reaches the parser.
func SignForTest(body, key []byte) []byte {
	return append(append([]byte{}, body...), mac(body, key)...)
}

// SetWriteForTest replaces how u sends a datagram (before Run).
func SetWriteForTest(u *UDP, write func(path int, c *net.UDPConn, b []byte, to netip.AddrPort) error) {
	u.write = write
}
