package netns

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"
)

// SolicitedNode returns the solicited-node multicast group of an IPv6
// address (ff02::1:ffXX:XXXX, RFC 4291).
func SolicitedNode(ip netip.Addr) netip.Addr {
	a := ip.As16()
	return netip.AddrFrom16([16]byte{0: 0xff, 1: 0x02, 11: 0x01, 12: 0xff, 13: a[13], 14: a[14], 15: a[15]})
}

// WaitIPv6Group waits until interface ifname, in the namespace at path
// ("" = the caller's), is a member of the IPv6 multicast group, as
// /proc/thread-self/net/igmp6 shows it, or ctx ends.
//
// Linux joins the solicited-node group of a new IPv6 address from its
// address worker, which may run well after the address was added and
// notified (even with IFA_F_NODAD): until then the node drops duplicate
// address probes for the address, so it cannot defend it. Measured here,
// under load, a probe sent right after the address appeared went
// unanswered, and one sent 100 ms later was answered. If the file does not
// exist (IPv6 disabled), WaitIPv6Group returns nil at once.
func WaitIPv6Group(ctx context.Context, path, ifname string, group netip.Addr) error {
	g := group.As16()
	want := hex.EncodeToString(g[:])
	return Do(path, func() error {
		for delay := 50 * time.Microsecond; ; delay = min(2*delay, 10*time.Millisecond) {
			ok, err := inIGMP6(ifname, want)
			if errors.Is(err, os.ErrNotExist) {
				return nil
			}
			if err != nil || ok {
				return err
			}
			t := time.NewTimer(delay)
			select {
			case <-ctx.Done():
				t.Stop()
				return fmt.Errorf("waiting for %s to join %s: %w", ifname, group, ctx.Err())
			case <-t.C:
			}
		}
	})
}

func inIGMP6(ifname, group string) (bool, error) {
	// Not /proc/net: that follows the main thread's namespace, and Do
	// runs this on another thread.
	f, err := os.Open("/proc/thread-self/net/igmp6")
	if err != nil {
		return false, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		fs := strings.Fields(s.Text())
		if len(fs) >= 3 && fs[1] == ifname && fs[2] == group {
			return true, nil
		}
	}
	return false, s.Err()
}
