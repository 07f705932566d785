package genericapp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
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
	// start starts l through sp inside the containment.
	start(sp *proc.Spawner, l *launch) (*proc.Child, error)
	// signal sends sig to the whole tree; leader is the tree's first
	// process, not yet reaped (its pid is also its process group id).
	signal(leader *proc.Child, sig syscall.Signal) error
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
	if mode == ContainFallback {
		return openFallback(node, res, lim, ContainmentEnv+"=fallback or Options.Containment", log), nil
	}
	c, err := openCgroup(ctx, node, res, lim, log)
	if err == nil {
		return c, nil
	}
	if mode == ContainCgroup || errors.Is(err, cgroup.ErrLeftover) {
		// Falling back next to a leftover would run a second copy.
		return nil, err
	}
	return openFallback(node, res, lim, "cgroups unavailable: "+err.Error(), log), nil
}

// cgroupBox is containment by a cgroup v2 group.
type cgroupBox struct {
	g   *cgroup.Group
	log *slog.Logger
	// noClone is set once the kernel refused CLONE_INTO_CGROUP: later
	// starts move the program into the group after it started.
	noClone atomic.Bool
	// empty is set once waitEmpty saw the group empty, cleared by start:
	// nothing joins an empty group but by our own start (or a write to
	// its cgroup.procs, which is ours), so the kill and the waits that
	// follow a graceful stop need not read cgroup.events again (a
	// thousand stops at once, issue 15).
	empty atomic.Bool

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
	b := &cgroupBox{g: g, log: log}
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

func (b *cgroupBox) start(sp *proc.Spawner, l *launch) (*proc.Child, error) {
	b.empty.Store(false)
	applied, err := b.g.Renew()
	if err != nil {
		return nil, containErr{err}
	}
	if applied != nil {
		b.mu.Lock()
		b.limits = applied
		b.mu.Unlock()
	}
	if !b.noClone.Load() {
		f, err := b.g.OpenDir()
		if err != nil {
			return nil, containErr{err}
		}
		l.attr.Sys.UseCgroupFD = true
		l.attr.Sys.CgroupFD = int(f.Fd())
		p, err := sp.StartProcess(l.path, l.argv, &l.attr)
		_ = f.Close()
		l.attr.Sys.UseCgroupFD, l.attr.Sys.CgroupFD = false, 0
		if err == nil {
			_ = b.g.SyncV1() // limits bound to v1 hierarchies
			return p, nil
		}
		if !cloneIntoCgroupUnsupported(err) {
			return nil, err
		}
		b.noClone.Store(true)
		b.log.Warn("the kernel cannot clone into a cgroup (Linux < 5.7): moving the program into it right after start; "+
			"a fork in its first instant would escape", "err", err)
	}
	p, err := sp.StartProcess(l.path, l.argv, &l.attr)
	if err != nil {
		return nil, err
	}
	if err := b.g.Add(p.Pid); err != nil {
		_ = proc.SignalGroup(p.Pid, syscall.SIGKILL)
		_ = p.Reap()
		return nil, containErr{fmt.Errorf("move %d into %s: %w", p.Pid, b.g.Dir(), err)}
	}
	_ = b.g.SyncV1()
	return p, nil
}

// containErr is a failure of the containment itself (not of the program):
// transient, whatever errno it carries.
type containErr struct{ err error }

func (e containErr) Error() string { return "containment: " + e.err.Error() }
func (e containErr) Unwrap() error { return e.err }

// cloneIntoCgroupUnsupported reports whether a start failed because the
// kernel has no clone3 or no CLONE_INTO_CGROUP.
func cloneIntoCgroupUnsupported(err error) bool {
	return errors.Is(err, syscall.ENOSYS) || errors.Is(err, syscall.E2BIG) ||
		errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.EOPNOTSUPP)
}

// signal sends sig to the leader through its pidfd (our unreaped child:
// no pid reuse, and no lookup), then to the group's other members, each
// checked to be in the group (cgroup.Group.Signal).
func (b *cgroupBox) signal(leader *proc.Child, sig syscall.Signal) error {
	var errs []error
	if err := leader.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		errs = append(errs, err)
	}
	errs = append(errs, b.g.Signal(sig, leader.Pid))
	return errors.Join(errs...)
}

func (b *cgroupBox) kill(int) error {
	if b.empty.Load() {
		return nil
	}
	return b.g.Kill()
}

func (b *cgroupBox) waitEmpty(ctx context.Context, _ int) error {
	if b.empty.Load() {
		return nil
	}
	if err := b.g.WaitEmpty(ctx); err != nil {
		return err
	}
	b.empty.Store(true)
	return nil
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
	left := b.orphans()
	for _, pid := range left {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	if len(left) > 0 {
		log.Warn("killed the leftover of a previous run (its supervisor died)", "pids", left)
		// Wait (bounded, polling: no event without cgroups) until they
		// are dead, so the new run finds their ports free.
		deadline := time.Now().Add(groupGoneTimeout)
		for slices.ContainsFunc(left, proc.Alive) && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
	}
	return b
}

// orphans lists the leftovers of a previous run: live processes with our
// marker whose topmost marked ancestor was adopted by init (pid 1) or by
// this process (a subreaper), or whose parent is a zombie (a leader that
// died), that is whose supervisor died. A live owner's tree hangs below
// its own plugin process, which has no marker, and is left alone.
func (b *fallbackBox) orphans() []int {
	self := os.Getpid()
	infos, err := proc.Scan()
	if err != nil {
		return nil
	}
	byPid := make(map[int]proc.Info, len(infos))
	for _, in := range infos {
		byPid[in.Pid] = in
	}
	marked := map[int]bool{}
	isMarked := func(pid int) bool {
		m, ok := marked[pid]
		if !ok {
			m = proc.HasEnv(pid, b.marker)
			marked[pid] = m
		}
		return m
	}
	var out []int
	for _, in := range infos {
		if in.State == 'Z' || !isMarked(in.Pid) {
			continue
		}
		top := in
		for range 64 {
			up, ok := byPid[top.PPid]
			if !ok || up.Pid <= 1 || !isMarked(up.Pid) {
				break
			}
			top = up
		}
		// A parent that is a zombie is a dead leader whose other threads
		// are still exiting: its children are not reparented yet.
		if up, ok := byPid[top.PPid]; top.PPid == 1 || top.PPid == self || (ok && up.State == 'Z') {
			out = append(out, in.Pid)
		}
	}
	return out
}

func (b *fallbackBox) start(sp *proc.Spawner, l *launch) (*proc.Child, error) {
	// Our marker replaces an inherited one (a host that runs as a
	// genericapp itself): getenv would find the first.
	env := make([]string, 0, len(l.attr.Env)+1)
	for _, kv := range l.attr.Env {
		if !strings.HasPrefix(kv, InstanceEnv+"=") {
			env = append(env, kv)
		}
	}
	l.attr.Env = append(env, b.marker)
	p, err := sp.StartProcess(l.path, l.argv, &l.attr)
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	b.known = map[int]bool{p.Pid: true} // a new tree
	b.mu.Unlock()
	return p, nil
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

func (b *fallbackBox) signal(leader *proc.Child, sig syscall.Signal) error {
	return b.signalGroup(leader.Pid, sig)
}

func (b *fallbackBox) signalGroup(pgid int, sig syscall.Signal) error {
	err := proc.SignalGroup(pgid, sig)
	for _, pid := range b.members(pgid) {
		_ = syscall.Kill(pid, sig)
	}
	return err
}

func (b *fallbackBox) kill(pgid int) error { return b.signalGroup(pgid, syscall.SIGKILL) }

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
