package alert_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sftkit/sft/examples/host/alert"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type result struct {
	a        alert.Alert
	attempts int
	err      error
}

func collect() (func(alert.Alert, int, error), <-chan result) {
	ch := make(chan result, 16)
	return func(a alert.Alert, n int, err error) { ch <- result{a, n, err} }, ch
}

// TestWebhookRetriesOn500: a webhook answering 500 twice gets the alert on
// the third attempt, with the JSON body intact.
func TestWebhookRetriesOn500(t *testing.T) {
	var mu sync.Mutex
	var bodies []alert.Alert
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		var a alert.Alert
		if err := json.NewDecoder(r.Body).Decode(&a); err != nil || r.Header.Get("Content-Type") != "application/json" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		bodies = append(bodies, a)
		if calls <= 2 {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	onResult, results := collect()
	h := alert.New(alert.Config{Webhook: srv.URL, Retries: 5, Backoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond, OnResult: onResult})
	defer h.Close(context.Background())

	a := alert.Alert{Kind: alert.KindFailover, Time: time.Unix(1700000000, 0).UTC(), Node: "n1", Group: "web", Resource: "app", Reason: "restart threshold reached", Failover: true}
	require.True(t, h.Fire(a))
	r := <-results
	require.NoError(t, r.err)
	require.Equal(t, 3, r.attempts)
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, bodies, 3)
	for _, b := range bodies {
		require.Equal(t, a, b)
	}
}

// TestWebhookGivesUp: after Retries retries the alert is reported failed.
func TestWebhookGivesUp(t *testing.T) {
	calls := 0
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		calls++
		mu.Unlock()
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	onResult, results := collect()
	h := alert.New(alert.Config{Webhook: srv.URL, Retries: 2, Backoff: time.Millisecond, OnResult: onResult})
	defer h.Close(context.Background())
	h.Fire(alert.Alert{Kind: alert.KindFailed, Group: "g"})
	r := <-results
	require.Equal(t, 3, r.attempts)
	require.ErrorContains(t, r.err, "webhook: "+srv.URL+" answered 503 Service Unavailable")
	mu.Lock()
	require.Equal(t, 3, calls)
	mu.Unlock()
}

// TestFireNeverBlocks: with the deliverer stuck on a slow webhook and the
// queue full, Fire returns false at once and counts the drop.
func TestFireNeverBlocks(t *testing.T) {
	inFlight := make(chan struct{}, 1)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		select {
		case inFlight <- struct{}{}:
		default:
		}
		<-release
	}))
	defer srv.Close()
	defer close(release)
	onResult, results := collect()
	h := alert.New(alert.Config{Webhook: srv.URL, Queue: 1, Retries: -1, Timeout: time.Minute, OnResult: onResult})

	require.True(t, h.Fire(alert.Alert{Kind: alert.KindFailed, Group: "1"}))
	<-inFlight // the deliverer holds alert 1
	require.True(t, h.Fire(alert.Alert{Kind: alert.KindFailed, Group: "2"}), "queued")
	require.False(t, h.Fire(alert.Alert{Kind: alert.KindFailed, Group: "3"}), "dropped")
	require.Equal(t, uint64(1), h.Dropped())
	r := <-results
	require.True(t, alert.IsDropped(r.err))
	require.Equal(t, "3", r.a.Group)

	// Close with an expired context abandons what is left.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorContains(t, h.Close(ctx), "undelivered alerts abandoned")
	require.False(t, h.Fire(alert.Alert{Kind: alert.KindFailed, Group: "4"}), "closed hook drops")
}

// TestCommand: the command gets the JSON on stdin and the SFT_ALERT_*
// variables; a failing command is retried.
func TestCommand(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	marker := filepath.Join(dir, "failed-once")
	script := `if [ ! -e "$2" ]; then : > "$2"; exit 3; fi; cat > "$1"; echo "$SFT_ALERT_KIND $SFT_ALERT_NODE $SFT_ALERT_GROUP $SFT_ALERT_RESOURCE $SFT_ALERT_REASON" >> "$1"`
	onResult, results := collect()
	h := alert.New(alert.Config{Command: []string{"/bin/sh", "-c", script, "sh", out, marker}, Retries: 1, Backoff: time.Millisecond, OnResult: onResult})
	defer h.Close(context.Background())
	h.Fire(alert.Alert{Kind: alert.KindRecovery, Node: "n1", Group: "web", Resource: "app", Reason: "back"})
	r := <-results
	require.NoError(t, r.err)
	require.Equal(t, 2, r.attempts)
	b, err := os.ReadFile(out)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	require.Len(t, lines, 2)
	var a alert.Alert
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &a))
	require.Equal(t, "web", a.Group)
	require.Equal(t, "recovery n1 web app back", lines[1])
}

func TestDisabledHookAcceptsAndDropsNothing(t *testing.T) {
	h := alert.New(alert.Config{})
	require.False(t, h.Enabled())
	require.True(t, h.Fire(alert.Alert{Kind: alert.KindFailed}))
	require.Zero(t, h.Dropped())
	require.NoError(t, h.Close(context.Background()))
}
