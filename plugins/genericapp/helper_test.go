package genericapp

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sftkit/sft/internal/proc"
	"github.com/sftkit/sft/plugins"
	"github.com/sftkit/sft/resource"
)

// helperEnv selects a helper mode: the test binary re-executed as the
// application under test.
const helperEnv = "SFT_GENERICAPP_HELPER"

func TestMain(m *testing.M) {
	// Re-executed as a plugin process by plugins.Launch: serve the type.
	plugins.Main(New())
	if mode := os.Getenv(helperEnv); mode != "" {
		helperMain(mode)
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

// helperMain runs the helper application. Modes:
//
//	sleep          block until killed (SIGTERM's default action ends it)
//	ignore-term    ignore SIGTERM, block until SIGKILL
//	spawn          start 2 children (one ignores SIGTERM, one starts a
//	               grandchild) in the group, write all pids to $PIDFILE, block
//	term-child     start a record-term child, block
//	record-term    write $READYFILE, then "term" to $OUT at SIGTERM and exit
//	exit-on-usr1   exit with code 3 on SIGUSR1
//	exit           exit at once with code $CODE
//	http           serve 127.0.0.1:$PORT: 200 when $READYFILE exists, else 503
//	print          print "hello stdout" / "hello stderr", then block
//	report         write cwd, $FOO and uid to $OUT, then block
//	host           act as a host: open a genericapp running "sleep", write the
//	               app's pid to $PIDFILE, block (the test SIGKILLs it)
func helperMain(mode string) {
	block := func() { select {} }
	switch mode {
	case "sleep":
		block()
	case "ignore-term":
		signal.Ignore(syscall.SIGTERM)
		block()
	case "spawn":
		var pids []string
		for _, m := range []string{"ignore-term", "spawn-one"} {
			cmd := exec.Command(os.Args[0])
			cmd.Env = append(os.Environ(), helperEnv+"="+m)
			if err := cmd.Start(); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(2)
			}
			pids = append(pids, strconv.Itoa(cmd.Process.Pid))
		}
		// spawn-one reports its own child on its stdout... keep it
		// simple: it writes to $PIDFILE.child.
		writeFile(os.Getenv("PIDFILE")+".tmp", strings.Join(pids, "\n"))
		_ = os.Rename(os.Getenv("PIDFILE")+".tmp", os.Getenv("PIDFILE"))
		block()
	case "escape":
		// A child that leaves the group with setsid and keeps our
		// stdout (a pipe to the logger) open.
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), helperEnv+"=sleep")
		cmd.Stdout = os.Stdout
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := cmd.Start(); err != nil {
			os.Exit(2)
		}
		writeFile(os.Getenv("PIDFILE")+".tmp", strconv.Itoa(cmd.Process.Pid))
		_ = os.Rename(os.Getenv("PIDFILE")+".tmp", os.Getenv("PIDFILE"))
		block()
	case "tree":
		// A child (spawn-one's shape) whose own child listens on $PORT:
		// a server with a grandchild holding the port.
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), helperEnv+"=tree-child")
		if err := cmd.Start(); err != nil {
			os.Exit(2)
		}
		block()
	case "tree-child":
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), helperEnv+"=http")
		if err := cmd.Start(); err != nil {
			os.Exit(2)
		}
		writeFile(os.Getenv("PIDFILE")+".tmp", strconv.Itoa(os.Getpid())+" "+strconv.Itoa(cmd.Process.Pid))
		_ = os.Rename(os.Getenv("PIDFILE")+".tmp", os.Getenv("PIDFILE"))
		block()
	case "alloc-later":
		time.Sleep(300 * time.Millisecond)
		for {
			b := make([]byte, 1<<20)
			for i := range b {
				b[i] = 1
			}
			memHog = append(memHog, b) // kept reachable: the limit must kill us
		}
	case "spawn-one":
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), helperEnv+"=sleep")
		if err := cmd.Start(); err != nil {
			os.Exit(2)
		}
		writeFile(os.Getenv("PIDFILE")+".child.tmp", strconv.Itoa(cmd.Process.Pid))
		_ = os.Rename(os.Getenv("PIDFILE")+".child.tmp", os.Getenv("PIDFILE")+".child")
		block()
	case "term-child":
		// A child that writes "term" to $OUT at SIGTERM and exits; the
		// leader blocks (SIGTERM's default action ends it).
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), helperEnv+"=record-term")
		if err := cmd.Start(); err != nil {
			os.Exit(2)
		}
		block()
	case "record-term":
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGTERM)
		writeFile(os.Getenv("READYFILE"), "")
		<-ch
		writeFile(os.Getenv("OUT"), "term")
		os.Exit(0)
	case "exit-on-usr1":
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGUSR1)
		writeFile(os.Getenv("READYFILE"), "")
		<-ch
		os.Exit(3)
	case "exit":
		code, _ := strconv.Atoi(os.Getenv("CODE"))
		os.Exit(code)
	case "http":
		ln, err := net.Listen("tcp", "127.0.0.1:"+os.Getenv("PORT"))
		if err != nil {
			os.Exit(2)
		}
		_ = http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if _, err := os.Stat(os.Getenv("READYFILE")); err != nil {
				w.WriteHeader(http.StatusServiceUnavailable)
			}
		}))
	case "print":
		fmt.Println("hello stdout")
		fmt.Fprintln(os.Stderr, "hello stderr")
		block()
	case "report":
		wd, _ := os.Getwd()
		writeFile(os.Getenv("OUT")+".tmp", fmt.Sprintf("%s\n%s\n%d\n%d", wd, os.Getenv("FOO"), os.Getuid(), os.Getgid()))
		_ = os.Rename(os.Getenv("OUT")+".tmp", os.Getenv("OUT"))
		block()
	case "host":
		mode := os.Getenv("APPMODE")
		if mode == "" {
			mode = "sleep"
		}
		a, err := NewWithOptions(Options{Node: os.Getenv("NODE")}).Open(context.Background(), resource.OpenRequest{
			Name:       "host",
			Properties: resource.Properties{"argv": []any{os.Args[0]}, "env": map[string]any{helperEnv: mode, "PIDFILE": os.Getenv("PIDFILE") + ".app"}},
		})
		if err != nil {
			os.Exit(2)
		}
		if err := a.Online(context.Background()); err != nil {
			os.Exit(3)
		}
		writeFile(os.Getenv("PIDFILE")+".tmp", strconv.Itoa(a.(*App).Pid()))
		_ = os.Rename(os.Getenv("PIDFILE")+".tmp", os.Getenv("PIDFILE"))
		block()
	default:
		fmt.Fprintln(os.Stderr, "unknown helper mode", mode)
		os.Exit(2)
	}
}

func writeFile(name, s string) {
	if err := os.WriteFile(name, []byte(s), 0o644); err != nil {
		os.Exit(2)
	}
}

// helperProps returns properties that run the test binary in mode, with
// extra environment.
func helperProps(mode string, env map[string]any) resource.Properties {
	e := map[string]any{helperEnv: mode}
	for k, v := range env {
		e[k] = v
	}
	return resource.Properties{"argv": []any{os.Args[0], "-test.run=^$"}, "env": e}
}

// logSink is a slog handler that records messages and their attributes.
type logSink struct {
	mu   sync.Mutex
	recs []string
	ch   chan string // if not nil, every record is also sent here (non-blocking)
}

func (l *logSink) Enabled(context.Context, slog.Level) bool { return true }
func (l *logSink) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	l.mu.Lock()
	l.recs = append(l.recs, b.String())
	l.mu.Unlock()
	if l.ch != nil {
		select {
		case l.ch <- b.String():
		default:
		}
	}
	return nil
}
func (l *logSink) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logSink) WithGroup(string) slog.Handler      { return l }

func (l *logSink) records() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.recs...)
}

// open opens a genericapp instance whose cleanup terminates and closes it
// and checks that its process groups are gone.
func open(t testing.TB, props resource.Properties, sink *logSink) *App {
	t.Helper()
	req := resource.OpenRequest{Name: "app", Properties: props}
	if sink != nil {
		req.Logger = slog.New(sink)
	}
	r, err := NewWithOptions(Options{Node: testNode(t)}).Open(t.Context(), req)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	a := r.(*App)
	t.Cleanup(func() {
		if err := a.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return a
}

// testNode is a node name of the test's own (with "sft" in it), so that
// parallel tests' cgroups never meet.
func testNode(t testing.TB) string {
	return fmt.Sprintf("sft-test-%d-%s", os.Getpid(), t.Name())
}

// waitFile waits (bounded) for a file a helper writes, and for it to end
// with suffix, and returns it.
func waitFile(t testing.TB, name, suffix string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	for {
		if b, err := os.ReadFile(name); err == nil && strings.HasSuffix(string(b), suffix) {
			return string(b)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s not written", name)
		case <-time.After(time.Millisecond):
		}
	}
}

// exists reports whether pid has an entry in /proc at all (zombies count).
func exists(pid int) bool {
	_, err := os.Stat("/proc/" + strconv.Itoa(pid))
	return err == nil
}

// liveGroupMembers lists the members of process group pgid that are not
// zombies.
func liveGroupMembers(t testing.TB, pgid int) []int {
	t.Helper()
	m, err := proc.GroupMembers(pgid, false)
	require.NoError(t, err)
	return m
}

// waitNotAlive waits (bounded) until pid is no longer a live process.
func waitNotAlive(t testing.TB, pid int) {
	t.Helper()
	// Not t.Context(): it is already canceled when cleanups run.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for proc.Alive(pid) {
		select {
		case <-ctx.Done():
			t.Fatalf("pid %d still alive", pid)
		case <-time.After(time.Millisecond):
		}
	}
}

// memHog holds the memory the hog helper allocates, so it stays in use.
var memHog [][]byte
