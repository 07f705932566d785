package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sftkit/sft/examples/host/api"
	"github.com/sftkit/sft/monitor"
	"github.com/sftkit/sft/resource"
)

// stub is a Backend collaborator: the server is what is under test.
type stub struct {
	mu      sync.Mutex
	actions []string
	live    chan api.Event
}

func (s *stub) NodeName() string { return "n1" }
func (s *stub) Status() api.Status {
	return api.Status{Node: "n1", Groups: []api.GroupStatus{{
		GroupStatus: monitor.GroupStatus{Name: "g", State: resource.StateOnline, Target: resource.StateOnline},
		Resources:   []api.ResourceStatus{{ResourceStatus: monitor.ResourceStatus{Name: "r", Type: "fake", State: resource.StateOnline, Restarts: 2}, RestartsTotal: 3}},
		Owner:       "n1", Autostart: true,
	}}}
}
func (s *stub) act(a, g string) error {
	s.mu.Lock()
	s.actions = append(s.actions, a+" "+g)
	s.mu.Unlock()
	switch g {
	case "g":
		return nil
	case "slow":
		return context.DeadlineExceeded
	case "broken":
		return errors.New("group failed: boom")
	}
	return api.ErrNotFound
}
func (s *stub) Online(_ context.Context, g string) error  { return s.act("online", g) }
func (s *stub) Offline(_ context.Context, g string) error { return s.act("offline", g) }
func (s *stub) Clear(_ context.Context, g string) error   { return s.act("clear", g) }
func (s *stub) Move(_ context.Context, g, n string) error {
	if n != "n1" {
		return api.ErrConflict
	}
	return s.act("move", g)
}
func (s *stub) Events(follow bool) ([]api.Event, <-chan api.Event, func()) {
	hist := []api.Event{{Seq: 1, Kind: "state_changed", Group: "g", Resource: "r", From: "Offline", To: "OnlinePending"}}
	if !follow {
		return hist, nil, func() {}
	}
	return hist, s.live, func() {}
}

func start(t *testing.T, cfg api.ServerConfig) (sock, tcp string, b *stub) {
	t.Helper()
	b = &stub{live: make(chan api.Event, 4)}
	cfg.Backend = b
	srv := api.NewServer(cfg)
	dir := t.TempDir()
	sock = filepath.Join(dir, "run", "h.sock")
	uln, err := api.ListenUnix(sock, true)
	require.NoError(t, err)
	srv.Serve(uln)
	tln, err := api.ListenTCP("127.0.0.1:0")
	require.NoError(t, err)
	srv.Serve(tln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		require.NoError(t, srv.Close(ctx))
	})
	return sock, tln.Addr().String(), b
}

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestUnixSocket(t *testing.T) {
	sock, _, b := start(t, api.ServerConfig{Token: "0123456789abcdef0"})
	fi, err := os.Stat(sock)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "socket file mode")
	di, err := os.Stat(filepath.Dir(sock))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o700), di.Mode().Perm(), "socket directory mode")

	c := api.NewUnixClient(sock)
	defer c.Close()
	ctx := context.Background()
	st, err := c.Status(ctx)
	require.NoError(t, err)
	require.Equal(t, "n1", st.Node)
	require.Equal(t, "n1", st.Groups[0].Owner)
	require.Equal(t, resource.StateOnline, st.Groups[0].State)
	require.Equal(t, 2, st.Groups[0].Resources[0].Restarts)
	require.Equal(t, 3, st.Groups[0].Resources[0].RestartsTotal)

	res, err := c.Action(ctx, "g", "offline")
	require.NoError(t, err)
	require.Equal(t, "offline", res.Action)
	require.Equal(t, "g", res.Status.Name)
	_, err = c.Action(ctx, "g", "online")
	require.NoError(t, err)
	_, err = c.Action(ctx, "g", "clear")
	require.NoError(t, err)
	_, err = c.Move(ctx, "g", "n1")
	require.NoError(t, err)
	require.Equal(t, []string{"offline g", "online g", "clear g", "move g"}, b.actions)

	for _, tc := range []struct {
		group, action string
		code          int
		msg           string
	}{
		{"nope", "online", http.StatusNotFound, `no such group "nope"`},
		{"slow", "offline", http.StatusGatewayTimeout, "offline slow: context deadline exceeded"},
		{"broken", "online", http.StatusInternalServerError, "online broken: group failed: boom"},
		{"g", "explode", http.StatusNotFound, `unknown action "explode" (want online, offline, clear or move)`},
	} {
		_, err := c.Action(ctx, tc.group, tc.action)
		var se *api.StatusError
		require.ErrorAs(t, err, &se, tc.group)
		require.Equal(t, tc.code, se.Code, tc.group)
		require.Equal(t, tc.msg, se.Msg)
	}
	_, err = c.Move(ctx, "g", "elsewhere")
	var se *api.StatusError
	require.ErrorAs(t, err, &se)
	require.Equal(t, http.StatusConflict, se.Code)
}

func TestEventsStream(t *testing.T) {
	sock, _, b := start(t, api.ServerConfig{})
	c := api.NewUnixClient(sock)
	defer c.Close()
	var got []api.Event
	require.NoError(t, c.Events(context.Background(), false, func(e api.Event) error { got = append(got, e); return nil }))
	require.Len(t, got, 1)
	require.Equal(t, "state_changed", got[0].Kind)

	// Follow: the history, then live events until the channel closes.
	b.live <- api.Event{Seq: 2, Kind: "restart", Group: "g", Resource: "r", Delay: "500ms"}
	b.live <- api.Event{Seq: 3, Kind: "group_failed", Group: "g", Failover: true}
	close(b.live)
	got = nil
	require.NoError(t, c.Events(context.Background(), true, func(e api.Event) error { got = append(got, e); return nil }))
	require.Len(t, got, 3)
	require.Equal(t, uint64(3), got[2].Seq)
	require.True(t, got[2].Failover)
}

func TestTCPNeedsToken(t *testing.T) {
	_, addr, _ := start(t, api.ServerConfig{Token: "0123456789abcdef0"})
	ctx := context.Background()
	for _, tok := range []string{"", "wrong-token-0123456"} {
		c := api.NewTCPClient(addr, tok)
		_, err := c.Status(ctx)
		var se *api.StatusError
		require.ErrorAs(t, err, &se)
		require.Equal(t, http.StatusUnauthorized, se.Code)
		require.Equal(t, "missing or wrong bearer token", se.Msg)
		c.Close()
	}
	c := api.NewTCPClient(addr, "0123456789abcdef0")
	defer c.Close()
	st, err := c.Status(ctx)
	require.NoError(t, err)
	require.Equal(t, "n1", st.Node)

	// A raw request shows the error body is JSON.
	resp, err := http.Get("http://" + addr + "/v1/status")
	require.NoError(t, err)
	defer resp.Body.Close()
	var eb api.ErrorBody
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&eb))
	require.Equal(t, "missing or wrong bearer token", eb.Error)
	require.Equal(t, `Bearer realm="sft"`, resp.Header.Get("WWW-Authenticate"))

	// The scheme is case-insensitive (RFC 7235); the token is not.
	for auth, want := range map[string]int{
		"bearer 0123456789abcdef0":  http.StatusOK,
		"BEARER  0123456789abcdef0": http.StatusOK,
		"Bearer 0123456789ABCDEF0":  http.StatusUnauthorized,
		"Basic 0123456789abcdef0":   http.StatusUnauthorized,
		"Bearer":                    http.StatusUnauthorized,
	} {
		req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/v1/status", nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", auth)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, want, resp.StatusCode, auth)
	}
}

func TestTCPWithoutTokenRefusesEverything(t *testing.T) {
	_, addr, _ := start(t, api.ServerConfig{})
	c := api.NewTCPClient(addr, "")
	defer c.Close()
	_, err := c.Status(context.Background())
	var se *api.StatusError
	require.ErrorAs(t, err, &se)
	require.Equal(t, http.StatusUnauthorized, se.Code)
}

// TestUnixPeerUID: the server reads the peer's uid with SO_PEERCRED and
// refuses any uid but the owner's (and root's). As root the test runs curl
// as nobody (uid 65534) against a socket it made world-accessible, so only
// the uid check stands in the way; unprivileged it makes the server allow
// another uid than its own.
func TestUnixPeerUID(t *testing.T) {
	if os.Geteuid() != 0 {
		other := os.Geteuid() + 1
		sock, _, _ := start(t, api.ServerConfig{AllowUID: &other})
		c := api.NewUnixClient(sock)
		defer c.Close()
		_, err := c.Status(context.Background())
		var se *api.StatusError
		require.ErrorAs(t, err, &se)
		require.Equal(t, http.StatusForbidden, se.Code)
		require.Equal(t, fmt.Sprintf("uid %d may not use this socket (owner uid %d)", os.Geteuid(), other), se.Msg)
		return
	}
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl not installed")
	}
	dir, err := os.MkdirTemp("", "sft-api-peer-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o755))
	sock := filepath.Join(dir, "h.sock")
	srv := api.NewServer(api.ServerConfig{Backend: &stub{}})
	ln, err := api.ListenUnix(sock, false)
	require.NoError(t, err)
	srv.Serve(ln)
	t.Cleanup(func() { require.NoError(t, srv.Close(context.Background())) })
	require.NoError(t, os.Chmod(sock, 0o666))

	run := func(uid uint32) (string, error) {
		cmd := exec.Command(curl, "-s", "--max-time", "10", "--unix-socket", sock, "http://sft/v1/status")
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
		cmd.Dir = "/"
		out, err := cmd.Output()
		return string(out), err
	}
	out, err := run(65534)
	require.NoError(t, err)
	var eb api.ErrorBody
	require.NoError(t, json.Unmarshal([]byte(out), &eb), out)
	require.Equal(t, "uid 65534 may not use this socket (owner uid 0)", eb.Error)

	out, err = run(0)
	require.NoError(t, err)
	var st api.Status
	require.NoError(t, json.Unmarshal([]byte(out), &st), out)
	require.Equal(t, "n1", st.Node)
}

func TestListenUnix(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "s", "h.sock")
	require.NoError(t, os.MkdirAll(filepath.Dir(sock), 0o755))

	ln, err := api.ListenUnix(sock, true)
	require.NoError(t, err)
	di, err := os.Stat(filepath.Dir(sock))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o700), di.Mode().Perm(), "an existing private directory is made 0700")

	// A live socket is refused.
	_, err = api.ListenUnix(sock, true)
	require.ErrorContains(t, err, "is in use: is another host running?")
	require.NoError(t, ln.Close())

	// A stale socket (nobody listening) is replaced.
	l, err := net.Listen("unix", sock)
	require.NoError(t, err)
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	require.NoError(t, l.Close())
	_, err = os.Stat(sock)
	require.NoError(t, err, "stale socket file left behind")
	ln, err = api.ListenUnix(sock, true)
	require.NoError(t, err)
	require.NoError(t, ln.Close())

	// A file that is not a socket is left alone.
	require.NoError(t, os.WriteFile(sock, []byte("x"), 0o600))
	_, err = api.ListenUnix(sock, true)
	require.ErrorContains(t, err, "exists and is not a socket")
}

func TestListenTCPLoopbackOnly(t *testing.T) {
	_, err := api.ListenTCP("0.0.0.0:0")
	require.EqualError(t, err, "api tcp: only a loopback address is allowed")
	_, err = api.ListenTCP("localhost:0")
	require.Error(t, err)
	require.True(t, strings.HasPrefix(err.Error(), `api tcp "localhost:0"`), err.Error())
}
