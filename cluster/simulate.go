package cluster

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sftkit/sft/cluster/state"
	"github.com/sftkit/sft/policy"
	"github.com/sftkit/sft/resource"
)

// StepKind names a scripted step of a simulation.
type StepKind string

// The steps a simulation script may take.
const (
	StepDown        StepKind = "down"        // down NODE: the node is declared dead
	StepUp          StepKind = "up"          // up NODE: the node is up (again)
	StepMaintenance StepKind = "maintenance" // maintenance NODE: drain it
	StepFail        StepKind = "fail"        // fail GROUP [transient|node-local|configuration]: it failed on its owner and stopped
	StepWait        StepKind = "wait"        // wait DURATION: time passes (deferred decisions fall due)
	StepMove        StepKind = "move"        // move GROUP NODE: a person moves it
	StepClear       StepKind = "clear"       // clear GROUP: a person clears its failed state and bans
)

// Step is one scripted event.
type Step struct {
	Kind  StepKind
	Node  string
	Group string
	Class resource.Class // for StepFail
	For   time.Duration  // for StepWait
}

func (s Step) String() string {
	switch s.Kind {
	case StepFail:
		return fmt.Sprintf("fail %s %s", s.Group, s.Class)
	case StepWait:
		return "wait " + s.For.String()
	case StepMove:
		return fmt.Sprintf("move %s %s", s.Group, s.Node)
	case StepClear:
		return "clear " + s.Group
	}
	return fmt.Sprintf("%s %s", s.Kind, s.Node)
}

// ParseStep reads one step: "down a", "up a", "maintenance a",
// "fail g" (transient), "fail g node-local", "wait 10m", "move g b",
// "clear g".
func ParseStep(line string) (Step, error) {
	f := strings.Fields(line)
	if len(f) == 0 {
		return Step{}, resource.ConfigError("step", line, "empty step")
	}
	s := Step{Kind: StepKind(f[0])}
	args := f[1:]
	want := func(n int, usage string) error {
		if len(args) != n {
			return resource.ConfigError("step", line, "want %q", usage)
		}
		return nil
	}
	var err error
	switch s.Kind {
	case StepDown, StepUp, StepMaintenance:
		if err = want(1, string(s.Kind)+" NODE"); err == nil {
			s.Node = args[0]
		}
	case StepFail:
		if len(args) == 1 {
			args = append(args, resource.ClassTransient.String())
		}
		if err = want(2, "fail GROUP [transient|node-local|configuration]"); err == nil {
			s.Group = args[0]
			if s.Class, err = resource.ParseClass(args[1]); err != nil {
				err = resource.ConfigError("step", line, "%v", err)
			}
		}
	case StepWait:
		if err = want(1, "wait DURATION"); err == nil {
			s.For, err = time.ParseDuration(args[0])
			if err != nil || s.For <= 0 {
				err = resource.ConfigError("step", line, "want a positive duration such as 30s or 6h")
			}
		}
	case StepMove:
		if err = want(2, "move GROUP NODE"); err == nil {
			s.Group, s.Node = args[0], args[1]
		}
	case StepClear:
		if err = want(1, "clear GROUP"); err == nil {
			s.Group = args[0]
		}
	default:
		err = resource.ConfigError("step", line, "unknown step (want down, up, maintenance, fail, wait, move or clear)")
	}
	return s, err
}

// ParseScript reads one step per line; blank lines and lines starting
// with # are skipped. Errors name the line number.
func ParseScript(text string) ([]Step, error) {
	var steps []Step
	var errs []error
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		s, err := ParseStep(line)
		if err != nil {
			errs = append(errs, fmt.Errorf("line %d: %w", i+1, err))
			continue
		}
		steps = append(steps, s)
	}
	return steps, errors.Join(errs...)
}

// Outcome is what one step (or a decision that fell due while time
// passed) led to.
type Outcome struct {
	At time.Time
	// Step is the step, or "after 30s: deferred decision" for a decision
	// that fell due inside a wait.
	Step string
	// Note says why a step did nothing (a move to a node that may not
	// host the group).
	Note string
	// Placements are the decisions that changed something, in group
	// order: moves, failovers, and groups newly left offline.
	Placements []policy.Placement
	// Pending are the decisions deferred to later (a failback waiting for
	// a stable period or a window).
	Pending []policy.Placement
}

func (o Outcome) String() string {
	var b strings.Builder
	b.WriteString(o.Step)
	if o.Note != "" {
		b.WriteString(": " + o.Note)
	}
	if len(o.Placements) == 0 && o.Note == "" {
		b.WriteString(": no change")
	}
	for _, p := range o.Placements {
		fmt.Fprintf(&b, "\n  %s: %s", p.Group, p.Decision)
	}
	for _, p := range o.Pending {
		fmt.Fprintf(&b, "\n  %s: deferred %s: %s", p.Group, p.Delay, p.Reason)
	}
	return b.String()
}

// maxDeferred bounds the decisions a single wait may run (each moves time
// forward, so this only guards against a policy that keeps asking again).
const maxDeferred = 1000

// Simulate runs a what-if script (Pacemaker's crm_simulate): from a copy
// of st at now, with the configured groups, it applies each step as the
// cluster would (commands to the state, then a placement pass whose
// decisions become ownership changes) and returns what each step led to,
// and the final state. A first pass places what is not placed yet
// (outcome "start"). During a wait, decisions that asked to be made
// again later (a stable period, a failback window) run when they fall
// due. st is not modified. The error names the step that could not be
// applied (an unknown node or group).
func Simulate(st *state.State, now time.Time, groups []policy.Group, steps []Step) ([]Outcome, *state.State, error) {
	sim := &simulation{st: st.Clone(), now: now, groups: groups}
	var out []Outcome
	// The cluster places what is not placed before anything happens.
	ps, pending, err := sim.place()
	if err != nil {
		return nil, sim.st, fmt.Errorf("start: %w", err)
	}
	if len(ps) > 0 {
		out = append(out, Outcome{At: now, Step: "start", Placements: ps, Pending: pending})
	}
	for i, step := range steps {
		o, deferred, err := sim.step(step)
		if err != nil {
			return out, sim.st, fmt.Errorf("step %d (%s): %w", i+1, step, err)
		}
		out = append(out, deferred...)
		out = append(out, o)
	}
	return out, sim.st, nil
}

type simulation struct {
	st     *state.State
	now    time.Time
	groups []policy.Group
	delay  time.Duration // the soonest deferred decision after the last pass (0: none)
}

func (s *simulation) apply(c state.Command) error {
	return s.st.Apply(state.Entry{At: s.now, Cmd: c})
}

func (s *simulation) step(step Step) (Outcome, []Outcome, error) {
	var deferred []Outcome
	o := Outcome{Step: step.String()}
	var err error
	switch step.Kind {
	case StepDown:
		err = s.apply(state.SetNodeState{Node: step.Node, State: policy.NodeDown, Reason: "simulated"})
	case StepUp:
		err = s.apply(state.SetNodeState{Node: step.Node, State: policy.NodeUp, Reason: "simulated"})
	case StepMaintenance:
		err = s.apply(state.SetNodeState{Node: step.Node, State: policy.NodeMaintenance, Reason: "simulated"})
	case StepFail:
		g := s.st.Groups[step.Group]
		if g == nil || g.Owner == "" {
			o.Note = "not online anywhere: nothing to fail"
			break
		}
		err = s.apply(state.RecordFailure{Group: step.Group, Node: g.Owner, Class: step.Class, Reason: "simulated"})
	case StepClear:
		err = s.apply(state.ClearFailure{Group: step.Group})
	case StepMove:
		o.Note, err = s.move(step)
	case StepWait:
		end := s.now.Add(step.For)
		for range maxDeferred {
			if s.delay <= 0 || s.now.Add(s.delay).After(end) {
				break
			}
			s.now = s.now.Add(s.delay)
			d := Outcome{At: s.now, Step: fmt.Sprintf("after %s: deferred decision", s.delay)}
			if d.Placements, d.Pending, err = s.place(); err != nil {
				return o, deferred, err
			}
			if len(d.Placements) > 0 {
				deferred = append(deferred, d)
			}
		}
		s.now = end
	default:
		err = resource.ConfigError("kind", string(step.Kind), "unknown step")
	}
	if err != nil {
		return o, deferred, err
	}
	o.At = s.now
	o.Placements, o.Pending, err = s.place()
	return o, deferred, err
}

// move drains the group to the node, if the placement would let it run
// there; else it says why not.
func (s *simulation) move(step Step) (string, error) {
	g := s.st.Groups[step.Group]
	i := slices.IndexFunc(s.groups, func(c policy.Group) bool { return c.Name == step.Group })
	if g == nil || i < 0 {
		return "", resource.ConfigError("group", step.Group, "no such group")
	}
	if g.Owner == step.Node {
		return "already there", nil
	}
	p, _ := s.st.Cluster(s.now, s.groups).Place(step.Group)
	j := slices.IndexFunc(p.Nodes, func(r policy.NodeReason) bool { return r.Node == step.Node })
	if j < 0 {
		return "", resource.ConfigError("node", step.Node, "no such node")
	}
	if !p.Nodes[j].Eligible {
		return "refused: " + p.Nodes[j].String(), nil
	}
	from := g.Owner
	if err := s.apply(state.MoveGroup{Group: step.Group, To: step.Node}); err != nil {
		return "", err
	}
	return "moved from " + from, s.apply(state.SetOwner{Group: step.Group, Owner: step.Node, PrevEpoch: g.Epoch,
		Kind: state.KindMove, Reason: "moved by hand"})
}

// place runs one placement pass and applies its decisions, as the leader
// would; it returns the decisions that changed something and the deferred
// ones, and remembers when the soonest falls due.
func (s *simulation) place() (changed, pending []policy.Placement, err error) {
	changes, pending, soonest := plan(s.st, s.now, s.groups)
	s.delay = soonest
	for _, c := range changes {
		if err := s.apply(c.Set); err != nil {
			return changed, pending, err
		}
		changed = append(changed, c.Placement)
	}
	return changed, pending, nil
}

// change is a placement decision as the ownership change that carries it
// out.
type change struct {
	policy.Placement
	Set state.SetOwner
}

// plan runs one placement pass over st at now (groups in priority order)
// and returns the decisions that change an owner, as SetOwner commands
// (compare-and-set on the epoch each group has in st), the deferred
// decisions, and the soonest delay among them (0: none). The leader and
// Simulate share it.
func plan(st *state.State, now time.Time, groups []policy.Group) (changes []change, pending []policy.Placement, soonest time.Duration) {
	c := st.Cluster(now, groups)
	for i, p := range c.PlaceAll() {
		g := c.Groups[i]
		var epoch uint64
		if sg := st.Groups[g.Name]; sg != nil {
			epoch = sg.Epoch
		}
		set := state.SetOwner{Group: g.Name, Owner: p.Node, PrevEpoch: epoch, Reason: p.Reason}
		switch p.Action {
		case policy.ActionNone:
			if p.Delay > 0 {
				pending = append(pending, p)
				if soonest == 0 || p.Delay < soonest {
					soonest = p.Delay
				}
			}
			continue
		case policy.ActionFailover:
			set.Kind = state.KindFailover
		case policy.ActionMove:
			set.Kind = state.KindPlace
			if j := slices.IndexFunc(p.Nodes, func(r policy.NodeReason) bool { return r.Node == g.Owner }); j >= 0 && p.Nodes[j].Eligible {
				set.Kind = state.KindFailback
			}
		case policy.ActionStayFailed:
			if g.Owner == "" {
				continue // already offline
			}
			set.Kind, set.Failed = state.KindOffline, g.Failed || p.Throttled
		}
		changes = append(changes, change{Placement: p, Set: set})
	}
	return changes, pending, soonest
}
