// Package clusterlab builds a throw-away sft cluster of real host
// processes (sftd) in network namespaces, for the example host's cluster
// tests, its benchmark and its demo: a switch namespace with one bridge
// per interconnect path, one namespace per node (eth0 on the first
// bridge, eth1 on the second), a client namespace, a group with a
// virtual IP (ipaddress) and an app that serves its node's name
// (sftd demo-http --name). It drives failures (a node killed, its link
// down, one-way or two-way drops and random loss with nftables netdev
// ingress rules) and watches the result: a client that connects to the
// virtual IP every 10 ms and records who answered, the ARP frames for the
// virtual IP the client sees, and which nodes hold the address, sampled
// every few ms.
// Options.Mode peer (peer.go) writes a two-node peer-mode config instead
// (cluster.mode: peer, the client as the reference).
//
// Nothing is created in the caller's network namespace: links are made
// in the switch namespace with their peers born in the node namespaces.
// Close kills every process the lab started (by process group) and
// deletes every namespace (with them their links, bridges and nft
// tables) and the lab's directory. Needs root, `ip`, `nsenter` and, for
// drops, `nft`. The nodes enter only their network namespace (nsenter
// --net), so they see the host's cgroup2 mount and contain their apps.
package clusterlab

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sftkit/sft/examples/host/api"
	"github.com/sftkit/sft/internal/cgroup"
)

// Options configure a lab.
type Options struct {
	// Binary is the sftd binary. Required.
	Binary string
	// App is the application binary: nameapp (see package
	// internal/clusterlab/nameapp; BuildApp builds it), which starts in
	// milliseconds. Default: sftd demo-http (a large binary: its start-up
	// adds about 100 ms to every failover).
	App string
	// Nodes are the node names (short: at most 8 characters). Default
	// a, b, c.
	Nodes []string
	// Witness names a node of Nodes that is a witness. Default none.
	Witness string
	// Paths is the number of interconnect paths, 1 (default) or 2.
	Paths int
	// Profile is the timing profile (default "default").
	Profile string
	// Timing overrides fields of the profile (YAML flow mapping content,
	// e.g. "window: 4s, lease: 3s").
	Timing string
	// Preferred is the group's preferred owners (default: Nodes minus the
	// witness, in order).
	Preferred []string
	// GroupYAML is added to the group entry (failover and such): YAML
	// lines indented for a group entry, e.g. "    failover: {threshold: 1}\n".
	GroupYAML string
	// Placement is added to the group's placement (flow style), e.g.
	// ", failback: {mode: immediate}, stable_period: 1s".
	Placement string
	// AppRestart is the app's restart policy in YAML flow style.
	// Default "{delay: 0s}".
	AppRestart string
	// Log receives progress lines (nil: none).
	Log func(format string, args ...any)
	// Mode is the cluster mode: "" or quorum, or peer (two nodes, see
	// peer.go).
	Mode string
}

// Addresses of the lab network.
const (
	// VIP is the group's virtual IP; Port the app's port on it.
	VIP  = "10.77.0.50"
	Port = 8080
)

// Node is one node of the lab.
type Node struct {
	Name    string
	NS      string // namespace name
	IP      string // first path
	IP2     string // second path ("" with one path)
	MAC     string // eth0's MAC
	Witness bool
	Socket  string
	LogFile string

	cmd  *exec.Cmd
	done chan struct{}
}

// Lab is a running lab.
type Lab struct {
	Opts   Options
	Prefix string
	Dir    string
	Switch string // switch namespace
	Client string // client namespace
	Nodes  []*Node
	Config string // the shared config file

	mu     sync.Mutex
	closed bool
	nft    map[string]bool // namespaces with our nft table
}

func (l *Lab) logf(format string, args ...any) {
	if l.Opts.Log != nil {
		l.Opts.Log(format, args...)
	}
}

// run runs a command and returns its error with its output.
func run(args ...string) error {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// New builds the lab's network and config (it starts no node: Start).
// On error everything created so far is removed.
func New(opts Options) (l *Lab, err error) {
	if opts.Binary == "" {
		return nil, errors.New("clusterlab: no sftd binary")
	}
	if len(opts.Nodes) == 0 {
		opts.Nodes = []string{"a", "b", "c"}
		if opts.Mode == ModePeer {
			opts.Nodes = opts.Nodes[:2]
		}
	}
	if opts.Paths == 0 {
		opts.Paths = 1
	}
	if opts.Paths > 2 {
		return nil, fmt.Errorf("clusterlab: %d paths (want 1 or 2)", opts.Paths)
	}
	var rnd [3]byte
	_, _ = rand.Read(rnd[:])
	prefix := "sftl-" + hex.EncodeToString(rnd[:])
	dir, err := os.MkdirTemp("", prefix+"-")
	if err != nil {
		return nil, err
	}
	l = &Lab{Opts: opts, Prefix: prefix, Dir: dir, Switch: prefix + "-sw", Client: prefix + "-cl", nft: map[string]bool{}}
	defer func() {
		if err != nil {
			l.Close()
			l = nil
		}
	}()
	if err := l.network(); err != nil {
		return nil, err
	}
	if err := l.writeConfig(); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *Lab) network() error {
	if err := run("ip", "netns", "add", l.Switch); err != nil {
		return err
	}
	for p := range l.Opts.Paths {
		br := fmt.Sprintf("br%d", p)
		if err := run("ip", "-n", l.Switch, "link", "add", br, "type", "bridge"); err != nil {
			return err
		}
		if err := run("ip", "-n", l.Switch, "link", "set", br, "up"); err != nil {
			return err
		}
	}
	for i, name := range l.Opts.Nodes {
		if len(name) > 8 {
			return fmt.Errorf("clusterlab: node name %q too long", name)
		}
		n := &Node{Name: name, NS: l.Prefix + "-" + name, IP: fmt.Sprintf("10.77.0.%d", i+1), Witness: name == l.Opts.Witness,
			Socket: filepath.Join(l.Dir, name+".sock"), LogFile: filepath.Join(l.Dir, name+".log")}
		if l.Opts.Paths == 2 {
			n.IP2 = fmt.Sprintf("10.78.0.%d", i+1)
		}
		if err := l.host(n.NS, "p-"+name, "q-"+name, n.IP, n.IP2); err != nil {
			return err
		}
		var err error
		if n.MAC, err = l.mac(n.NS); err != nil {
			return err
		}
		l.Nodes = append(l.Nodes, n)
	}
	return l.host(l.Client, "p-client", "", "10.77.0.100", "")
}

// host adds a namespace with eth0 on br0 (and eth1 on br1 if ip2 != "").
func (l *Lab) host(ns, port, port2, ip, ip2 string) error {
	if err := run("ip", "netns", "add", ns); err != nil {
		return err
	}
	if err := run("ip", "-n", ns, "link", "set", "lo", "up"); err != nil {
		return err
	}
	links := []struct{ port, dev, br, ip string }{{port, "eth0", "br0", ip}}
	if ip2 != "" {
		links = append(links, struct{ port, dev, br, ip string }{port2, "eth1", "br1", ip2})
	}
	for _, k := range links {
		for _, args := range [][]string{
			{"ip", "-n", l.Switch, "link", "add", k.port, "type", "veth", "peer", "name", k.dev, "netns", ns},
			{"ip", "-n", l.Switch, "link", "set", k.port, "master", k.br, "up"},
			{"ip", "-n", ns, "addr", "add", k.ip + "/24", "dev", k.dev},
			{"ip", "-n", ns, "link", "set", k.dev, "up"},
		} {
			if err := run(args...); err != nil {
				return err
			}
		}
	}
	return nil
}

func (l *Lab) mac(ns string) (string, error) {
	out, err := exec.Command("ip", "-n", ns, "-br", "link", "show", "eth0").Output()
	if err != nil {
		return "", fmt.Errorf("ip -n %s link show eth0: %w", ns, err)
	}
	f := strings.Fields(string(out))
	if len(f) < 3 {
		return "", fmt.Errorf("ip -n %s link show eth0: %q", ns, out)
	}
	return f[2], nil
}

func (l *Lab) writeConfig() error {
	if l.Opts.Mode == ModePeer {
		return l.writePeerConfig()
	}
	key := filepath.Join(l.Dir, "cluster.key")
	if err := os.WriteFile(key, []byte("clusterlab-shared-key-"+l.Prefix+"\n"), 0o600); err != nil {
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "log: {level: info, format: text}\nshutdown_timeout: 10s\ncluster:\n  key_file: %s\n  data_dir: %s/${node}-data\n  profile: %s\n",
		key, l.Dir, orDefault(l.Opts.Profile, "default"))
	if l.Opts.Timing != "" {
		fmt.Fprintf(&b, "  timing: {%s}\n", l.Opts.Timing)
	}
	b.WriteString("  nodes:\n")
	var preferred []string
	for _, n := range l.Nodes {
		role := "voter"
		if n.Witness {
			role = "witness"
		} else {
			preferred = append(preferred, n.Name)
		}
		ic := fmt.Sprintf("%q", n.IP+":7401")
		if n.IP2 != "" {
			ic += fmt.Sprintf(", %q", n.IP2+":7401")
		}
		fmt.Fprintf(&b, "    - {name: %s, role: %s, raft: %q, interconnect: [%s]}\n", n.Name, role, n.IP+":7400", ic)
	}
	if len(l.Opts.Preferred) > 0 {
		preferred = l.Opts.Preferred
	}
	b.WriteString(l.groupsYAML(preferred))
	l.Config = filepath.Join(l.Dir, "cluster.yaml")
	return os.WriteFile(l.Config, []byte(b.String()), 0o600)
}

// groupsYAML is the config's groups section: web, with the VIP and the
// app, preferring preferred.
func (l *Lab) groupsYAML(preferred []string) string {
	return fmt.Sprintf(`groups:
  - name: web
    placement: {preferred: [%s]%s}
%s    resources:
      - name: vip
        type: ipaddress
        properties: {address: %s/24, interface: eth0, probe_count: 1, probe_wait: 30ms}
        restart: {delay: 0s}
      - name: app
        type: genericapp
        depends_on: [vip]
        properties:
          argv: [%s]
          stop_grace: 1s
        restart: %s
`, strings.Join(preferred, ", "), l.Opts.Placement, l.Opts.GroupYAML, VIP, l.appArgv(), orDefault(l.Opts.AppRestart, "{delay: 0s}"))
}

// appArgv is the app's argv in YAML flow style.
func (l *Lab) appArgv() string {
	listen := fmt.Sprintf("%s:%d", VIP, Port)
	if l.Opts.App != "" {
		return fmt.Sprintf("%s, -listen, %q, -name, \"${node}\"", l.Opts.App, listen)
	}
	return fmt.Sprintf("%s, demo-http, --listen, %q, --allow-any-address, --name, \"${node}\"", l.Opts.Binary, listen)
}

// BuildApp builds nameapp into dir and returns its path (run from inside
// the module).
func BuildApp(dir string) (string, error) {
	bin := filepath.Join(dir, "nameapp")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/sftkit/sft/examples/host/internal/clusterlab/nameapp").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build nameapp: %w: %s", err, out)
	}
	return bin, nil
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// Node returns the named node.
func (l *Lab) Node(name string) *Node {
	for _, n := range l.Nodes {
		if n.Name == name {
			return n
		}
	}
	panic("clusterlab: no node " + name)
}

// Start starts node name's sftd in its namespace (one config per node:
// the shared one with ${node} replaced).
func (l *Lab) Start(name string) error {
	n := l.Node(name)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return errors.New("clusterlab: closed")
	}
	if n.cmd != nil {
		return fmt.Errorf("clusterlab: %s already runs", name)
	}
	data, err := os.ReadFile(l.Config)
	if err != nil {
		return err
	}
	cfg := filepath.Join(l.Dir, name+".yaml")
	if err := os.WriteFile(cfg, []byte(strings.ReplaceAll(string(data), "${node}", name)), 0o600); err != nil {
		return err
	}
	logf, err := os.OpenFile(n.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	_ = os.Remove(n.Socket)
	// nsenter enters only the network namespace: `ip netns exec` also
	// remounts /sys, which hides the cgroup2 mount, and the app would run
	// uncontained (genericapp's fallback).
	cmd := exec.Command("nsenter", "--net=/run/netns/"+n.NS, "--", l.Opts.Binary, "run", "-config", cfg, "-node", name,
		"-socket", n.Socket, "-plugins", "inprocess", "-metrics-listen", "off")
	cmd.Stdout, cmd.Stderr = logf, logf
	// Each node's app cgroups under <v2 root>/sft/<lab>-<node>: labs
	// running side by side never share (or reclaim) each other's.
	cmd.Env = append(os.Environ(), "SFT_NODE="+l.cgroupNode(name))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return err
	}
	n.cmd, n.done = cmd, make(chan struct{})
	go func(done chan struct{}) { _ = cmd.Wait(); close(done) }(n.done)
	l.logf("started %s (pid %d)", name, cmd.Process.Pid)
	return nil
}

// Pid is the pid of node name's sftd (0 if it does not run). sftd is
// started through nsenter, which execs it: same process.
func (l *Lab) Pid(name string) int {
	n := l.Node(name)
	l.mu.Lock()
	defer l.mu.Unlock()
	if n.cmd == nil {
		return 0
	}
	return n.cmd.Process.Pid
}

// Running reports whether node name's process runs.
func (l *Lab) Running(name string) bool {
	n := l.Node(name)
	l.mu.Lock()
	defer l.mu.Unlock()
	if n.cmd == nil {
		return false
	}
	select {
	case <-n.done:
		return false
	default:
		return true
	}
}

// Kill SIGKILLs node name's process group (sftd, its app) and waits for
// it to exit.
func (l *Lab) Kill(name string) {
	n := l.Node(name)
	l.mu.Lock()
	cmd, done := n.cmd, n.done
	n.cmd = nil
	l.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
	}
	l.logf("killed %s", name)
}

// Reboot brings a killed node back as a rebooted machine would come: its
// namespace loses the addresses the dead process left bound (the VIP),
// its links come up, and sftd starts again.
func (l *Lab) Reboot(name string) error {
	if l.Running(name) {
		return fmt.Errorf("clusterlab: %s still runs: Kill it first", name)
	}
	n := l.Node(name)
	if l.holds(n) {
		if err := run("ip", "-n", n.NS, "addr", "del", VIP+"/24", "dev", "eth0"); err != nil {
			return err
		}
	}
	if err := l.SetLink(name, -1, true); err != nil {
		return err
	}
	return l.Start(name)
}

// Stop stops node name gracefully (SIGTERM), bounded by 20 s, then kills.
func (l *Lab) Stop(name string) {
	n := l.Node(name)
	l.mu.Lock()
	cmd, done := n.cmd, n.done
	l.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = syscall.Kill(cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(20 * time.Second):
	}
	l.Kill(name)
}

// SetLink sets node name's bridge port(s) up or down: down is a pulled
// cable (the node sees NO-CARRIER). path -1 is every path.
func (l *Lab) SetLink(name string, path int, up bool) error {
	state := "down"
	if up {
		state = "up"
	}
	for p, port := range []string{"p-" + name, "q-" + name} {
		if p >= l.Opts.Paths || (path >= 0 && path != p) {
			continue
		}
		if err := run("ip", "-n", l.Switch, "link", "set", port, state); err != nil {
			return err
		}
	}
	return nil
}

// Drop makes the frames on node name's paths go missing with
// nftables netdev ingress rules: fromNode drops pct % of what the node
// sends (at its bridge port), toNode pct % of what it receives (at its
// eth0). pct 100 is a silent partition with the carrier up; 0 removes
// the rules.
func (l *Lab) Drop(name string, pct int, fromNode, toNode bool) error {
	return l.DropPath(name, -1, pct, fromNode, toNode)
}

// DropPath is Drop on one path (-1: every path).
func (l *Lab) DropPath(name string, path, pct int, fromNode, toNode bool) error {
	n := l.Node(name)
	set := func(ns, dev string, on bool) error {
		table := "sftlab_" + strings.ReplaceAll(dev, "-", "_")
		key := ns + "/" + table
		l.mu.Lock()
		had := l.nft[key]
		l.mu.Unlock()
		if had {
			if err := run("ip", "netns", "exec", ns, "nft", "delete", "table", "netdev", table); err != nil {
				return err
			}
			l.mu.Lock()
			delete(l.nft, key)
			l.mu.Unlock()
		}
		if !on || pct <= 0 {
			return nil
		}
		rule := "drop"
		if pct < 100 {
			rule = fmt.Sprintf("numgen random mod 100 < %d drop", pct)
		}
		script := fmt.Sprintf("table netdev %s {\n chain drop_in {\n  type filter hook ingress device %q priority 0; policy accept;\n  %s\n }\n}\n", table, dev, rule)
		cmd := exec.Command("ip", "netns", "exec", ns, "nft", "-f", "-")
		cmd.Stdin = strings.NewReader(script)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("nft in %s: %w: %s", ns, err, strings.TrimSpace(string(out)))
		}
		l.mu.Lock()
		l.nft[key] = true
		l.mu.Unlock()
		return nil
	}
	for p, port := range []string{"p-" + name, "q-" + name}[:l.Opts.Paths] {
		if path >= 0 && p != path {
			continue
		}
		if err := set(l.Switch, port, fromNode); err != nil {
			return err
		}
		if err := set(n.NS, fmt.Sprintf("eth%d", p), toNode); err != nil {
			return err
		}
	}
	return nil
}

// Status asks node name's API for its status (bounded by 2 s).
func (l *Lab) Status(name string) (api.Status, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c := api.NewUnixClient(l.Node(name).Socket)
	defer c.Close()
	return c.Status(ctx)
}

// Move asks node via to move the group to node to.
func (l *Lab) Move(via, group, to string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := api.NewUnixClient(l.Node(via).Socket)
	defer c.Close()
	_, err := c.Move(ctx, group, to)
	return err
}

// Owner returns the group's owner as node via sees it ("" none or
// unknown).
func (l *Lab) Owner(via, group string) string {
	st, err := l.Status(via)
	if err == nil && st.Peer != nil {
		return peerOwner(st, group)
	}
	if err != nil || st.Cluster == nil {
		return ""
	}
	for _, g := range st.Cluster.Groups {
		if g.Name == group {
			return g.Owner
		}
	}
	return ""
}

// Leader returns the raft leader as node via sees it.
func (l *Lab) Leader(via string) string {
	st, err := l.Status(via)
	if err != nil || st.Cluster == nil {
		return ""
	}
	return st.Cluster.Leader
}

// Holders returns the nodes whose eth0 holds the VIP now.
func (l *Lab) Holders() []string {
	var out []string
	for _, n := range l.Nodes {
		if l.holds(n) {
			out = append(out, n.Name)
		}
	}
	return out
}

func (l *Lab) holds(n *Node) bool {
	out, err := exec.Command("ip", "-n", n.NS, "-br", "-4", "addr", "show", "dev", "eth0").Output()
	return err == nil && strings.Contains(string(out), " "+VIP+"/")
}

// NodeByMAC names the node with eth0 MAC mac ("" none).
func (l *Lab) NodeByMAC(mac string) string {
	for _, n := range l.Nodes {
		if strings.EqualFold(n.MAC, mac) {
			return n.Name
		}
	}
	return ""
}

// Close kills every node, deletes every namespace and the directory. It
// is safe to call more than once.
func (l *Lab) Close() {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.closed = true
	l.mu.Unlock()
	for _, n := range l.Nodes {
		l.Kill(n.Name)
	}
	l.removeCgroups()
	for _, n := range l.Nodes {
		_ = run("ip", "netns", "del", n.NS)
	}
	_ = run("ip", "netns", "del", l.Client)
	_ = run("ip", "netns", "del", l.Switch)
	_ = os.RemoveAll(l.Dir)
}

// Leftovers lists namespaces of this lab that still exist (for tests of
// the teardown).
func (l *Lab) Leftovers() []string {
	out, _ := exec.Command("ip", "netns", "list").Output()
	var left []string
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], l.Prefix) {
			left = append(left, f[0])
		}
	}
	return left
}

// ParseVIP is the VIP as an address.
func ParseVIP() netip.Addr { return netip.MustParseAddr(VIP) }

// cgroupNode is node name's cgroup node name ($SFT_NODE).
func (l *Lab) cgroupNode(name string) string { return l.Prefix + "-" + name }

// removeCgroups kills what is left in the nodes' cgroups (an app outlives
// a SIGKILLed sftd until the next start) and removes them, deepest first.
func (l *Lab) removeCgroups() {
	lay, err := cgroup.Discover()
	if err != nil || lay.V2 == "" {
		return
	}
	for _, n := range l.Nodes {
		root := filepath.Join(lay.V2, "sft", cgroup.EscapeName(l.cgroupNode(n.Name)))
		var dirs []string
		_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		for i := len(dirs) - 1; i >= 0; i-- {
			_ = os.WriteFile(filepath.Join(dirs[i], "cgroup.kill"), []byte("1"), 0)
			for try := 0; try < 200; try++ {
				if err := syscall.Rmdir(dirs[i]); err == nil || errors.Is(err, fs.ErrNotExist) {
					break
				}
				time.Sleep(10 * time.Millisecond) // the killed processes leave the group
			}
		}
	}
}

// Cgroups lists the lab's cgroup directories that still exist (for tests
// of the teardown).
func (l *Lab) Cgroups() []string {
	lay, err := cgroup.Discover()
	if err != nil || lay.V2 == "" {
		return nil
	}
	var out []string
	for _, n := range l.Nodes {
		p := filepath.Join(lay.V2, "sft", cgroup.EscapeName(l.cgroupNode(n.Name)))
		if _, err := os.Stat(p); err == nil {
			out = append(out, p)
		}
	}
	return out
}
