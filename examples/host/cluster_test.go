package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sftkit/sft/examples/host/internal/clusterlab"
	"github.com/sftkit/sft/internal/testenv"
)

// newLab builds a lab of sftd processes in network namespaces, removed
// (processes, namespaces, nft tables, files) when the test ends; on
// failure the nodes' logs are printed first.
func newLab(t *testing.T, opts clusterlab.Options) *clusterlab.Lab {
	t.Helper()
	testenv.RequireRoot(t)
	if _, err := exec.LookPath("nft"); err != nil {
		if os.Getenv("SFT_REQUIRE_ROOT_TESTS") == "1" {
			t.Fatalf("nft is missing (apt-get install -y nftables)")
		}
		t.Skip("nft is missing (apt-get install -y nftables)")
	}
	opts.Binary = buildHost(t)
	opts.App = buildApp(t)
	opts.Log = t.Logf
	lab, err := clusterlab.New(opts)
	require.NoError(t, err)
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range lab.Nodes {
				b, _ := os.ReadFile(n.LogFile)
				t.Logf("---- log of %s:\n%s", n.Name, tail(string(b), 150))
			}
		}
		logs := map[string]string{}
		for _, n := range lab.Nodes {
			b, _ := os.ReadFile(n.LogFile)
			logs[n.Name] = string(b)
		}
		lab.Close()
		require.Empty(t, lab.Leftovers(), "namespaces left behind")
		require.Empty(t, lab.Cgroups(), "cgroups left behind")
		for name, log := range logs {
			// The nodes see the cgroup2 mount (nsenter --net, not ip netns exec).
			require.NotContains(t, log, "containment is weaker", "node %s runs its app uncontained", name)
		}
	})
	for _, n := range lab.Nodes {
		require.NoError(t, lab.Start(n.Name))
	}
	return lab
}

// builtApp is the lab's app, built once per test run next to the host
// binary (removed by TestMain).
var builtApp struct {
	once sync.Once
	bin  string
	err  error
}

func buildApp(t *testing.T) string {
	t.Helper()
	host := buildHost(t)
	builtApp.once.Do(func() { builtApp.bin, builtApp.err = clusterlab.BuildApp(filepath.Dir(host)) })
	require.NoError(t, builtApp.err)
	return builtApp.bin
}

func tail(s string, lines int) string {
	ls := strings.Split(s, "\n")
	if len(ls) > lines {
		ls = ls[len(ls)-lines:]
	}
	return strings.Join(ls, "\n")
}

// waitFor polls cond every 20 ms until it holds or bound passes.
func waitFor(t *testing.T, bound time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", bound, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// answering waits until the client gets answers from one node only (for
// 200 ms running) and returns it.
func answering(t *testing.T, w *clusterlab.Watch, bound time.Duration, not ...string) string {
	t.Helper()
	var who string
	waitFor(t, bound, "a node answers on the virtual IP", func() bool {
		ps := w.Snapshot().Probes
		if len(ps) < 20 {
			return false
		}
		last := ps[len(ps)-20:]
		who = last[0].Node
		for _, p := range last {
			if p.Node != who {
				return false
			}
		}
		return who != "" && !slices.Contains(not, who)
	})
	return who
}

// noSplitBrain asserts that no sample and no ARP exchange after since
// shows two live holders.
func noSplitBrain(t *testing.T, rec clusterlab.Record, since time.Time, except ...string) {
	t.Helper()
	require.Empty(t, rec.Errs)
	require.NotEmpty(t, rec.Samples)
	rec.Samples = slices.DeleteFunc(slices.Clone(rec.Samples), func(s clusterlab.Sample) bool { return s.At.Before(since) })
	sb := rec.SplitBrain(except...)
	require.Empty(t, sb, "samples with two holders of the VIP")
	require.LessOrEqual(t, rec.ARPSwitches(since), 1, "ARP claimants after the fault: %v", rec.ARPClaimants(since))
}

// TestClusterFailover runs one three-node lab (two interconnect paths)
// through the faults in turn: kill the owner, restart it (failback
// prevented: nothing moves back), partition the owner (link down with
// the process alive; then each one-way drop), lose one interconnect path
// (nothing moves), kill the raft leader while it is not the owner
// (nothing moves).
func TestClusterFailover(t *testing.T) {
	// Every fault here is a failover: allow them all.
	lab := newLab(t, clusterlab.Options{Paths: 2, GroupYAML: "    failover: {threshold: 100}\n"})
	w, err := lab.Watch()
	require.NoError(t, err)
	defer w.Stop()
	owner := answering(t, w, 60*time.Second)
	t.Logf("web answers from %s", owner)

	t.Run("no burst of fences at start", func(t *testing.T) {
		// Each node fences a group at most once at start (the nodes that
		// do not own it), plus once per lease it lost.
		for _, n := range lab.Nodes {
			log := logOf(lab, n.Name)
			fences := strings.Count(log, "msg=cluster node="+n.Name+" component=cluster event=fenced")
			lost := strings.Count(log, "msg=cluster node="+n.Name+" component=cluster event=lease-lost")
			require.LessOrEqual(t, fences, 1+lost, "node %s fenced %d times at start (%d leases lost)", n.Name, fences, lost)
		}
	})

	t.Run("one path link down", func(t *testing.T) {
		// The second path's cable pulled (NO-CARRIER on the owner's
		// side): an event, and nothing moves.
		t0 := time.Now()
		require.NoError(t, lab.SetLink(owner, 1, false))
		waitFor(t, 10*time.Second, "a path-down event for "+owner, func() bool {
			for _, n := range lab.Nodes {
				if n.Name != owner && strings.Contains(logOf(lab, n.Name), "event=path-down node="+owner+" ") {
					return true
				}
			}
			return false
		})
		time.Sleep(2 * time.Second)
		rec := w.Snapshot()
		require.Equal(t, owner, lab.Owner(owner, "web"))
		require.Equal(t, []string{owner}, rec.Answerers(t0))
		require.Zero(t, rec.OwnerChanges(t0))
		require.NoError(t, lab.SetLink(owner, 1, true))
	})

	t.Run("one path lost", func(t *testing.T) {
		// Silent loss of the second path (carrier up). With the link
		// down (NO-CARRIER) the detector's sender blocks: see the report.
		t0 := time.Now()
		require.NoError(t, lab.DropPath(owner, 1, 100, true, true))
		time.Sleep(3 * time.Second)
		rec := w.Snapshot()
		require.Equal(t, owner, lab.Owner(owner, "web"))
		require.Equal(t, []string{owner}, rec.Answerers(t0))
		require.Zero(t, rec.OwnerChanges(t0))
		require.NoError(t, lab.DropPath(owner, 1, 0, false, false))
	})

	t.Run("kill owner", func(t *testing.T) {
		t0 := time.Now()
		require.NoError(t, lab.SetLink(owner, -1, false))
		lab.Kill(owner)
		next := answering(t, w, 20*time.Second, owner)
		rec := w.Snapshot()
		t.Logf("%s answers after %s; outage %s", next, time.Since(t0), rec.Outage(t0))
		require.Equal(t, []string{next}, rec.Answerers(rec.FirstHeld(next, t0)))
		noSplitBrain(t, rec, t0, owner) // the dead node's namespace keeps its address, unreachable
		require.Equal(t, []string{next}, rec.ARPClaimants(t0))
		require.NoError(t, lab.Reboot(owner)) // the dead node's stale address is gone first
		t1 := time.Now()
		waitFor(t, 30*time.Second, owner+" is up again", func() bool { return nodeState(lab, next, owner) == "up" })
		noSplitBrain(t, w.Snapshot(), t1)
		// Failback prevented (the default): the group stays.
		time.Sleep(time.Second)
		require.Equal(t, next, lab.Owner(owner, "web"))
		owner = next
	})

	partition := func(name string, cut, heal func(string) error) {
		t.Run(name, func(t *testing.T) {
			t0 := time.Now()
			require.NoError(t, cut(owner))
			next := answering(t, w, 20*time.Second, owner)
			rec := w.Snapshot()
			dropped, taken := rec.LastHeld(owner), rec.FirstHeld(next, t0)
			t.Logf("%s: %s dropped the VIP %s after the cut; %s took it %s after; outage %s", name, owner,
				dropped.Sub(t0), next, taken.Sub(t0), rec.Outage(t0))
			require.True(t, dropped.Before(taken), "the old owner dropped the address before the new owner took it")
			noSplitBrain(t, rec, t0)
			require.NoError(t, heal(owner))
			waitFor(t, 30*time.Second, owner+" is up again", func() bool { return nodeState(lab, next, owner) == "up" })
			require.Equal(t, next, lab.Owner(next, "web"))
			owner = next
		})
	}
	partition("partition link down", func(n string) error { return lab.SetLink(n, -1, false) },
		func(n string) error { return lab.SetLink(n, -1, true) })
	partition("partition both ways nft", func(n string) error { return lab.Drop(n, 100, true, true) },
		func(n string) error { return lab.Drop(n, 0, false, false) })
	partition("partition outbound only", func(n string) error { return lab.Drop(n, 100, true, false) },
		func(n string) error { return lab.Drop(n, 0, false, false) })

	t.Run("partition inbound only", func(t *testing.T) {
		// The owner hears nobody while the others hear it: it loses its
		// lease and fences itself, but nobody declares it dead (package
		// cluster: "What it does not protect against"). No split brain.
		t0 := time.Now()
		require.NoError(t, lab.Drop(owner, 100, false, true))
		waitFor(t, 10*time.Second, owner+" drops the VIP", func() bool { return !slices.Contains(lab.Holders(), owner) })
		time.Sleep(2 * time.Second)
		rec := w.Snapshot()
		noSplitBrain(t, rec, t0)
		t.Logf("inbound cut: %s dropped the VIP %s after; holders now %v", owner, rec.LastHeld(owner).Sub(t0), lab.Holders())
		require.NoError(t, lab.Drop(owner, 0, false, false))
		next := answering(t, w, 30*time.Second)
		waitFor(t, 30*time.Second, "every node up", func() bool {
			return nodeState(lab, next, "a") == "up" && nodeState(lab, next, "b") == "up" && nodeState(lab, next, "c") == "up"
		})
		noSplitBrain(t, w.Snapshot(), t0)
		owner = next
	})

	t.Run("raft leader killed while not the owner", func(t *testing.T) {
		leader := lab.Leader(owner)
		if leader == owner { // make a non-owner the leader's case: move the group away
			var to string
			for _, n := range lab.Nodes {
				if n.Name != owner {
					to = n.Name
					break
				}
			}
			require.NoError(t, lab.Move(owner, "web", to))
			owner = answering(t, w, 20*time.Second, leader)
		}
		require.NotEqual(t, owner, leader)
		t0 := time.Now()
		require.NoError(t, lab.SetLink(leader, -1, false))
		lab.Kill(leader)
		waitFor(t, 20*time.Second, "a new raft leader", func() bool { l := lab.Leader(owner); return l != "" && l != leader })
		time.Sleep(time.Second)
		rec := w.Snapshot()
		require.Equal(t, owner, lab.Owner(owner, "web"))
		require.Equal(t, []string{owner}, rec.Answerers(t0))
		require.Zero(t, rec.OwnerChanges(t0))
		t.Logf("leader %s killed; longest unanswered gap %s", leader, rec.Outage(t0))
	})
}

// nodeState is node's state as via sees it.
func nodeState(lab *clusterlab.Lab, via, node string) string {
	st, err := lab.Status(via)
	if err != nil || st.Cluster == nil {
		return ""
	}
	for _, n := range st.Cluster.Nodes {
		if n.Name == node {
			return n.State.String()
		}
	}
	return ""
}

// appPid asks the app on the VIP (from the client namespace) for its pid
// and its node.
func appPid(lab *clusterlab.Lab) (int, string, error) {
	s, err := lab.Get("/pid")
	if err != nil {
		return 0, "", err
	}
	pid, err := strconv.Atoi(s)
	if err != nil {
		return 0, "", err
	}
	node, err := lab.Get("/node")
	return pid, node, err
}

// groupOf is the cluster's view of group web from node via.
func groupOf(t *testing.T, lab *clusterlab.Lab, via string) (owner, kind, reason string) {
	t.Helper()
	st, err := lab.Status(via)
	require.NoError(t, err)
	require.NotNil(t, st.Cluster)
	for _, g := range st.Cluster.Groups {
		if g.Name == "web" {
			return g.Owner, string(g.Kind), g.Reason
		}
	}
	t.Fatalf("no group web in %s's status", via)
	return
}

// killApp SIGKILLs the app answering on the VIP (a crash the restart
// policy sees) and returns its node and pid.
func killApp(t *testing.T, lab *clusterlab.Lab) (string, int) {
	t.Helper()
	var pid int
	var node string
	waitFor(t, 20*time.Second, "the app answers", func() bool {
		var err error
		pid, node, err = appPid(lab)
		return err == nil
	})
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
	t.Logf("killed the app (pid %d) on %s", pid, node)
	return node, pid
}

// crashUntilMoved kills the app on node until another node's app answers
// (at most 5 kills) or, if offline, until the group has no owner; it
// returns the kills and the node that answers then ("" none).
func crashUntilMoved(t *testing.T, lab *clusterlab.Lab, node string, offline bool) (int, string) {
	t.Helper()
	for kills := 1; kills <= 5; kills++ {
		n, pid := killApp(t, lab)
		require.Equal(t, node, n)
		var got string
		waitFor(t, 20*time.Second, "a new app answers, or the group is left offline", func() bool {
			p, n, err := appPid(lab)
			got = n
			if err != nil && offline {
				o, _, _ := groupOf(t, lab, "w")
				return o == ""
			}
			return err == nil && p != pid
		})
		if got != node {
			return kills, got
		}
	}
	t.Fatalf("the group stayed on %s through 5 crashes", node)
	return 0, ""
}

// TestClusterWitness runs two voters and a witness through: the owner
// killed (the witness keeps the two-node cluster available) and
// immediate failback when it returns. Failback prevented is in
// TestClusterFailover; the failback window is covered with a test clock
// in package policy (TestFailbackDecide, TestFailbackDelayIsNextOpening).
func TestClusterWitness(t *testing.T) {
	lab := newLab(t, clusterlab.Options{Nodes: []string{"a", "b", "w"}, Witness: "w",
		Placement:  ", failback: {mode: immediate}, stable_period: 1s",
		GroupYAML:  "    failover: {threshold: 2, period: 1h}\n",
		AppRestart: "{threshold: 1, delay: 0s}"})
	w, err := lab.Watch()
	require.NoError(t, err)
	defer w.Stop()
	require.Equal(t, "a", answering(t, w, 60*time.Second))

	// The witness keeps a quorum: b takes over.
	t0 := time.Now()
	require.NoError(t, lab.SetLink("a", -1, false))
	lab.Kill("a")
	require.Equal(t, "b", answering(t, w, 20*time.Second, "a"))
	rec := w.Snapshot()
	noSplitBrain(t, rec, t0, "a")
	t.Logf("a killed: b answers; outage %s", rec.Outage(t0))
	owner, kind, _ := groupOf(t, lab, "w")
	require.Equal(t, "b", owner)
	require.Equal(t, "failover", kind)

	// Immediate failback once a is up for the stable period.
	require.NoError(t, lab.Reboot("a")) // the dead node's stale address is gone first
	t1 := time.Now()
	require.Equal(t, "a", answering(t, w, 30*time.Second, "b"))
	owner, kind, _ = groupOf(t, lab, "w")
	require.Equal(t, "a", owner)
	require.Equal(t, "failback", kind)
	noSplitBrain(t, w.Snapshot(), t1)

}

// TestClusterGroupFailure: a group failure past its restart threshold
// moves the group; past its failover threshold the group stays offline
// with the reason.
func TestClusterGroupFailure(t *testing.T) {
	lab := newLab(t, clusterlab.Options{Nodes: []string{"a", "b", "w"}, Witness: "w",
		GroupYAML:  "    failover: {threshold: 1, period: 1h}\n",
		AppRestart: "{threshold: 1, delay: 0s}"})
	w, err := lab.Watch()
	require.NoError(t, err)
	defer w.Stop()
	require.Equal(t, "a", answering(t, w, 60*time.Second))

	// Past the restart threshold (1): the second crash moves the group.
	kills, to := crashUntilMoved(t, lab, "a", false)
	require.Equal(t, "b", to)
	require.GreaterOrEqual(t, kills, 2, "restarted in place first")
	t.Logf("moved to b after %d crashes", kills)
	owner, kind, reason := groupOf(t, lab, "w")
	require.Equal(t, "b", owner)
	require.Equal(t, "failover", kind)
	t.Logf("moved to b: %s", reason)

	// Past the failover threshold (1 within 1h): it stays offline.
	kills, to = crashUntilMoved(t, lab, "b", true)
	require.Empty(t, to)
	require.GreaterOrEqual(t, kills, 2, "restarted in place first")
	waitFor(t, 20*time.Second, "the group is left offline", func() bool { o, _, _ := groupOf(t, lab, "w"); return o == "" })
	_, _, reason = groupOf(t, lab, "w")
	require.Contains(t, reason, "failover threshold reached")
	time.Sleep(500 * time.Millisecond)
	require.Empty(t, lab.Holders())
	_, _, err = appPid(lab)
	require.Error(t, err, "nothing answers on the VIP")
}

// TestClusterRestartAdopts: the owner's sftd is SIGKILLed and started
// again at once, its link up, long before the others' window ends. The
// cluster state still names it the owner, so it adopts what still runs
// (the address it left bound: monitor Probe) instead of fencing it and
// starting over: the address never leaves it, no other node holds it, and
// the app answers from it again.
func TestClusterRestartAdopts(t *testing.T) {
	// A window far longer than a restart, and a lease that outlasts a
	// loaded machine's stalls: L(1+rho) + drop = 3.153 s < W(1-rho) = 3.996 s.
	lab := newLab(t, clusterlab.Options{Timing: "window: 4s, lease: 3s, raft_heartbeat: 1s, raft_election: 1s, raft_leader_lease: 1s"})
	w, err := lab.Watch()
	require.NoError(t, err)
	defer w.Stop()
	owner := answering(t, w, 60*time.Second)
	_, epoch0, _ := groupEpoch(t, lab, owner)
	t0 := time.Now()
	lab.Kill(owner)
	require.NoError(t, lab.Start(owner))
	waitFor(t, 30*time.Second, owner+" adopts web", func() bool {
		b, _ := os.ReadFile(lab.Node(owner).LogFile)
		return strings.Contains(string(b), "event=adopted")
	})
	require.Equal(t, owner, answering(t, w, 30*time.Second))
	rec := w.Snapshot()
	require.Empty(t, rec.Errs)
	for _, s := range rec.Samples {
		if s.At.After(t0) && !slices.Equal(s.Holders, []string{owner}) {
			t.Fatalf("at %s the VIP was held by %v, want %s throughout", s.At.Sub(t0), s.Holders, owner)
		}
	}
	require.Equal(t, []string{owner}, rec.Answerers(t0))
	got, epoch, _ := groupEpoch(t, lab, owner)
	require.Equal(t, owner, got)
	require.Greater(t, epoch, epoch0, "reclaimed with a new epoch")
	t.Logf("%s restarted and adopted web (epoch %d -> %d); longest unanswered gap %s", owner, epoch0, epoch, rec.Outage(t0))
}

// groupEpoch is group web's owner, epoch and reason as via sees them.
func groupEpoch(t *testing.T, lab *clusterlab.Lab, via string) (string, uint64, string) {
	t.Helper()
	var owner, reason string
	var epoch uint64
	waitFor(t, 10*time.Second, "status of "+via, func() bool {
		st, err := lab.Status(via)
		if err != nil || st.Cluster == nil {
			return false
		}
		for _, g := range st.Cluster.Groups {
			if g.Name == "web" {
				owner, epoch, reason = g.Owner, g.Epoch, g.Reason
				return true
			}
		}
		return false
	})
	return owner, epoch, reason
}

// logOf is node name's log so far.
func logOf(lab *clusterlab.Lab, name string) string {
	b, _ := os.ReadFile(lab.Node(name).LogFile)
	return string(b)
}
