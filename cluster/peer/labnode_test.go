package peer

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/sftkit/sft/monitor"
	"github.com/sftkit/sft/plugins/ipaddress"
	"github.com/sftkit/sft/resource"
)

const nodeEnv = "SFT_PEER_NODE"

// servicePort is the lab's service: a TCP server on every address of the
// node that answers with the node's name.
const servicePort = 8080

// labSpec is a lab node's configuration, passed in the environment.
type labSpec struct {
	Config Config `json:"config"`
}

// runLabNode is a whole node in one process: the real monitor, the real
// ipaddress type in-process, the service, and peer mode. Events go to
// stdout as JSON lines; SIGUSR1 kills the service (the host keeps
// answering pings), SIGUSR2 moves the groups homed here back (Move),
// SIGTERM shuts down cleanly.
func runLabNode(spec string) int {
	var s labSpec
	if err := json.Unmarshal([]byte(spec), &s); err != nil {
		fmt.Fprintln(os.Stderr, "spec:", err)
		return 2
	}
	cfg := s.Config
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx := context.Background()
	m := monitor.New(monitor.Config{Managed: true, Logger: log})
	typ := ipaddress.NewType()
	for _, g := range cfg.Groups {
		r, err := typ.Open(ctx, resource.OpenRequest{Name: g.Name + "-vip", Properties: resource.Properties{
			"address": g.Address.String() + "/24", "probe_count": 2, "probe_interval": "20ms", "probe_wait": "40ms",
		}})
		if err != nil {
			fmt.Fprintln(os.Stderr, "open:", err)
			return 2
		}
		if err := m.AddGroup(monitor.GroupSpec{Name: g.Name, Managed: true, Resources: []monitor.ResourceSpec{{Name: "vip", Type: "ipaddress", Resource: r}}}); err != nil {
			fmt.Fprintln(os.Stderr, "add group:", err)
			return 2
		}
	}
	ln, err := net.Listen("tcp", fmt.Sprintf(":%d", servicePort))
	if err != nil {
		fmt.Fprintln(os.Stderr, "service:", err)
		return 2
	}
	var svc sync.WaitGroup
	svc.Add(1)
	go func() {
		defer svc.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte(cfg.Node + "\n"))
			c.Close()
		}
	}()
	// The signals are caught before the first event can reach the
	// test, which answers events with signals: SIGUSR2 before Notify
	// killed the node (its default action), and the Move never came.
	sig := make(chan os.Signal, 4)
	signal.Notify(sig, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGTERM)
	n, err := Start(cfg, Options{Local: MonitorLocal{M: m}, Logger: log, Events: 1024})
	if err != nil {
		fmt.Fprintln(os.Stderr, "start:", err)
		return 2
	}
	sub := n.Events() // made before the group loops: the first events too
	var out sync.WaitGroup
	out.Add(1)
	go func() {
		defer out.Done()
		enc := json.NewEncoder(os.Stdout)
		for e := range sub.C() {
			_ = enc.Encode(e)
		}
	}()
	for s := range sig {
		if s == syscall.SIGUSR1 {
			ln.Close()
			continue
		}
		if s == syscall.SIGUSR2 {
			// Manual failback: the administrator's Move of every group
			// homed here.
			for _, g := range cfg.Groups {
				if g.Home == cfg.Node {
					if err := n.Move(ctx, g.Name, cfg.Node); err != nil {
						fmt.Fprintln(os.Stderr, "move:", err)
					}
				}
			}
			continue
		}
		break
	}
	_ = n.Close()
	out.Wait()
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_ = m.Close(cctx)
	ln.Close()
	svc.Wait()
	return 0
}
