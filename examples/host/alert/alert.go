// Package alert delivers the example host's alerts (a group failed, asked
// for a failover, or recovered) to a webhook and/or a command, retried with
// capped exponential backoff, from a goroutine of its own behind a bounded
// queue: firing an alert never blocks the caller (the monitor's event
// consumer); when the queue is full the alert is dropped and counted.
package alert

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"time"
)

// Kinds of alerts.
const (
	KindFailed   = "failed"
	KindFailover = "failover"
	KindRecovery = "recovery"
)

// Alert is one alert; it is the JSON body of a webhook POST and the
// standard input of a command.
type Alert struct {
	Kind     string    `json:"kind"`
	Time     time.Time `json:"time"`
	Node     string    `json:"node"`
	Group    string    `json:"group"`
	Resource string    `json:"resource,omitempty"`
	Reason   string    `json:"reason,omitempty"`
	// Failover is set when the group's policy asks for a move.
	Failover bool `json:"failover,omitempty"`
}

// Config configures a Hook. Zero fields take the defaults given.
type Config struct {
	// Webhook is a URL that gets POST application/json. Empty: none.
	Webhook string
	// Command is an argv run per alert with the JSON on stdin and
	// SFT_ALERT_KIND, SFT_ALERT_NODE, SFT_ALERT_GROUP, SFT_ALERT_RESOURCE,
	// SFT_ALERT_REASON in its environment; it must exit 0. Empty: none.
	Command []string
	// Timeout bounds one attempt. Default 5 s.
	Timeout time.Duration
	// Retries after the first attempt. Default 0 here (the host config
	// defaults to 5); negative means none.
	Retries int
	// Backoff is the first retry delay, doubled per retry up to
	// MaxBackoff. Defaults 1 s and 30 s.
	Backoff, MaxBackoff time.Duration
	// Queue bounds the alerts waiting for delivery. Default 64.
	Queue int
	// Logger receives delivery failures. Nil discards.
	Logger *slog.Logger
	// Client sends webhooks. Default: a new http.Client.
	Client *http.Client
	// OnResult, if set, is called after each alert's final outcome (nil:
	// delivered) with the number of attempts made. For metrics.
	OnResult func(a Alert, attempts int, err error)
}

// Hook delivers alerts.
type Hook struct {
	cfg     Config
	log     *slog.Logger
	q       chan Alert
	ctx     context.Context
	cancel  context.CancelFunc
	done    chan struct{}
	dropped atomic.Uint64

	mu     sync.Mutex
	closed bool
}

// New starts a hook. Close stops it.
func New(cfg Config) *Hook {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = time.Second
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 30 * time.Second
	}
	if cfg.MaxBackoff < cfg.Backoff {
		cfg.MaxBackoff = cfg.Backoff
	}
	if cfg.Queue <= 0 {
		cfg.Queue = 64
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &Hook{cfg: cfg, log: log, q: make(chan Alert, cfg.Queue), ctx: ctx, cancel: cancel, done: make(chan struct{})}
	go h.run()
	return h
}

// Enabled reports whether the hook has anywhere to deliver.
func (h *Hook) Enabled() bool { return h.cfg.Webhook != "" || len(h.cfg.Command) > 0 }

// Fire queues a for delivery without blocking. It returns false (and counts
// a drop) when the queue is full or the hook is closed.
func (h *Hook) Fire(a Alert) bool {
	if !h.Enabled() {
		return true
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.closed {
		select {
		case h.q <- a:
			return true
		default:
		}
	}
	n := h.dropped.Add(1)
	h.log.Warn("alert dropped: queue full", "kind", a.Kind, "group", a.Group, "dropped_total", n)
	if h.cfg.OnResult != nil {
		h.cfg.OnResult(a, 0, errDropped)
	}
	return false
}

var errDropped = errors.New("alert dropped: queue full")

// IsDropped reports whether an OnResult error means the alert was dropped.
func IsDropped(err error) bool { return errors.Is(err, errDropped) }

// Dropped is the number of alerts dropped so far.
func (h *Hook) Dropped() uint64 { return h.dropped.Load() }

// Close stops accepting alerts, delivers the queued ones until ctx ends
// (then abandons the rest, retries included) and waits for the goroutine.
func (h *Hook) Close(ctx context.Context) error {
	h.mu.Lock()
	if !h.closed {
		h.closed = true
		close(h.q)
	}
	h.mu.Unlock()
	select {
	case <-h.done:
		return nil
	case <-ctx.Done():
		h.cancel()
		<-h.done
		return fmt.Errorf("alert: undelivered alerts abandoned: %w", ctx.Err())
	}
}

func (h *Hook) run() {
	defer close(h.done)
	defer h.cancel()
	for a := range h.q {
		attempts, err := h.deliver(a)
		if err != nil {
			h.log.Error("alert not delivered", "kind", a.Kind, "group", a.Group, "attempts", attempts, "err", err)
		}
		if h.cfg.OnResult != nil {
			h.cfg.OnResult(a, attempts, err)
		}
	}
}

// deliver tries a until it is delivered everywhere or retries run out.
func (h *Hook) deliver(a Alert) (int, error) {
	body, err := json.Marshal(a)
	if err != nil {
		return 0, err
	}
	webhookDone, commandDone := h.cfg.Webhook == "", len(h.cfg.Command) == 0
	delay := h.cfg.Backoff
	var last error
	for attempt := 1; ; attempt++ {
		var errs []error
		if !webhookDone {
			if err := h.post(body); err != nil {
				errs = append(errs, fmt.Errorf("webhook: %w", err))
			} else {
				webhookDone = true
			}
		}
		if !commandDone {
			if err := h.run1(a, body); err != nil {
				errs = append(errs, fmt.Errorf("command: %w", err))
			} else {
				commandDone = true
			}
		}
		last = errors.Join(errs...)
		if last == nil {
			return attempt, nil
		}
		if attempt > h.cfg.Retries || h.ctx.Err() != nil {
			return attempt, last
		}
		h.log.Warn("alert delivery failed, retrying", "kind", a.Kind, "group", a.Group, "attempt", attempt, "retry_in", delay, "err", last)
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-h.ctx.Done():
			t.Stop()
			return attempt, last
		}
		delay = min(2*delay, h.cfg.MaxBackoff)
	}
}

func (h *Hook) post(body []byte) error {
	ctx, cancel := context.WithTimeout(h.ctx, h.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.cfg.Webhook, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "sft-host-alert/1")
	resp, err := h.cfg.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s answered %s", h.cfg.Webhook, resp.Status)
	}
	return nil
}

func (h *Hook) run1(a Alert, body []byte) error {
	ctx, cancel := context.WithTimeout(h.ctx, h.cfg.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, h.cfg.Command[0], h.cfg.Command[1:]...)
	cmd.Stdin = bytes.NewReader(append(body[:len(body):len(body)], '\n'))
	cmd.Env = append(os.Environ(),
		"SFT_ALERT_KIND="+a.Kind, "SFT_ALERT_NODE="+a.Node, "SFT_ALERT_GROUP="+a.Group,
		"SFT_ALERT_RESOURCE="+a.Resource, "SFT_ALERT_REASON="+a.Reason)
	cmd.WaitDelay = time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		if len(out) > 0 {
			return fmt.Errorf("%w: %s", err, bytes.TrimSpace(out[:min(len(out), 512)]))
		}
		return err
	}
	return nil
}
