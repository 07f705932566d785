// Command scalebench measures sft with thousands of real applications on one
// node (issue 15): genericapp resources running a small static C program,
// driven by the real monitor, hosted by one real plugin process. Every
// figure counts the host and the plugin process together (CPU: getrusage
// for this process, /proc/PID/stat for the plugin, 10 ms ticks; memory:
// VmRSS, and PSS, which counts the pages the two share, the same
// executable, once).
//
//	go run ./plugins/internal/scale/scalebench [-phases idle,online,noop,stop,crash,restart] [-n 1000,5000] [-pprof DIR]
//
// Phases:
//   - idle: N apps in -groups groups (LooksAlive 1 s, IsAlive 10 s),
//     brought online ten groups at a time, then idle CPU % of one core over
//     -window, RSS and PSS.
//   - online: CPU (host + plugin) to bring N apps online, in one group and
//     in -groups groups, total and per app, split into the fork and exec
//     system calls on the spawner threads (proc.SpawnStats, measured with
//     RUSAGE_THREAD in the process that starts the apps) and sft's own;
//     beside it a baseline measured just before (the CPU this process
//     spends starting the same N programs with a bare exec.Cmd, what any
//     supervisor pays the kernel) and the apps' own CPU (the child side
//     of the fork and the exec run in the app's cgroup: cpu.stat of
//     <v2>/sft/<node>, not counted as sft's).
//   - noop: CPU (host + plugin) to bring -apps resources of a type that
//     does nothing online, in one group and in -groups groups, in this
//     process (the monitor's own cost) and through the plugin (plus the
//     plugin protocol's): what sft itself costs per resource, apart from
//     the kernel's process start that the online phase includes. First it
//     prints what the first touch of a fresh 4 KB page costs here (the
//     floor of a thousand calls in flight, each on a stack of its own),
//     and each line the minor page faults of both processes over it (on
//     this VM the cost of a fault varies from under 1 to 17 us with the
//     state of the guest's memory: compare runs by faults and CPU both).
//   - stop: graceful shutdown (Offline of every group at once) of N apps
//     that exit at SIGTERM: wall time, when the last app handled its
//     SIGTERM, the CPU (total and per app), the apps' own CPU (their
//     exit), and how many were SIGKILLed after the stop grace (1 s).
//   - crash: kill -9 of the plugin process with N apps online: time until
//     every group is online again (the level-triggered Watch), beyond the
//     restart delay, the CPU of the host and of the relaunched plugin over
//     it, and events lost by a 4,096-event subscriber.
//   - restart: crash-to-restart of one app (kill -9 of the app to its
//     resource online again, restart delay 0), paired with a bare exec.Cmd
//     Start/kill/Wait/Start loop, interleaved, -samples samples each, in
//     process and through the plugin, and beside them the monitor driving
//     the smallest exec.Cmd resource (bareapp.go: the monitor's own
//     share); ratios of the p50 and the mean, and the p50 of each stage
//     (kill to Failed, the Terminate before the restart, the Online) from
//     the events' times, against the baseline's kill-to-reaped and Start.
//     The variants follow the baseline in turn, each first as often, and
//     each sample starts once the program the previous one started has
//     settled (blocks in pause): its exec's own CPU would otherwise be
//     shared by whatever sample came next.
//
// -pprof DIR writes CPU and heap profiles of the host and of the plugin
// over the idle window, the online and the stop phases into DIR (the
// plugin serves them on a loopback port only then), and prints where each
// process's memory is after the idle window; in the crash phase, from the
// kill to all online, the relaunched plugin's from its start.
//
// Every line gives the 1-minute load average: wall times depend on it.
// Run it at least twice on a loaded machine and report the spread.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"github.com/sftkit/sft/internal/proc"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sftkit/sft/internal/cgroup"
	"github.com/sftkit/sft/monitor"
	"github.com/sftkit/sft/plugins"
	"github.com/sftkit/sft/plugins/genericapp"
	"github.com/sftkit/sft/policy"
	"github.com/sftkit/sft/resource"
)

// appSource is the application: it records SIGTERM in the marker file and
// exits, else blocks.
const appSource = `#include <signal.h>
#include <unistd.h>
#include <fcntl.h>
static int fd;
static void term(int s) { (void)s; write(fd, "t", 1); _exit(0); }
int main(int argc, char **argv) {
	fd = open(argc > 1 ? argv[1] : "/dev/null", O_WRONLY | O_APPEND | O_CREAT, 0644);
	signal(SIGTERM, term);
	for (;;) pause();
}
`

func main() {
	if plugins.IsPlugin() {
		servePprof()
	}
	plugins.Main(genericapp.New(), noopType{})
	phases := flag.String("phases", "idle,online,noop,stop,crash,restart", "phases to run")
	ns := flag.String("n", "1000,5000", "numbers of applications for the idle phase")
	groups := flag.Int("groups", 100, "groups")
	window := flag.Duration("window", 30*time.Second, "idle measurement window")
	samples := flag.Int("samples", 500, "crash-to-restart samples per variant")
	flag.IntVar(&apps, "apps", 1000, "applications in the online, stop and crash phases")
	flag.BoolVar(&inprocAll, "inprocess", false, "host the apps in this process (no plugin) in every phase but restart")
	profile := flag.String("cpuprofile", "", "write this process's CPU profile here")
	flag.StringVar(&pprofDir, "pprof", "", "idle phase: write CPU and heap profiles of the host and the plugin over the window into this directory")
	flag.StringVar(&output, "output", "log", `the apps' stdout and stderr in every phase but restart: "log" (genericapp's default: a watched pipe each) or "discard"; restart always discards, as its exec.Cmd baseline does`)
	flag.Parse()
	if output != "log" && output != "discard" {
		fmt.Fprintf(os.Stderr, "scalebench: -output %q: want log or discard\n", output)
		os.Exit(2)
	}
	if *profile != "" {
		f, err := os.Create(*profile)
		if err == nil {
			_ = pprof.StartCPUProfile(f)
			defer pprof.StopCPUProfile()
		}
	}
	ctlDir, tmpCtl := pprofDir, "" // where the plugin's control server writes its address
	if pprofDir != "" {
		if err := os.MkdirAll(pprofDir, 0o755); err != nil {
			fmt.Fprintln(os.Stderr, "scalebench: -pprof:", err)
			os.Exit(2)
		}
	} else {
		d, err := os.MkdirTemp("", "scalebench-ctl")
		if err != nil {
			fmt.Fprintln(os.Stderr, "scalebench:", err)
			os.Exit(2)
		}
		defer os.RemoveAll(d)
		ctlDir = d
		tmpCtl = d
	}
	os.Setenv(pprofEnv, ctlDir)
	if err := run(strings.Split(*phases, ","), *ns, *groups, *window, *samples); err != nil {
		fmt.Fprintln(os.Stderr, "scalebench:", err)
		pprof.StopCPUProfile()
		if tmpCtl != "" {
			os.RemoveAll(tmpCtl)
		}
		os.Exit(1)
	}
}

// bringUpTimeout bounds each group's Online in the idle phase: a group
// that neither comes online nor fails is reported with the monitor's
// status instead of hanging the bench.
var bringUpTimeout = 2 * time.Minute

var (
	inprocAll bool
	apps      int
	pprofDir  string
	output    string // the apps' stdout and stderr (-output)
)

type bench struct {
	dir    string
	app    string
	marker string
	kills  atomic.Int64 // "stop grace period over" logs
}

func run(phases []string, ns string, groups int, window time.Duration, samples int) error {
	dir, err := os.MkdirTemp("", "scalebench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	b := &bench{dir: dir, app: filepath.Join(dir, "app"), marker: filepath.Join(dir, "terms")}
	if err := os.WriteFile(b.app+".c", []byte(appSource), 0o644); err != nil {
		return err
	}
	if out, err := exec.Command("cc", "-static", "-Os", "-o", b.app, b.app+".c").CombinedOutput(); err != nil {
		return fmt.Errorf("building the application (a static C program: scalebench needs cc and a static libc, on Debian `apt-get install gcc libc6-dev`): %v: %s", err, out)
	}
	fmt.Printf("scalebench: %s, GOMAXPROCS default, app %s (static C, blocks in pause), outputs %q (restart: discard)\n", time.Now().Format(time.RFC3339), b.app, output)
	for _, p := range phases {
		switch p {
		case "idle":
			for _, s := range strings.Split(ns, ",") {
				n, err := strconv.Atoi(s)
				if err != nil {
					return fmt.Errorf("-n: %q: %v", s, err)
				}
				if err := b.idle(n, groups, window); err != nil {
					return err
				}
			}
		case "online":
			for _, g := range []int{1, groups} {
				if err := b.online(apps, g); err != nil {
					return err
				}
			}
		case "noop":
			if err := printPageCost(); err != nil {
				return err
			}
			for _, inproc := range []bool{true, false} {
				for _, g := range []int{1, groups} {
					if err := b.onlineNoop(apps, g, inproc); err != nil {
						return err
					}
				}
			}
		case "stop":
			if err := b.stop(apps, groups); err != nil {
				return err
			}
		case "crash":
			if err := b.crash(apps, groups); err != nil {
				return err
			}
		case "restart":
			if err := b.restart(samples); err != nil {
				return err
			}
		default:
			return fmt.Errorf("-phases: unknown phase %q", p)
		}
	}
	return nil
}

// logCounter counts the plugin's "stop grace period over" warnings.
type logCounter struct{ b *bench }

func (h logCounter) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (h logCounter) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, "stop grace period over") {
		h.b.kills.Add(1)
	}
	return nil
}
func (h logCounter) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h logCounter) WithGroup(string) slog.Handler      { return h }

// env is one monitor with n apps in g groups, hosted by a plugin process
// (or in process when inproc).
type env struct {
	b    *bench
	m    *monitor.Monitor
	pool *plugins.Pool
	g    int
}

func (b *bench) setup(n, g int, inproc bool, delay time.Duration) (*env, error) {
	e := &env{b: b, g: g}
	inproc = inproc || inprocAll
	var typ resource.Type = genericapp.New()
	if !inproc {
		pool, err := plugins.Launch(context.Background(), plugins.Config{Logger: slog.New(logCounter{b}), DisableAutoMTLS: false})
		if err != nil {
			return nil, err
		}
		e.pool = pool
		typ, _ = pool.Type(genericapp.TypeName)
	}
	e.m = monitor.New(monitor.Config{})
	// stdout and stderr: by default "log", what a user gets (the app
	// writes nothing; each output is a pipe being watched); the restart
	// phase (delay -1) discards them like its exec.Cmd baseline.
	out := output
	if delay < 0 {
		out = "discard"
	}
	props := resource.Properties{
		"argv": []any{b.app, b.marker}, "stdout": out, "stderr": out,
		"stop_grace": "1s", "stabilize": "0s",
	}
	timing := resource.Timing{LooksAliveInterval: time.Second, IsAliveInterval: 10 * time.Second}
	per := n / g
	for gi := range g {
		spec := monitor.GroupSpec{Name: "g" + strconv.Itoa(gi)}
		for i := range per {
			name := fmt.Sprintf("g%d/r%d", gi, i)
			r, err := typ.Open(context.Background(), resource.OpenRequest{Name: name, Properties: props})
			if err != nil {
				e.close()
				return nil, fmt.Errorf("open %s: %w", name, err)
			}
			spec.Resources = append(spec.Resources, monitor.ResourceSpec{
				Name: "r" + strconv.Itoa(i), Type: genericapp.TypeName, Resource: r,
				Timing: timing, Restart: policy.Restart{Delay: delay, Threshold: 1 << 20},
			})
		}
		if err := e.m.AddGroup(spec); err != nil {
			e.close()
			return nil, err
		}
	}
	return e, nil
}

func (e *env) close() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_ = e.m.Close(ctx)
	if e.pool != nil {
		_ = e.pool.Close()
	}
}

// all runs fn for every group at once and returns the first error.
func (e *env) all(fn func(name string) error) error {
	var wg sync.WaitGroup
	errs := make([]error, e.g)
	for gi := range e.g {
		wg.Go(func() { errs[gi] = fn("g" + strconv.Itoa(gi)) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (e *env) pluginPid() int {
	if e.pool == nil {
		return 0
	}
	return e.pool.Pid()
}

func (e *env) pids() []int {
	p := []int{os.Getpid()}
	if e.pool != nil {
		p = append(p, e.pool.Pid())
	}
	return p
}

// cpu returns the CPU time (user + system) of pids: this process's from
// getrusage (exact), another's from /proc/PID/stat (in clock ticks, 10 ms).
// Both include threads that have exited.
func cpu(pids []int) time.Duration {
	var sum time.Duration
	for _, pid := range pids {
		if pid == os.Getpid() {
			var ru syscall.Rusage
			_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
			sum += time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
			continue
		}
		f := statFields(pid)
		sum += time.Duration(f[11]+f[12]) * 10 * time.Millisecond // utime + stime, USER_HZ 100
	}
	return sum
}

// faults returns the minor page faults of pids so far (/proc/PID/stat):
// first touches of memory the process had not used (or had returned).
func faults(pids []int) int64 {
	var sum int64
	for _, pid := range pids {
		sum += statFields(pid)[7] // minflt
	}
	return sum
}

// statFields returns the numeric fields of /proc/PID/stat after the
// state (index 0 is the state's slot, left 0): index 7 is minflt, 11 and
// 12 utime and stime. All zero when the process is gone.
func statFields(pid int) [13]int64 {
	var v [13]int64
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return v
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	for i := 1; i < len(v) && i < len(f); i++ {
		v[i], _ = strconv.ParseInt(f[i], 10, 64)
	}
	return v
}

func rssMB(pids []int) float64 { return memMB(pids, "/status", "VmRSS:") }

// pssMB is the proportional set size: pages shared between the processes
// (host and plugin are the same executable) counted once, split between
// them.
func pssMB(pids []int) float64 { return memMB(pids, "/smaps_rollup", "Pss:") }

func memMB(pids []int, file, key string) float64 {
	var sum float64
	for _, pid := range pids {
		b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + file)
		for line := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, key); ok {
				kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
				sum += kb / 1024
			}
		}
	}
	return sum
}

func (b *bench) idle(n, g int, window time.Duration) error {
	e, err := b.setup(n, g, false, 0)
	if err != nil {
		return err
	}
	defer e.close()
	// Ten groups at a time: the steady state is measured here, not the
	// mass Online (phase online), and 5,000 Onlines at once on a loaded
	// 2-vCPU machine keep the plugin from answering its heartbeat.
	sem := make(chan struct{}, 10)
	if err := e.all(func(name string) error {
		sem <- struct{}{}
		defer func() { <-sem }()
		ctx, cancel := context.WithTimeout(context.Background(), bringUpTimeout)
		defer cancel()
		return e.m.Online(ctx, name)
	}); err != nil {
		return fmt.Errorf("bringing %d apps online: %w; %s", n, err, summary(e.m.Status()))
	}
	time.Sleep(5 * time.Second) // first polls, GC
	p := e.pids()
	prof, err := startProfiles(fmt.Sprintf("idle-%d", n), e.pluginPid())
	if err != nil {
		return err
	}
	c0, t0 := cpu(p), time.Now()
	time.Sleep(window)
	c1, wall := cpu(p), time.Since(t0)
	if err := prof.stop(); err != nil {
		return err
	}
	fmt.Printf("idle: %d apps in %d groups, LooksAlive 1s IsAlive 10s, window %s: CPU host+plugin %.2f%% of one core (mean over the window), RSS host+plugin %.1f MB, PSS %.1f MB (at the end)\n",
		n, g, wall.Round(time.Second), float64(c1-c0)/float64(wall)*100, rssMB(p), pssMB(p))
	if pprofDir != "" {
		fmt.Printf("idle: host: RSS %.1f MB, %s\nidle: plugin: RSS %.1f MB, %s\n", rssMB(p[:1]), memSummary(), rssMB(p[1:]), pluginMem(e.pluginPid()))
	}
	return nil
}

func (b *bench) online(n, g int) error {
	n = n / g * g // setup opens n/g per group: count what runs
	base, err := b.bareStarts(n)
	if err != nil {
		return err
	}
	e, err := b.setup(n, g, false, 0)
	if err != nil {
		return err
	}
	defer e.close()
	p := e.pids()
	prof, err := startProfiles(fmt.Sprintf("online-%d-%d", n, g), e.pluginPid())
	if err != nil {
		return err
	}
	starter := e.pluginPid() // the process that starts the apps
	if starter == 0 {
		starter = os.Getpid()
	}
	s0, f0 := spawnStats(starter)
	c0, a0, t0 := cpu(p), appsCPU(), time.Now()
	if err := e.all(func(name string) error { return e.m.Online(context.Background(), name) }); err != nil {
		return err
	}
	c1, a1, wall := cpu(p), appsCPU(), time.Since(t0)
	s1, f1 := spawnStats(starter)
	if err := prof.stop(); err != nil {
		return err
	}
	used, fork := c1-c0, f1-f0
	if s1-s0 != int64(n) { // restarts: say why
		fmt.Printf("online: %d starts for %d apps: %s\n", s1-s0, n, summary(e.m.Status()))
	}
	fmt.Printf("online: %d apps in %d group(s), wall %.0f ms, load %s: CPU host+plugin %.0f ms (%.0f us per app), of which the fork and exec system calls on the spawner threads (%d starts) %.0f ms (%.0f us per app), sft's own %.0f ms (%.0f us per app); bare exec.Cmd starts of the same %d programs just before: %.0f ms CPU (%.0f us per app), sft beyond them %.0f us per app; the apps' own CPU (the child side of the fork, exec, start: their cgroups, not counted above): %s\n",
		n, g, ms(wall), loadavg(), ms(used), us(used)/float64(n), s1-s0, ms(fork), us(fork)/float64(n), ms(used-fork), us(used-fork)/float64(n),
		n, ms(base), us(base)/float64(n), us(used-base)/float64(n), appsDelta(a0, a1, n))
	return nil
}

// appsCPU is the CPU time of every app of this node (cpu.stat of the
// node's parent cgroup, <v2>/sft/<node>, which accumulates its children's,
// also of removed ones); -1 when unknown. Started with CLONE_INTO_CGROUP,
// an app's child side of the fork and its exec are counted there, not in
// the plugin's CPU.
func appsCPU() time.Duration {
	node := os.Getenv(genericapp.NodeEnv)
	if node == "" {
		node, _ = os.Hostname()
	}
	l, err := cgroup.Discover()
	if err != nil || l.V2 == "" {
		return -1
	}
	b, err := os.ReadFile(filepath.Join(l.V2, "sft", cgroup.EscapeName(node), "cpu.stat"))
	if err != nil {
		return -1
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "usage_usec "); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return time.Duration(n) * time.Microsecond
		}
	}
	return -1
}

func appsDelta(a0, a1 time.Duration, n int) string {
	if a0 < 0 || a1 < 0 {
		return "unknown"
	}
	return fmt.Sprintf("%.0f ms (%.0f us per app)", ms(a1-a0), us(a1-a0)/float64(n))
}

// loadavg is the 1-minute load average.
func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}

// bareStarts is the baseline of the online phase: the CPU this process
// spends starting n copies of the app with a plain exec.Cmd (own process
// group, Pdeathsig, output to /dev/null, as genericapp starts them, but no
// cgroup, no plugin, no monitor), four at a time as the spawner does. The
// programs are killed and reaped after the measurement.
func (b *bench) bareStarts(n int) (time.Duration, error) {
	cmds := make([]*exec.Cmd, n)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	self := []int{os.Getpid()}
	c0 := cpu(self)
	for w := range 4 {
		wg.Go(func() {
			for i := w; i < n; i += 4 {
				c := exec.Command(b.app, "/dev/null")
				c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
				if err := c.Start(); err != nil {
					errs[w] = err
					return
				}
				cmds[i] = c
			}
		})
	}
	wg.Wait()
	used := cpu(self) - c0
	for _, c := range cmds {
		if c != nil {
			_ = c.Process.Kill()
			_ = c.Wait()
		}
	}
	return used, errors.Join(errs...)
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

func (b *bench) stop(n, g int) error {
	n = n / g * g // setup opens n/g per group: count what runs
	e, err := b.setup(n, g, false, 0)
	if err != nil {
		return err
	}
	defer e.close()
	if err := e.all(func(name string) error { return e.m.Online(context.Background(), name) }); err != nil {
		return err
	}
	_ = os.Truncate(b.marker, 0)
	b.kills.Store(0)
	prof, err := startProfiles(fmt.Sprintf("stop-%d", n), e.pluginPid())
	if err != nil {
		return err
	}
	// When did the last app handle its SIGTERM? (Each writes one byte to
	// the marker file as it does.)
	var allTermed atomic.Int64
	watchDone, stopWatch := make(chan struct{}), make(chan struct{})
	t0 := time.Now()
	go func() {
		defer close(watchDone)
		for {
			if fi, err := os.Stat(b.marker); err == nil && fi.Size() >= int64(n) {
				allTermed.Store(int64(time.Since(t0)))
				return
			}
			select {
			case <-stopWatch:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	c0, a0 := cpu(e.pids()), appsCPU()
	if err := e.all(func(name string) error { return e.m.Offline(context.Background(), name) }); err != nil {
		return err
	}
	wall := time.Since(t0)
	used, a1 := cpu(e.pids())-c0, appsCPU()
	close(stopWatch)
	<-watchDone
	if err := prof.stop(); err != nil {
		return err
	}
	fi, _ := os.Stat(b.marker)
	var terms int64
	if fi != nil {
		terms = fi.Size()
	}
	last := "not all of them handled SIGTERM"
	if d := allTermed.Load(); d > 0 {
		last = fmt.Sprintf("the last app handled SIGTERM after %.0f ms", ms(time.Duration(d)))
	}
	fmt.Printf("stop: %d apps in %d groups, Offline of every group at once: %.0f ms wall (%s), load %s; CPU host+plugin %.0f ms (%.0f us per app); the apps' own CPU (their exit): %s; %d exited at SIGTERM, %d SIGKILLed after the 1 s grace\n",
		n, g, ms(wall), last, loadavg(), ms(used), us(used)/float64(n), appsDelta(a0, a1, n), terms, b.kills.Load())
	return nil
}

func (b *bench) crash(n, g int) error {
	const delay = 500 * time.Millisecond
	e, err := b.setup(n, g, false, delay)
	if err != nil {
		return err
	}
	defer e.close()
	if err := e.all(func(name string) error { return e.m.Online(context.Background(), name) }); err != nil {
		return err
	}
	sub := e.m.Subscribe(4096)
	defer sub.Close()
	w := e.m.Watch()
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := w.Next(ctx); err != nil { // the initial view
		return err
	}
	// Per resource, did the subscriber see it fail and come back?
	type seen struct{ down, up bool }
	var mu sync.Mutex
	got := make(map[string]*seen)
	var events atomic.Int64
	subDone := make(chan struct{})
	go func() {
		defer close(subDone)
		for ev := range sub.C() {
			events.Add(1)
			if ev.Kind != monitor.EventStateChanged {
				continue
			}
			mu.Lock()
			s := got[ev.Group+"/"+ev.Resource]
			if s == nil {
				s = &seen{}
				got[ev.Group+"/"+ev.Resource] = s
			}
			if ev.To == resource.StateFailed {
				s.down = true
			}
			if ev.To == resource.StateOnline && s.down {
				s.up = true
			}
			mu.Unlock()
		}
	}()
	pid := e.pool.Pid()
	prof, err := startProfiles("crash", nextPlugin)
	if err != nil {
		return err
	}
	c0, a0 := cpu([]int{os.Getpid()}), appsCPU()
	t0 := time.Now()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return err
	}
	// Level-triggered: wait until every group was seen not online and then
	// online again, with every resource online.
	down := make(map[string]bool)
	up := make(map[string]bool)
	for len(up) < g {
		sts, err := w.Next(ctx)
		if err != nil {
			return fmt.Errorf("crash: waiting for all online: %w (%d of %d groups back); %s", err, len(up), g, summary(e.m.Status()))
		}
		for _, s := range sts {
			allUp := s.State == resource.StateOnline
			for _, r := range s.Resources {
				allUp = allUp && r.State == resource.StateOnline
			}
			if !allUp {
				down[s.Name] = true
				delete(up, s.Name)
			} else if down[s.Name] {
				up[s.Name] = true
			}
		}
	}
	wall := time.Since(t0)
	a1 := appsCPU()
	newPid := e.pool.Pid()
	hostCPU := cpu([]int{os.Getpid()}) - c0
	pluginCPU := cpu([]int{newPid})
	if err := prof.attach(newPid); err != nil {
		return err
	}
	if err := prof.stop(); err != nil {
		return err
	}
	// Let the subscriber drain: until it saw every resource come back and
	// no event came for 500 ms (a fixed 200 ms closed it early under load,
	// and events after Close counted as missing), at most 30 s.
	counts := func() (fails, backs int) {
		mu.Lock()
		defer mu.Unlock()
		for _, s := range got {
			if s.down {
				fails++
			}
			if s.up {
				backs++
			}
		}
		return fails, backs
	}
	for last, quiet, end := events.Load(), time.Now(), time.Now().Add(30*time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if c := events.Load(); c != last {
			last, quiet = c, time.Now()
		}
		if _, backs := counts(); backs == n && time.Since(quiet) >= 500*time.Millisecond {
			break
		}
	}
	sub.Close()
	<-subDone
	fails, backs := counts()
	fmt.Printf("crash: kill -9 of the plugin with %d apps in %d groups, restart delay %s: all online again after %.0f ms (%.0f ms beyond the delay), CPU host %.0f ms + new plugin %.0f ms; subscriber (buffer 4096) got %d events, dropped %d, saw %d of %d resources fail and %d come back\n",
		n, g, delay, float64(wall)/1e6, float64(wall-delay)/1e6, ms(hostCPU), ms(pluginCPU), events.Load(), sub.Dropped(), fails, n, backs)
	if a0 >= 0 && a1 >= 0 {
		// The floor: the apps' own exec and start, spread over every CPU
		// as if nothing else ran, is time no supervisor can save.
		fmt.Printf("crash: the apps' own CPU over it (their exit, the child side of the fork, exec, start; their cgroups): %.0f ms, %.0f ms of wall time on %d CPUs at the least\n",
			ms(a1-a0), ms(a1-a0)/float64(runtime.NumCPU()), runtime.NumCPU())
	}
	return nil
}

// summary counts groups and resources by state, with one example reason
// per resource state that is not online.
func summary(st monitor.Status) string {
	groups := map[string]int{}
	res := map[string]int{}
	why := map[string]string{}
	var restarts uint64
	last := "" // of a resource in any state (one back online after restarts, too)
	for _, g := range st.Groups {
		groups[g.State.String()]++
		for _, r := range g.Resources {
			k := r.State.String()
			if r.RestartPending {
				k += "(restart pending)"
			}
			res[k]++
			restarts += r.RestartsTotal
			if last == "" && r.LastFailure != "" {
				last = g.Name + "/" + r.Name + ": " + r.LastFailure
			}
			if r.State != resource.StateOnline && why[k] == "" {
				why[k] = g.Name + "/" + r.Name + ": " + r.LastFailure
			}
		}
	}
	return fmt.Sprintf("groups by state %v, resources by state %v, %d restarts in all, examples %v; a last failure: %s", groups, res, restarts, why, last)
}

// children returns the child pids of pid.
func children(pid int) []int {
	var out []int
	tasks, _ := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/task")
	for _, t := range tasks {
		b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/task/" + t.Name() + "/children")
		for f := range strings.FieldsSeq(string(b)) {
			c, _ := strconv.Atoi(f)
			out = append(out, c)
		}
	}
	return out
}

// appPid waits for the one app child of parent that is not one of skip
// (the previous one, the baseline's) and whose executable is the bench's
// app.
func (b *bench) appPid(parent int, skip ...int) (int, error) {
	for range 2000 {
		for _, c := range children(parent) {
			if slices.Contains(skip, c) {
				continue
			}
			if exe, _ := os.Readlink("/proc/" + strconv.Itoa(c) + "/exe"); exe == b.app {
				return c, nil
			}
		}
		time.Sleep(time.Millisecond)
	}
	return 0, fmt.Errorf("no application child of %d", parent)
}

func (b *bench) restart(samples int) error {
	type variant struct {
		name string
		e    *env
		sub  *monitor.Subscription
		pid  int
		lat  []time.Duration
		// the stages: kill to failed (exit seen, pushed), failed to the
		// restart decision (Terminate), decision to online (Online)
		stage [3][]time.Duration
	}
	var vs []*variant
	for _, name := range []string{"in-process", "plugin", "monitor+bare exec.Cmd resource"} {
		var e *env
		var err error
		if name == "monitor+bare exec.Cmd resource" {
			e, err = b.bareEnv()
		} else {
			e, err = b.setup(1, 1, name == "in-process", -1)
		}
		if err != nil {
			return err
		}
		defer e.close()
		if err := e.m.Online(context.Background(), "g0"); err != nil {
			return err
		}
		parent := e.pids()[len(e.pids())-1]
		var skip []int
		for _, v := range vs {
			skip = append(skip, v.pid)
		}
		pid, err := b.appPid(parent, skip...)
		if err != nil {
			return err
		}
		vs = append(vs, &variant{name: name, e: e, sub: e.m.Subscribe(64), pid: pid})
	}
	// The baseline: a bare exec.Cmd of the same program.
	base := exec.Command(b.app, "/dev/null")
	if err := base.Start(); err != nil {
		return err
	}
	var baseLat []time.Duration
	var baseStage [2][]time.Duration // kill to reaped, Start
	for i := range samples {
		// baseline
		t0 := time.Now()
		_ = base.Process.Kill()
		_ = base.Wait()
		reaped := time.Now()
		base = exec.Command(b.app, "/dev/null")
		if err := base.Start(); err != nil {
			return err
		}
		baseLat = append(baseLat, time.Since(t0))
		baseStage[0] = append(baseStage[0], reaped.Sub(t0))
		baseStage[1] = append(baseStage[1], time.Since(reaped))
		settle(base.Process.Pid)
		// The variants in turn, starting with a different one each sample:
		// the one right after the baseline fares differently (0.96x last,
		// 1.1-1.2x first, for the bare variant in one run at load 24).
		for k := range vs {
			v := vs[(i+k)%len(vs)]
			parent := v.e.pids()[len(v.e.pids())-1]
			t0 := time.Now()
			if err := syscall.Kill(v.pid, syscall.SIGKILL); err != nil {
				return err
			}
			var failed, decided time.Time
			for ev := range v.sub.C() {
				if ev.Kind == monitor.EventStateChanged && ev.Resource != "" && ev.To == resource.StateFailed {
					failed = ev.Time
				}
				if ev.Kind == monitor.EventRestart {
					decided = ev.Time
				}
				if ev.Kind == monitor.EventStateChanged && ev.Resource != "" && ev.To == resource.StateOnline {
					v.stage[0] = append(v.stage[0], failed.Sub(t0))
					v.stage[1] = append(v.stage[1], decided.Sub(failed))
					v.stage[2] = append(v.stage[2], ev.Time.Sub(decided))
					break
				}
			}
			v.lat = append(v.lat, time.Since(t0))
			skip := []int{base.Process.Pid}
			for _, w := range vs {
				skip = append(skip, w.pid)
			}
			pid, err := b.appPid(parent, skip...)
			if err != nil {
				return err
			}
			v.pid = pid
			settle(pid)
		}
	}
	_ = base.Process.Kill()
	_ = base.Wait()
	bp50, bmean := stats(baseLat)
	fmt.Printf("restart: bare exec.Cmd kill/Wait/Start, %d samples: p50 %.0f us, p99 %.0f us, mean %.0f us\n",
		samples, us(bp50), us(pct(baseLat, 99)), us(bmean))
	fmt.Printf("restart: bare exec.Cmd stages, p50: kill to reaped %.0f us, Start %.0f us\n", us(pct(baseStage[0], 50)), us(pct(baseStage[1], 50)))
	for _, v := range vs {
		p50, mean := stats(v.lat)
		fmt.Printf("restart: %s crash-to-restart (kill -9 to the Online event, restart delay 0), %d samples interleaved with the baseline: p50 %.0f us (%.2fx), p99 %.0f us, mean %.0f us (%.2fx, +%.0f us)\n",
			v.name, samples, us(p50), float64(p50)/float64(bp50), us(pct(v.lat, 99)), us(mean), float64(mean)/float64(bmean), us(mean-bmean))
		fmt.Printf("restart: %s stages, p50: kill to Failed (exit seen, failure pushed) %.0f us, Failed to the restart decision (Terminate) %.0f us, decision to Online (Online) %.0f us\n",
			v.name, us(pct(v.stage[0], 50)), us(pct(v.stage[1], 50)), us(pct(v.stage[2], 50)))
		v.sub.Close()
	}
	return nil
}

// settle waits until the program just started as pid blocks in pause
// (state S). Its exec and first page faults go on for about 2-3 ms of CPU
// after its start returned (on this VM kind), and on two vCPUs the next
// sample would share them: whichever variant came right after another one
// paid for it. Every sample, the baseline's too, starts from that quiet
// state.
func settle(pid int) {
	for range 10000 { // 1 s at most
		if st, err := proc.ReadStat(pid); err != nil || st.State == 'S' {
			return
		}
		time.Sleep(100 * time.Microsecond)
	}
}

func us(d time.Duration) float64 { return float64(d) / 1e3 }

func pct(d []time.Duration, p int) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)*p/100]
}

func stats(d []time.Duration) (p50, mean time.Duration) {
	var sum time.Duration
	for _, x := range d {
		sum += x
	}
	return pct(d, 50), sum / time.Duration(len(d))
}
