package peer

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	probing "github.com/prometheus-community/pro-bing"
)

// Pinger sends echo requests to addr every interval until ctx ends,
// calling sent after each request and recv for each reply. Callbacks come
// from one goroutine at a time.
type Pinger interface {
	Run(ctx context.Context, addr netip.Addr, interval time.Duration, sent, recv func()) error
}

// ICMP is the Pinger of a node: github.com/prometheus-community/pro-bing
// in privileged (raw socket) mode, which works as root without
// net.ipv4.ping_group_range. It restarts the pro-bing pinger every
// restartEvery echoes (pro-bing keeps every unanswered sequence number)
// and after an error (a send failing while the neighbour is unreachable),
// one interval later.
type ICMP struct{}

const restartEvery = 20000

// Run implements Pinger.
func (ICMP) Run(ctx context.Context, addr netip.Addr, interval time.Duration, sent, recv func()) error {
	for ctx.Err() == nil {
		p := probing.New(addr.String())
		p.SetPrivileged(true)
		p.SetLogger(probing.NoopLogger{})
		p.Interval = interval
		p.Count = restartEvery
		p.RecordRtts = false
		p.RecordTTLs = false
		p.OnSend = func(*probing.Packet) { sent() }
		p.OnRecv = func(*probing.Packet) { recv() }
		// A request the kernel refused is an unanswered echo too.
		p.OnSendError = func(*probing.Packet, error) { sent() }
		rctx, cancel := context.WithTimeout(ctx, time.Duration(restartEvery+1)*interval)
		err := p.RunWithContext(rctx)
		cancel()
		if err != nil && ctx.Err() == nil {
			sent() // the run failed to start: count its first echo lost
			select {
			case <-ctx.Done():
			case <-time.After(interval):
			}
		}
	}
	return ctx.Err()
}

// CheckICMP reports whether this process may open the raw ICMP socket
// that ICMP needs (root, or CAP_NET_RAW), for IPv4 and, if v6, IPv6. Start
// calls it when Options.Pinger is nil: without it every echo would count
// as lost and the watcher would judge a live holder dead.
func CheckICMP(v6 bool) error {
	nets := []string{"ip4:icmp"}
	if v6 {
		nets = append(nets, "ip6:ipv6-icmp")
	}
	for _, nw := range nets {
		c, err := net.ListenPacket(nw, "")
		if err != nil {
			return fmt.Errorf("peer: pinging needs a raw ICMP socket (run as root or with CAP_NET_RAW): %w", err)
		}
		_ = c.Close()
	}
	return nil
}
