package genericapp

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sftkit/sft/internal/cgroup"
	"github.com/sftkit/sft/internal/proc"
)

// Environment variables the type reads (see the package documentation).
const (
	// NodeEnv names this node in cgroup paths; the host sets it. Unset,
	// the hostname is used.
	NodeEnv = "SFT_NODE"
	// ContainmentEnv forces a containment mode: "auto" (default),
	// "cgroup" or "fallback".
	ContainmentEnv = "SFT_GENERICAPP_CONTAINMENT"
	// InstanceEnv is set in the program's environment in fallback mode to
	// "<node>/<resource>", so that its descendants can be found.
	InstanceEnv = "SFT_GENERICAPP_INSTANCE"
)

// Containment modes.
const (
	ContainAuto     = "auto"
	ContainCgroup   = "cgroup"
	ContainFallback = "fallback"
)

// cgroupParent is the directory below the cgroup v2 root that holds every
// node's groups: <v2 root>/sft/<node>/<resource>.
const cgroupParent = "sft"

// containment holds an instance's process tree together.
type containment interface {
	// prepare adjusts cmd before it is started.
	prepare(cmd *exec.Cmd) (started func(pid int), err error)
	// signal sends sig to the whole tree; pgid is the leader's group,
	// whose leader is not yet reaped.
	signal(pgid int, sig syscall.Signal) error
	// kill sends SIGKILL to the whole tree.
	kill(pgid int) error
	// waitEmpty waits until no live process of the tree is left.
	waitEmpty(ctx context.Context, pgid int) error
	// oomKills counts processes killed by the memory limit so far.
	oomKills() int64
	// describe says what contains the tree, for logs and Containment.
	describe() string
	// close removes what the instance created; the tree must be empty.
	close() error
}

// openContainment sets up the containment of instance res on node.
func openContainment(ctx context.Context, mode, node, res string, lim cgroup.Limits, log *slog.Logger) (containment, error) {
	if mode == "" {
		mode = os.Getenv(ContainmentEnv)
	}
	switch mode {
	case "", ContainAuto, ContainCgroup, ContainFallback:
	default:
		return nil, fmt.Errorf("containment mode %q: want auto, cgroup or fallback", mode)
	}
	if mode != ContainFallback {
		c, err := openCgroup(ctx, node, res, lim, log)
		if err == nil {
			return c, nil
		}
		if mode == ContainCgroup {
			return nil, err
		}
		why := err.Error()
		if mode == ContainFallback {
			why = ContainmentEnv + "=fallback"
		}
		return openFallback(node, res, lim, why, log), nil
	}
	return openFallback(node, res, lim, ContainmentEnv+"="+mode, log), nil
}

// cgroupBox is containment by a cgroup v2 group.
type cgroupBox struct {
	g *cgroup.Group

	mu     sync.Mutex
	limits []cgroup.Applied // as last applied (Open, or a renewal in Online)
}

func openCgroup(ctx context.Context, node, res string, lim cgroup.Limits, log *slog.Logger) (*cgroupBox, error) {
	l, err := cgroup.Discover()
	if err != nil {
		return nil, err
	}
	if l.V2 == "" {
		return nil, cgroup.ErrNoV2
	}
	own, err := cgroup.Self()
	if err != nil {
		return nil, err
	}
	g, reclaimed, err := cgroup.Claim(ctx, l, own, []string{cgroupParent, cgroup.EscapeName(node)}, cgroup.EscapeName(res))
	for _, r := range reclaimed {
		log.Warn("killed the leftover of a previous run (its supervisor died)", "cgroup", r.Dir, "pids", r.Pids)
	}
	if err != nil {
		return nil, err
	}
	b := &cgroupBox{g: g}
	if !lim.IsZero() {
		b.limits = g.SetLimits(lim)
		for _, a := range b.limits {
			if a.Err != nil {
				log.Warn("resource limit not applied", "limit", a.Limit, "value", a.Value, "err", a.Err)
			}
		}
	}
	log.Info("containment", "mode", b.describe())
	return b, nil
}

func (b *cgroupBox) prepare(cmd *exec.Cmd) (func(int), error) {
	applied, err := b.g.Renew()
	if err != nil {
		return nil, err
	}
	if applied != nil {
		b.mu.Lock()
		b.limits = applied
		b.mu.Unlock()
	}
	f, err := b.g.OpenDir()
	if err != nil {
		return nil, err
	}
	cmd.SysProcAttr.UseCgroupFD = true
	cmd.SysProcAttr.CgroupFD = int(f.Fd())
	return func(pid int) {
		_ = f.Close()
		if pid > 0 {
			_ = b.g.SyncV1() // limits bound to v1 hierarchies
		}
	}, nil
}

func (b *cgroupBox) signal(_ int, sig syscall.Signal) error { return b.g.Signal(sig) }
func (b *cgroupBox) kill(int) error                         { return b.g.Kill() }
func (b *cgroupBox) waitEmpty(ctx context.Context, _ int) error {
	return b.g.WaitEmpty(ctx)
}
func (b *cgroupBox) oomKills() int64 { return b.g.OOMKills() }
func (b *cgroupBox) close() error    { return b.g.Remove() }

func (b *cgroupBox) describe() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := "cgroup " + b.g.Dir()
	if len(b.limits) > 0 {
		parts := make([]string, len(b.limits))
		for i, a := range b.limits {
			parts[i] = a.String()
		}
		s += "; limits: " + strings.Join(parts, ", ")
	}
	return s
}

// fallbackBox is the weaker containment without cgroups: the process
// group, the descendants of the leader (walked by parent pid, with this
// process a child subreaper so that orphans stay below it) and every
// process whose environment carries the instance marker.
type fallbackBox struct {
	marker string
	why    string
	lim    cgroup.Limits

	mu sync.Mutex
	// known holds the ids of process groups and sessions that members of
	// the current tree created (setpgid, setsid): their members belong.
	known map[int]bool
}

var subreaper struct {
	once sync.Once
	err  error
}

func openFallback(node, res string, lim cgroup.Limits, why string, log *slog.Logger) *fallbackBox {
	b := &fallbackBox{marker: InstanceEnv + "=" + node + "/" + res, why: why, lim: lim, known: map[int]bool{}}
	subreaper.once.Do(func() { subreaper.err = proc.SetChildSubreaper() })
	log.Warn("containment is weaker: no cgroup; using a subreaper and process groups", "mode", b.describe())
	if !lim.IsZero() {
		log.Warn("resource limits not applied: they need cgroups", "memory", lim.MemoryBytes, "cpu", lim.CPU, "tasks", lim.Tasks)
	}
	// Leftovers of a previous run: processes with our marker that init
	// adopted (their supervisor died).
	var left []int
	if infos, err := proc.Scan(); err == nil {
		for _, in := range infos {
			if in.PPid == 1 && in.State != 'Z' && proc.HasEnv(in.Pid, b.marker) {
				left = append(left, in.Pid)
				_ = syscall.Kill(in.Pid, syscall.SIGKILL)
			}
		}
	}
	if len(left) > 0 {
		log.Warn("killed the leftover of a previous run (its supervisor died)", "pids", left)
	}
	return b
}

func (b *fallbackBox) prepare(cmd *exec.Cmd) (func(int), error) {
	cmd.Env = append(slices.Clip(cmd.Env), b.marker)
	return func(pid int) {
		if pid > 0 {
			b.mu.Lock()
			b.known = map[int]bool{pid: true} // a new tree
			b.mu.Unlock()
		}
	}, nil
}

// members lists the live processes of the tree led by pgid and reaps the
// tree's zombies that this process inherited as subreaper.
func (b *fallbackBox) members(pgid int) []int {
	infos, err := proc.Scan()
	if err != nil {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.known[pgid] = true
	byPid := make(map[int]proc.Info, len(infos))
	for _, in := range infos {
		byPid[in.Pid] = in
	}
	in := func(p proc.Info) bool {
		for range 64 { // walk up the parents
			if p.Pid == pgid || b.known[p.Pgid] || b.known[p.Sid] {
				return true
			}
			q, ok := byPid[p.PPid]
			if !ok || q.Pid <= 1 {
				return false
			}
			p = q
		}
		return false
	}
	self := os.Getpid()
	var out []int
	for _, p := range infos {
		if p.Pid == self || p.Pid == pgid {
			continue
		}
		member := in(p) || (p.State != 'Z' && proc.HasEnv(p.Pid, b.marker))
		if !member {
			continue
		}
		if p.Pgid == p.Pid || p.Sid == p.Pid {
			b.known[p.Pid] = true // it leads a group or session of its own
		}
		if p.State == 'Z' {
			if p.PPid == self {
				proc.ReapZombie(p.Pid) // an orphan we adopted as subreaper
			}
			continue
		}
		out = append(out, p.Pid)
	}
	return out
}

func (b *fallbackBox) signal(pgid int, sig syscall.Signal) error {
	err := proc.SignalGroup(pgid, sig)
	for _, pid := range b.members(pgid) {
		_ = syscall.Kill(pid, sig)
	}
	return err
}

func (b *fallbackBox) kill(pgid int) error { return b.signal(pgid, syscall.SIGKILL) }

// waitEmpty polls /proc: without cgroups there is no event to watch.
func (b *fallbackBox) waitEmpty(ctx context.Context, pgid int) error {
	d := time.Millisecond
	for {
		m := b.members(pgid) // live ones, the (zombie) leader excluded
		if len(m) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("processes %v survived: %w", m, ctx.Err())
		case <-time.After(d):
		}
		d = min(2*d, 20*time.Millisecond)
	}
}

func (b *fallbackBox) oomKills() int64 { return 0 }
func (b *fallbackBox) close() error    { return nil }

func (b *fallbackBox) describe() string {
	s := "fallback (subreaper + process groups; escapes that clear " + InstanceEnv + " are not followed): " + b.why
	if subreaper.err != nil {
		s += "; subreaper: " + subreaper.err.Error()
	}
	if !b.lim.IsZero() {
		s += "; limits not applied (no cgroups)"
	}
	return s
}
