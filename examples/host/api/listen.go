package api

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// ListenUnix listens on the unix socket path. Its directory is created with
// mode 0700 if missing; if private is set (the default socket directory)
// an existing directory must belong to this user and is made 0700. A stale
// socket file (nobody answers) is replaced; a live one is an error (another
// host runs). The socket file is made 0600.
func ListenUnix(path string, private bool) (net.Listener, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("api socket directory: %w", err)
	}
	if private {
		fi, err := os.Stat(dir)
		if err != nil {
			return nil, fmt.Errorf("api socket directory: %w", err)
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok || int(st.Uid) != os.Geteuid() {
			return nil, fmt.Errorf("api socket directory %s belongs to another user: refusing to use it", dir)
		}
		if fi.Mode().Perm() != 0o700 {
			if err := os.Chmod(dir, 0o700); err != nil {
				return nil, fmt.Errorf("api socket directory: %w", err)
			}
		}
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != fs.ModeSocket {
			return nil, fmt.Errorf("api socket %s exists and is not a socket", path)
		}
		c, err := net.DialTimeout("unix", path, time.Second)
		if err == nil {
			c.Close()
			return nil, fmt.Errorf("api socket %s is in use: is another host running?", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("removing stale api socket: %w", err)
		}
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("api socket: %w", err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(true)
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("api socket: %w", err)
	}
	return ln, nil
}

// ListenTCP listens on a loopback address; anything else is refused.
func ListenTCP(addr string) (net.Listener, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return nil, fmt.Errorf("api tcp %q: %w", addr, err)
	}
	if !ap.Addr().IsLoopback() {
		return nil, errors.New("api tcp: only a loopback address is allowed")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("api tcp: %w", err)
	}
	return ln, nil
}
