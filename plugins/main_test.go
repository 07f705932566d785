package plugins

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-plugin"
	"github.com/stretchr/testify/require"

	"github.com/sftkit/sft/internal/proc"
)

// roleEnv makes the test binary play a part other than the test runner: the
// helper-process pattern (the test binary is the plugin and the helper host).
const roleEnv = "SFT_PLUGINS_TEST_ROLE"

func TestMain(m *testing.M) {
	switch os.Getenv(roleEnv) {
	case "":
	case "plugin":
		if err := Serve(ServeConfig{Level: slog.LevelDebug}, scriptedType{}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	case "badhandshake":
		hs := handshake
		hs.ProtocolVersion = 99
		_ = Serve(ServeConfig{handshake: &hs}, scriptedType{})
		os.Exit(0)
	case "diehandshake":
		// Killed before it answers the handshake (issue 8 bug 23).
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	case "host":
		helperHost()
		os.Exit(0)
	default:
		fmt.Fprintln(os.Stderr, "unknown role", os.Getenv(roleEnv))
		os.Exit(2)
	}
	code := m.Run()
	if code == 0 {
		if err := checkNoChildren(); err != nil {
			fmt.Fprintln(os.Stderr, "FAIL:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// checkNoChildren fails when a child process of the test outlives the suite.
// go-plugin reaps a plugin in a goroutine; give it a moment.
func checkNoChildren() error {
	var kids []proc.Stat
	for range 100 {
		var err error
		kids, err = proc.Children(os.Getpid())
		if err != nil {
			return err
		}
		if len(kids) == 0 {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("leftover child processes after the suite: %+v", kids)
}

// helperHost launches a plugin, prints its pid and waits to be killed.
func helperHost() {
	h, err := Launch(context.Background(), Config{Env: []string{roleEnv + "=plugin"}, DisableAutoMTLS: true, Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	fmt.Println(h.Pid())
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGTERM)
	<-c
	_ = h.Close()
}

// logRecorder is a slog handler keeping records for assertions.
type logRecorder struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	l.recs = append(l.recs, r.Clone())
	l.mu.Unlock()
	return nil
}
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logRecorder) WithGroup(string) slog.Handler      { return l }

func (l *logRecorder) find(msg string) (slog.Record, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	i := slices.IndexFunc(l.recs, func(r slog.Record) bool { return r.Message == msg })
	if i < 0 {
		return slog.Record{}, false
	}
	return l.recs[i], true
}

// launch starts the test binary as a plugin serving scriptedType.
func launch(t *testing.T, mutate func(*Config)) (*Pool, *logRecorder) {
	t.Helper()
	rec := &logRecorder{}
	cfg := Config{Env: []string{roleEnv + "=plugin"}, Logger: slog.New(rec)}
	if mutate != nil {
		mutate(&cfg)
	}
	h, err := Launch(t.Context(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, h.Close()) })
	return h, rec
}

// waitFor polls cond: a liveness bound for asynchronous effects in other
// processes, not a speed requirement (speed lives in the benchmarks).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

var _ = bufio.NewScanner
var _ plugin.HandshakeConfig
