// Command clusterembed runs a three-node sft cluster from Go code alone:
// three nodes in one process on loopback (127.0.0.1-3), each with its own
// monitor running one group (a resource that prints what it does). It
// waits for the group to come online, kills its owner like a crash, and
// prints where the group went.
package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/sftkit/sft/cluster"
	"github.com/sftkit/sft/monitor"
	"github.com/sftkit/sft/policy"
)

// service is a stand-in resource: it records whether it runs.
type service struct{ node string }

func (s *service) Online(context.Context) error     { fmt.Printf("%s: online\n", s.node); return nil }
func (s *service) Offline(context.Context) error    { fmt.Printf("%s: offline\n", s.node); return nil }
func (s *service) LooksAlive(context.Context) error { return nil }
func (s *service) IsAlive(context.Context) error    { return nil }
func (s *service) Terminate(context.Context) error  { return nil }

func port(network, ip string) (string, error) {
	if network == "tcp" {
		l, err := net.Listen("tcp", ip+":0")
		if err != nil {
			return "", err
		}
		defer l.Close()
		return l.Addr().String(), nil
	}
	c, err := net.ListenPacket("udp", ip+":0")
	if err != nil {
		return "", err
	}
	defer c.Close()
	return c.LocalAddr().String(), nil
}

// run starts the cluster, waits for the group, stops its owner and
// returns the owners before and after.
func run(ctx context.Context) (first, second string, err error) {
	names := []string{"a", "b", "c"}
	var specs []cluster.NodeSpec
	for i, name := range names {
		ip := fmt.Sprintf("127.0.0.%d", i+1)
		r, err := port("tcp", ip)
		if err != nil {
			return "", "", err
		}
		h, err := port("udp", ip)
		if err != nil {
			return "", "", err
		}
		specs = append(specs, cluster.NodeSpec{Name: name, Raft: r, Heartbeat: []string{h}})
	}
	groups := []policy.Group{{Name: "web", Owners: policy.Owners{Preferred: names}}}
	nodes := map[string]*cluster.Node{}
	mons := map[string]*monitor.Monitor{}
	defer func() {
		for name, n := range nodes {
			_ = n.Close(context.Background())
			_ = mons[name].Close(context.Background())
		}
	}()
	for _, name := range names {
		m := monitor.New(monitor.Config{Managed: true})
		if err := m.AddGroup(monitor.GroupSpec{Name: "web", Managed: true, Resources: []monitor.ResourceSpec{
			{Name: "svc", Type: "demo", Resource: &service{node: name}}}}); err != nil {
			return "", "", err
		}
		mons[name] = m
		n, err := cluster.Start(cluster.Config{Name: name, Nodes: specs, Key: []byte("example-shared-key-0123"), Local: m, Groups: groups})
		if err != nil {
			return "", "", err
		}
		nodes[name] = n
	}
	owner := func(via string) string {
		for _, g := range nodes[via].Status().Groups {
			if g.Name == "web" && g.Local.String() == "Online" {
				return via
			}
		}
		return ""
	}
	wait := func(not string) (string, error) {
		for ctx.Err() == nil {
			for name := range nodes {
				if name != not && owner(name) != "" {
					return name, nil
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
		return "", ctx.Err()
	}
	if first, err = wait(""); err != nil {
		return "", "", err
	}
	fmt.Printf("web runs on %s; stopping %s\n", first, first)
	if err := nodes[first].Close(ctx); err != nil {
		return "", "", err
	}
	delete(nodes, first)
	_ = mons[first].Close(ctx)
	if second, err = wait(first); err != nil {
		return first, "", err
	}
	fmt.Printf("web runs on %s\n", second)
	return first, second, nil
}

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, _, err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
