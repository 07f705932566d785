package cli

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/sftkit/sft/cluster"
	"github.com/sftkit/sft/cluster/state"
	"github.com/sftkit/sft/examples/host/config"
	"github.com/sftkit/sft/policy"
)

// cmdSimulate replays a script of node and group events against the
// placement of a config's cluster (crm_simulate): it needs no running
// node. Every node starts up, every group unplaced; the first pass places
// them ("start").
func cmdSimulate(args []string, env Env) int {
	fs := newFlags("simulate", env)
	file := fs.String("config", "", "config `file` with a cluster section (required)")
	pos, err := fs.parse(args)
	if err != nil {
		return parseExit(err)
	}
	if *file == "" || len(pos) > 1 {
		fmt.Fprintln(env.Stderr, "simulate: want -config FILE and at most one SCRIPT (a file, or - or nothing for standard input)")
		return 2
	}
	var script []byte
	switch {
	case len(pos) == 0 || pos[0] == "-":
		script, err = io.ReadAll(env.Stdin)
	default:
		script, err = os.ReadFile(pos[0])
	}
	if err != nil {
		fmt.Fprintf(env.Stderr, "simulate: %v\n", err)
		return 1
	}
	cfg, name, _, err := loadConfig(*file, env, true, func(c *config.Config) {
		// The simulation is of the whole cluster: any node name will do.
		if c.Cluster != nil && len(c.Cluster.Nodes) > 0 && !slices.ContainsFunc(c.Cluster.Nodes, func(n config.ClusterNode) bool { return n.Name == c.Node.Name }) {
			c.Node.Name = c.Cluster.Nodes[0].Name
		}
	})
	if err != nil {
		fmt.Fprintf(env.Stderr, "%v\n%s: invalid configuration\n", err, name)
		return 1
	}
	if cfg.Cluster == nil {
		fmt.Fprintf(env.Stderr, "simulate: %s has no cluster section: a single node places nothing\n", name)
		return 1
	}
	if cfg.Cluster.IsPeer() {
		return simulatePeer(cfg, string(script), env)
	}
	steps, err := cluster.ParseScript(string(script))
	if err != nil {
		fmt.Fprintf(env.Stderr, "simulate: script: %v\n", err)
		return 1
	}
	now := time.Now()
	out, final, err := cluster.Simulate(InitialState(*cfg, now), now, cfg.PolicyGroups(), steps)
	for _, o := range out {
		fmt.Fprintf(env.Stdout, "+%s %s\n", o.At.Sub(now).Round(time.Second), o)
	}
	if err != nil {
		fmt.Fprintf(env.Stderr, "simulate: %v\n", err)
		return 1
	}
	fmt.Fprintln(env.Stdout, "final:")
	for _, g := range cfg.Groups {
		fg := final.Groups[g.Name]
		switch {
		case fg == nil || fg.Owner == "":
			reason := ""
			if fg != nil && fg.Reason != "" {
				reason = " (" + fg.Reason + ")"
			}
			fmt.Fprintf(env.Stdout, "  %s: offline%s\n", g.Name, reason)
		default:
			fmt.Fprintf(env.Stdout, "  %s: on %s, epoch %d\n", g.Name, fg.Owner, fg.Epoch)
		}
	}
	var states []string
	for _, n := range cfg.Cluster.Nodes {
		if nd := final.Nodes[n.Name]; nd != nil {
			states = append(states, n.Name+" "+nd.State.String())
		}
	}
	fmt.Fprintf(env.Stdout, "  nodes: %s\n", strings.Join(states, ", "))
	return 0
}

// InitialState is the state a simulation starts from: every node of the
// config's cluster up since an hour before now, no group placed.
func InitialState(cfg config.Config, now time.Time) *state.State {
	st := state.New()
	for _, n := range cfg.Cluster.Nodes {
		at := now.Add(-time.Hour)
		_ = st.Apply(state.Entry{At: at, Cmd: state.AddNode{Node: n.Name, Addrs: n.Interconnect, Raft: n.Raft, Witness: n.Role == config.RoleWitness}})
		_ = st.Apply(state.Entry{At: at, Cmd: state.SetNodeState{Node: n.Name, State: policy.NodeUp, Reason: "simulation start"}})
	}
	return st
}
