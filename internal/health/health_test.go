package health

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sftkit/sft/internal/proc"
	"github.com/sftkit/sft/resource"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		cfg   Config
		field string // "" means valid
	}{
		{"tcp", Config{TCP: "127.0.0.1:80"}, ""},
		{"http", Config{HTTP: "http://127.0.0.1:8080/healthz", ExpectStatus: 204}, ""},
		{"command", Config{Command: []string{"true"}}, ""},
		{"none", Config{}, "readiness"},
		{"two", Config{TCP: "127.0.0.1:80", HTTP: "http://x/"}, "readiness"},
		{"tcp no port", Config{TCP: "127.0.0.1"}, "readiness.tcp"},
		{"tcp port 0", Config{TCP: "127.0.0.1:0"}, "readiness.tcp"},
		{"tcp empty host", Config{TCP: ":80"}, "readiness.tcp"},
		{"http scheme", Config{HTTP: "ftp://127.0.0.1/"}, "readiness.http"},
		{"http no host", Config{HTTP: "http:///x"}, "readiness.http"},
		{"status without http", Config{TCP: "127.0.0.1:80", ExpectStatus: 200}, "readiness.expect_status"},
		{"status range", Config{HTTP: "http://127.0.0.1/", ExpectStatus: 999}, "readiness.expect_status"},
		{"command missing", Config{Command: []string{"/no/such/program"}}, "readiness.command"},
		{"command empty", Config{Command: []string{""}}, "readiness.command"},
		{"negative interval", Config{TCP: "127.0.0.1:80", Interval: -1}, "readiness.interval"},
		{"negative timeout", Config{TCP: "127.0.0.1:80", Timeout: -1}, "readiness.timeout"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.cfg.Validate("readiness")
			if tc.field == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			require.ErrorIs(t, err, resource.ErrConfiguration)
			var re *resource.Error
			require.ErrorAs(t, err, &re)
			require.Equal(t, tc.field, re.Field, "error: %v", err)
		})
	}
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	c, err := New("health", Config{HTTP: "http://127.0.0.1:1/"})
	require.NoError(t, err)
	require.Equal(t, DefaultInterval, c.Interval())
	require.Equal(t, DefaultTimeout, c.Timeout())
	require.Equal(t, DefaultExpectStatus, c.Config().ExpectStatus)
	require.Equal(t, "http GET http://127.0.0.1:1/ want 200", c.String())
	require.True(t, Config{}.IsZero())
	require.False(t, Config{TCP: "x:1"}.IsZero())
}

func TestTCP(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	c, err := New("h", Config{TCP: addr})
	require.NoError(t, err)
	require.NoError(t, c.Check(t.Context()))

	require.NoError(t, ln.Close())

	// Refused: a port bound but not listening. (The closed listener's port
	// will not do: on a busy machine another test's listener took it and
	// the check passed.)
	refused := boundNotListening(t)
	c, err = New("h", Config{TCP: refused})
	require.NoError(t, err)
	err = c.Check(t.Context())
	require.ErrorIs(t, err, syscall.ECONNREFUSED)
	require.Contains(t, err.Error(), "tcp "+refused)
}

// boundNotListening returns a loopback address whose port a socket of the
// test holds without listening: a connection is refused, and nobody else
// can bind the port until the test ends.
func boundNotListening(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	t.Cleanup(func() { _ = syscall.Close(fd) })
	require.NoError(t, syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}))
	sa, err := syscall.Getsockname(fd)
	require.NoError(t, err)
	return fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
}

func TestHTTP(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
		case "/down":
			w.WriteHeader(http.StatusServiceUnavailable)
		case "/nocontent":
			w.WriteHeader(http.StatusNoContent)
		case "/redirect":
			http.Redirect(w, r, "/ok", http.StatusFound)
		}
	}))
	defer srv.Close()

	tests := []struct {
		path   string
		status int
		ok     bool
	}{
		{"/ok", 0, true},
		{"/down", 0, false},
		{"/nocontent", 204, true},
		{"/nocontent", 0, false},
		{"/redirect", 0, false}, // not followed
		{"/redirect", 302, true},
	}
	for _, tc := range tests {
		c, err := New("h", Config{HTTP: srv.URL + tc.path, ExpectStatus: tc.status})
		require.NoError(t, err)
		err = c.Check(t.Context())
		if tc.ok {
			require.NoError(t, err, tc.path)
		} else {
			require.Error(t, err, tc.path)
			require.Contains(t, err.Error(), "got status")
		}
	}
}

func TestHTTPTimeout(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	c, err := New("h", Config{HTTP: srv.URL, Timeout: resource.Duration(20 * time.Millisecond)})
	require.NoError(t, err)
	err = c.Check(t.Context())
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Contains(t, err.Error(), "timed out after 20ms")
}

func TestCommand(t *testing.T) {
	t.Parallel()
	ok, err := New("h", Config{Command: []string{"/bin/true"}})
	require.NoError(t, err)
	require.NoError(t, ok.Check(t.Context()))

	bad, err := New("h", Config{Command: []string{"/bin/sh", "-c", "echo broken >&2; exit 3"}})
	require.NoError(t, err)
	err = bad.Check(t.Context())
	require.Error(t, err)
	require.Contains(t, err.Error(), "exit status 3")
	require.Contains(t, err.Error(), "broken")
}

// A command that times out is killed with its whole group, including a
// background child it started; Check returns only after the leader is reaped.
func TestCommandTimeoutKillsGroup(t *testing.T) {
	t.Parallel()
	pidFile := filepath.Join(t.TempDir(), "pid")
	c, err := New("h", Config{
		Command: []string{"/bin/sh", "-c", "sleep 1000 & echo $! > " + pidFile + "; wait"},
		Timeout: resource.Duration(200 * time.Millisecond),
	})
	require.NoError(t, err)
	err = c.Check(t.Context())
	require.ErrorIs(t, err, context.DeadlineExceeded)

	b, err := os.ReadFile(pidFile)
	require.NoError(t, err)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	require.NoError(t, err)
	// SIGKILL was sent to the group before Check returned; the kernel
	// finishes the grandchild asynchronously, so wait (bounded) for it.
	waitGone(t, pid)
}

// A command that succeeds but leaves a background process behind: the
// leftover is killed too.
func TestCommandLeftoverKilled(t *testing.T) {
	t.Parallel()
	pidFile := filepath.Join(t.TempDir(), "pid")
	c, err := New("h", Config{
		Command: []string{"/bin/sh", "-c", "sleep 1000 >/dev/null 2>&1 & echo $! > " + pidFile},
	})
	require.NoError(t, err)
	require.NoError(t, c.Check(t.Context()))
	b, err := os.ReadFile(pidFile)
	require.NoError(t, err)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	require.NoError(t, err)
	waitGone(t, pid)
}

func waitGone(t *testing.T, pid int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for proc.Alive(pid) {
		select {
		case <-ctx.Done():
			t.Fatalf("pid %d still alive", pid)
		case <-time.After(time.Millisecond):
		}
	}
}

type scripted struct {
	failures int
	calls    int
}

func (s *scripted) Check(ctx context.Context) error {
	s.calls++
	if s.calls <= s.failures {
		return errors.New("not yet")
	}
	return nil
}

func TestWait(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		s := &scripted{failures: 3}
		var attempts []int
		start := time.Now()
		err := Wait(t.Context(), s, time.Second, func(n int, err error) { attempts = append(attempts, n) })
		require.NoError(t, err)
		require.Equal(t, []int{1, 2, 3, 4}, attempts)
		// First attempt at once, then one interval between attempts.
		require.Equal(t, 3*time.Second, time.Since(start))
	})
}

func TestWaitGivesUp(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		s := &scripted{failures: 1 << 30}
		ctx, cancel := context.WithTimeout(t.Context(), 5500*time.Millisecond)
		defer cancel()
		err := Wait(ctx, s, time.Second, nil)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.Contains(t, err.Error(), "not ready after 6 attempts")
		require.Contains(t, err.Error(), "not yet")
	})
}

func TestWaitCause(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancelCause(t.Context())
		s := &scripted{failures: 1 << 30}
		go func() {
			time.Sleep(1500 * time.Millisecond)
			cancel(errors.New("terminated"))
		}()
		err := Wait(ctx, s, time.Second, nil)
		require.ErrorIs(t, err, context.Canceled)
		require.Contains(t, err.Error(), "terminated")
	})
}

func Example() {
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	chk, err := New("readiness", Config{HTTP: srv.URL + "/healthz"})
	if err != nil {
		panic(err)
	}
	err = Wait(context.Background(), chk, chk.Interval(), nil)
	fmt.Println("ready:", err == nil)
	_, err = New("readiness", Config{TCP: "localhost"})
	fmt.Println(err)
	// Output:
	// ready: true
	// readiness.tcp "localhost": want host:port: address localhost: missing port in address
}
