// Command clusterbench measures the example host's cluster failover with
// real sftd processes in network namespaces (internal/clusterlab; root,
// ip and nft needed; it touches no real interface):
//
//   - kill the owner (link down + SIGKILL) R times: the outage the client
//     sees (probing the virtual IP every 10 ms), median, min and max, and
//     each failover's timeline (ms after the link went down): a
//     survivor's detector suspects the owner, a majority agrees, the new
//     owner applies the committed node state and placement, its VIP is
//     up (after the duplicate-address probe), the sampler sees the
//     address, the client sees the gratuitous ARP and gets its first
//     answer (from the nodes' logs and the watch; the medians per step
//     close the series);
//   - random loss on the owner's link (nftables netdev ingress, both
//     ways) at 20 % and 40 % for D: ownership changes, split-brain time
//     (two nodes holding the address, sampled every 2 ms) and client
//     black-hole time (no node holds the address, or the newest ARP claim
//     the client saw names a node that does not hold it); the share of
//     probes answered shows the link's own loss.
//
// Run it from the repository root:
//
//	go run ./examples/host/clusterbench                   # both profiles, R=10, D=60s
//	go run ./examples/host/clusterbench -profile fast -runs 5 -loss-for 20s
//	go run ./examples/host/clusterbench -mode peer         # peer mode (peer.go)
//
// It builds sftd itself and removes every namespace, process, cgroup and
// file it made, also on Ctrl-C. -logs DIR keeps every lab's node logs.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/sftkit/sft/examples/host/internal/clusterlab"
)

func main() {
	profiles := flag.String("profile", "default,fast", "timing `profiles` to measure, comma-separated")
	runs := flag.Int("runs", 10, "kill-the-owner `repetitions` per profile (0: none)")
	lossFor := flag.Duration("loss-for", 60*time.Second, "`duration` of each loss run")
	losses := flag.String("loss", "20,40", "loss `percentages`, comma-separated (empty: none)")
	mode := flag.String("mode", "quorum", "cluster `mode`: quorum (the profiles) or peer (two nodes, peer.go)")
	logsTo := flag.String("logs", "", "copy every lab's node logs into `dir` (default: only a failed run's, to a temp dir)")
	appKind := flag.String("app", "nameapp", "the group's `app`: nameapp (starts in milliseconds) or demo-http (sftd itself: about 100 ms more per failover)")
	flag.Parse()
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "clusterbench: needs root (network namespaces, nftables)")
		os.Exit(1)
	}
	dir, err := os.MkdirTemp("", "clusterbench-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// exit removes every lab and the directory (a deferred RemoveAll
	// would not run: os.Exit skips deferred calls).
	var b *bench
	exit := func(code int) {
		if b != nil {
			b.closeAll()
		}
		os.RemoveAll(dir)
		os.Exit(code)
	}
	bin := filepath.Join(dir, "sftd")
	if out, err := exec.Command("go", "build", "-o", bin, "./examples/host/sftd").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "clusterbench: go build ./examples/host/sftd (run from the repository root): %v\n%s", err, out)
		exit(1)
	}
	b = &bench{bin: bin, labs: map[*clusterlab.Lab]bool{}, logs: *logsTo}
	switch *appKind {
	case "nameapp":
		if b.app, err = clusterlab.BuildApp(dir); err != nil {
			fmt.Fprintln(os.Stderr, "clusterbench:", err)
			exit(1)
		}
	case "demo-http":
	default:
		fmt.Fprintf(os.Stderr, "clusterbench: -app %q: want nameapp or demo-http\n", *appKind)
		exit(2)
	}
	fmt.Printf("app: %s\n", *appKind)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-sigs
		exit(130)
	}()
	if *mode == "peer" {
		exit(b.peer(*runs, *lossFor, *losses))
	}
	code := 0
	for _, p := range strings.Split(*profiles, ",") {
		if err := b.kills(p, *runs); err != nil {
			fmt.Fprintf(os.Stderr, "clusterbench: %s: kill: %v\n", p, err)
			code = 1
		}
		for _, s := range strings.Split(*losses, ",") {
			if s == "" {
				continue
			}
			var pct int
			if _, err := fmt.Sscan(s, &pct); err != nil || pct <= 0 || pct >= 100 {
				fmt.Fprintf(os.Stderr, "clusterbench: -loss %q: want percentages 1-99\n", s)
				exit(2)
			}
			if err := b.loss(p, pct, *lossFor); err != nil {
				fmt.Fprintf(os.Stderr, "clusterbench: %s: loss %d%%: %v\n", p, pct, err)
				code = 1
			}
		}
	}
	exit(code)
}

type bench struct {
	bin  string
	app  string
	labs map[*clusterlab.Lab]bool
	logs string // keep every lab's logs here ("" only failed ones)
	seq  int
}

func (b *bench) lab(profile string) (*clusterlab.Lab, error) {
	return b.startLab(clusterlab.Options{Profile: profile, GroupYAML: "    failover: {threshold: 1000}\n"})
}

// startLab builds a lab with o (the bench's binaries) and starts every node.
func (b *bench) startLab(o clusterlab.Options) (*clusterlab.Lab, error) {
	o.Binary, o.App = b.bin, b.app
	l, err := clusterlab.New(o)
	if err != nil {
		return nil, err
	}
	b.labs[l] = true
	for _, n := range l.Nodes {
		if err := l.Start(n.Name); err != nil {
			return l, err
		}
	}
	return l, nil
}

func (b *bench) done(l *clusterlab.Lab) {
	if b.logs != "" {
		b.seq++
		dir := filepath.Join(b.logs, fmt.Sprintf("lab%d", b.seq))
		if err := os.MkdirAll(dir, 0o700); err == nil {
			for _, n := range l.Nodes {
				if data, err := os.ReadFile(n.LogFile); err == nil {
					_ = os.WriteFile(filepath.Join(dir, n.Name+".log"), data, 0o600)
				}
			}
		}
	}
	l.Close()
	delete(b.labs, l)
}

func (b *bench) closeAll() {
	for l := range b.labs {
		b.done(l)
	}
}

// answering waits (at most bound) until the client has had 20 answers in
// a row from one node other than not, and returns it.
func answering(w *clusterlab.Watch, bound time.Duration, not string) (string, error) {
	deadline := time.Now().Add(bound)
	for time.Now().Before(deadline) {
		ps := w.Snapshot().Probes
		if len(ps) >= 20 {
			last := ps[len(ps)-20:]
			who := last[0].Node
			same := who != "" && who != not
			for _, p := range last {
				same = same && p.Node == who
			}
			if same {
				return who, nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return "", fmt.Errorf("no node answered steadily within %s", bound)
}

func nodeUp(l *clusterlab.Lab, via, node string) bool {
	st, err := l.Status(via)
	if err != nil || st.Cluster == nil {
		return false
	}
	for _, n := range st.Cluster.Nodes {
		if n.Name == node {
			return n.State.String() == "up"
		}
	}
	return false
}

// keepLogs copies the nodes' logs out of a lab that failed (the lab's
// directory goes with it) and says where.
func keepLogs(l *clusterlab.Lab, what string) {
	dir, err := os.MkdirTemp("", "clusterbench-"+what+"-logs-")
	if err != nil {
		return
	}
	for _, n := range l.Nodes {
		if b, err := os.ReadFile(n.LogFile); err == nil {
			_ = os.WriteFile(filepath.Join(dir, n.Name+".log"), b, 0o600)
		}
	}
	fmt.Fprintf(os.Stderr, "clusterbench: %s: the nodes' logs are in %s\n", what, dir)
}

// kills kills the owner runs times, restarting it after each run.
func (b *bench) kills(profile string, runs int) (err error) {
	if runs <= 0 {
		return nil
	}
	l, err := b.lab(profile)
	if err != nil {
		return err
	}
	defer b.done(l)
	defer func() {
		if err != nil {
			keepLogs(l, profile+"-kill")
		}
	}()
	w, err := l.Watch()
	if err != nil {
		return err
	}
	defer w.Stop()
	owner, err := answering(w, time.Minute, "")
	if err != nil {
		return err
	}
	return killRuns(l, w, owner, runs, profile, func(killed, next string) error {
		deadline := time.Now().Add(30 * time.Second)
		for !nodeUp(l, next, killed) {
			if time.Now().After(deadline) {
				return fmt.Errorf("%s not up again within 30s", killed)
			}
			time.Sleep(50 * time.Millisecond)
		}
		return nil
	})
}

// killRuns kills the owner runs times (link down, SIGKILL) and prints the
// outage the client saw; after each run the killed node reboots and back
// waits until it is part of the cluster again. label names the runs.
func killRuns(l *clusterlab.Lab, w *clusterlab.Watch, owner string, runs int, label string, back func(killed, next string) error) error {
	var outages []time.Duration
	var tls []timeline
	split := time.Duration(0)
	for i := range runs {
		t0 := time.Now()
		if err := l.SetLink(owner, -1, false); err != nil {
			return err
		}
		tk := time.Now() // the link is down (the ip command can take 100 ms on a loaded host)
		l.Kill(owner)
		next, err := answering(w, 30*time.Second, owner)
		if err != nil {
			return fmt.Errorf("run %d: %w", i+1, err)
		}
		rec := w.Snapshot()
		out := rec.Outage(t0)
		split += splitSince(rec, t0, owner)
		outages = append(outages, out)
		tl := failoverTimeline(l, rec, tk, owner, next)
		tls = append(tls, tl)
		fmt.Printf("%s kill %2d: %s killed, %s answers; outage %s; %s\n", label, i+1, owner, next, out.Round(time.Millisecond), tl)
		if err := l.Reboot(owner); err != nil {
			return err
		}
		if err := back(owner, next); err != nil {
			return fmt.Errorf("run %d: %w", i+1, err)
		}
		time.Sleep(500 * time.Millisecond)
		owner = next
	}
	slices.Sort(outages)
	fmt.Printf("RESULT %s kill-the-owner x%d: median %s, min %s, max %s; split-brain %s\n", label, runs,
		median(outages).Round(time.Millisecond), outages[0].Round(time.Millisecond), outages[len(outages)-1].Round(time.Millisecond), split)
	fmt.Printf("RESULT %s kill-the-owner timeline, median per step: %s\n", label, medianTimeline(tls))
	return nil
}

func splitSince(rec clusterlab.Record, t0 time.Time, except ...string) time.Duration {
	rec.Samples = slices.DeleteFunc(rec.Samples, func(s clusterlab.Sample) bool { return s.At.Before(t0) })
	return rec.SplitBrainTime(except...)
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	if len(ds)%2 == 1 {
		return ds[len(ds)/2]
	}
	return (ds[len(ds)/2-1] + ds[len(ds)/2]) / 2
}

// loss drops pct % of the owner's frames both ways for d.
func (b *bench) loss(profile string, pct int, d time.Duration) (err error) {
	l, err := b.lab(profile)
	if err != nil {
		return err
	}
	defer b.done(l)
	defer func() {
		if err != nil {
			keepLogs(l, fmt.Sprintf("%s-loss%d", profile, pct))
		}
	}()
	w, err := l.Watch()
	if err != nil {
		return err
	}
	defer w.Stop()
	owner, err := answering(w, time.Minute, "")
	if err != nil {
		return err
	}
	t0, err := dropFor(l, owner, pct, d)
	if err != nil {
		return err
	}
	rec := w.Snapshot()
	rec.Probes = slices.DeleteFunc(rec.Probes, func(p clusterlab.Probe) bool { return p.At.After(t0.Add(d)) })
	rec.Samples = slices.DeleteFunc(rec.Samples, func(s clusterlab.Sample) bool { return s.At.After(t0.Add(d)) })
	changes := holderChanges(rec, t0)
	answered := 0
	total := 0
	for _, p := range rec.Probes {
		if p.At.After(t0) {
			total++
			if p.Node != "" {
				answered++
			}
		}
	}
	fmt.Printf("RESULT %s loss %d%% on %s's link both ways for %s: ownership changes %d, split-brain %s, client black-hole %s (probes answered %d of %d), ARP claimant switches %d\n",
		profile, pct, owner, d, changes, splitSince(rec, t0), rec.BlackHole(t0).Round(time.Millisecond), answered, total, rec.ARPSwitches(t0))
	return nil
}

// dropFor drops pct % of owner's frames both ways for d (after a second
// of calm) and returns when the drop began.
func dropFor(l *clusterlab.Lab, owner string, pct int, d time.Duration) (time.Time, error) {
	time.Sleep(time.Second)
	t0 := time.Now()
	if err := l.Drop(owner, pct, true, true); err != nil {
		return t0, err
	}
	time.Sleep(d)
	return t0, l.Drop(owner, 0, false, false)
}

// holderChanges counts the changes of the VIP's holder set after t0.
func holderChanges(rec clusterlab.Record, t0 time.Time) int {
	n, last := 0, ""
	for _, s := range rec.Samples {
		if s.At.Before(t0) || len(s.Holders) == 0 {
			continue
		}
		cur := strings.Join(s.Holders, ",")
		if last != "" && cur != last {
			n++
		}
		last = cur
	}
	return n
}
