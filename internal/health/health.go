package health

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/sftkit/sft/internal/proc"
	"github.com/sftkit/sft/resource"
)

// Defaults for the zero fields of a Config.
const (
	DefaultInterval     = time.Second
	DefaultTimeout      = 2 * time.Second
	DefaultExpectStatus = http.StatusOK
)

// maxBody is how much of an HTTP response body a check reads (and drops).
const maxBody = 64 << 10

// Config describes one check. Exactly one of TCP, HTTP and Command is set.
// The JSON names are the property names inside a check property.
type Config struct {
	// TCP is a "host:port" to connect to; the check passes when the
	// connection is established (it is closed at once).
	TCP string `json:"tcp,omitempty"`
	// HTTP is an http:// or https:// URL to GET; the check passes when the
	// response status equals ExpectStatus.
	HTTP string `json:"http,omitempty"`
	// ExpectStatus is the status an HTTP check wants. Default 200. Only
	// valid with HTTP.
	ExpectStatus int `json:"expect_status,omitempty"`
	// Command is an argv (no shell) run per attempt; the check passes when
	// it exits 0. Command[0] is looked up in PATH when it has no slash.
	Command []string `json:"command,omitempty"`
	// Interval is the pause between attempts while waiting for readiness
	// and the period of a periodic health check. Default 1 s.
	Interval resource.Duration `json:"interval,omitempty"`
	// Timeout bounds one attempt. Default 2 s.
	Timeout resource.Duration `json:"timeout,omitempty"`
}

// IsZero reports whether c describes no check at all.
func (c Config) IsZero() bool {
	return c.TCP == "" && c.HTTP == "" && len(c.Command) == 0 && c.ExpectStatus == 0 &&
		c.Interval == 0 && c.Timeout == 0
}

// Validate checks c. Errors are resource configuration errors whose field is
// prefix + "." + the property name ("readiness.http"), so that they name the
// property as the user wrote it. Validate has no side effects apart from
// looking Command[0] up in PATH.
func (c Config) Validate(prefix string) error {
	f := func(name string) string {
		if prefix == "" {
			return name
		}
		return prefix + "." + name
	}
	set := 0
	for _, b := range []bool{c.TCP != "", c.HTTP != "", len(c.Command) > 0} {
		if b {
			set++
		}
	}
	if set != 1 {
		return resource.ConfigError(prefix, nil, "set exactly one of tcp, http, command (got %d)", set)
	}
	if c.Interval < 0 {
		return resource.ConfigError(f("interval"), c.Interval.D().String(), "must not be negative")
	}
	if c.Timeout < 0 {
		return resource.ConfigError(f("timeout"), c.Timeout.D().String(), "must not be negative")
	}
	if c.ExpectStatus != 0 && c.HTTP == "" {
		return resource.ConfigError(f("expect_status"), c.ExpectStatus, "only valid with http")
	}
	if c.ExpectStatus != 0 && (c.ExpectStatus < 100 || c.ExpectStatus > 599) {
		return resource.ConfigError(f("expect_status"), c.ExpectStatus, "not an HTTP status (100-599)")
	}
	switch {
	case c.TCP != "":
		host, port, err := net.SplitHostPort(c.TCP)
		if err != nil {
			return resource.ConfigError(f("tcp"), c.TCP, "want host:port: %v", err)
		}
		if host == "" {
			return resource.ConfigError(f("tcp"), c.TCP, "empty host")
		}
		if _, err := net.LookupPort("tcp", port); err != nil || port == "0" {
			return resource.ConfigError(f("tcp"), c.TCP, "bad port %q", port)
		}
	case c.HTTP != "":
		u, err := url.Parse(c.HTTP)
		if err != nil {
			return resource.ConfigError(f("http"), c.HTTP, "not a URL: %v", err)
		}
		if u.Scheme != "http" && u.Scheme != "https" {
			return resource.ConfigError(f("http"), c.HTTP, "scheme must be http or https")
		}
		if u.Host == "" {
			return resource.ConfigError(f("http"), c.HTTP, "no host")
		}
	default:
		if c.Command[0] == "" {
			return resource.ConfigError(f("command"), c.Command, "empty program name")
		}
		if _, err := exec.LookPath(c.Command[0]); err != nil {
			return resource.ConfigError(f("command"), c.Command[0], "not an executable: %v", err)
		}
	}
	return nil
}

// withDefaults returns c with its zero fields set to the defaults.
func (c Config) withDefaults() Config {
	if c.Interval == 0 {
		c.Interval = resource.Duration(DefaultInterval)
	}
	if c.Timeout == 0 {
		c.Timeout = resource.Duration(DefaultTimeout)
	}
	if c.HTTP != "" && c.ExpectStatus == 0 {
		c.ExpectStatus = DefaultExpectStatus
	}
	return c
}

// Checker is anything that can be checked once. *Check implements it; tests
// and callers can supply their own to Wait.
type Checker interface {
	// Check makes one attempt and returns nil when it passes. It returns
	// when ctx ends, with an error wrapping ctx.Err().
	Check(ctx context.Context) error
}

// Check is a validated check with defaults applied. It is safe for
// concurrent use.
type Check struct {
	cfg    Config
	name   string
	client *http.Client
}

// New validates cfg (see Config.Validate; name is the property prefix used in
// errors and in String) and returns the check.
func New(name string, cfg Config) (*Check, error) {
	if err := cfg.Validate(name); err != nil {
		return nil, err
	}
	c := &Check{cfg: cfg.withDefaults(), name: name}
	if c.cfg.HTTP != "" {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.DisableKeepAlives = true
		tr.Proxy = nil // a health check talks to its target, never via a proxy
		c.client = &http.Client{
			Transport: tr,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		}
	}
	return c, nil
}

// Config returns the check's configuration with defaults applied.
func (c *Check) Config() Config { return c.cfg }

// Interval is the configured interval (default 1 s).
func (c *Check) Interval() time.Duration { return c.cfg.Interval.D() }

// Timeout is the configured per-attempt timeout (default 2 s).
func (c *Check) Timeout() time.Duration { return c.cfg.Timeout.D() }

// String describes the check: "tcp 127.0.0.1:80", "http GET <url> want 200",
// "command [/bin/true]".
func (c *Check) String() string {
	switch {
	case c.cfg.TCP != "":
		return "tcp " + c.cfg.TCP
	case c.cfg.HTTP != "":
		return fmt.Sprintf("http GET %s want %d", c.cfg.HTTP, c.cfg.ExpectStatus)
	}
	return fmt.Sprintf("command %q", c.cfg.Command)
}

// Check makes one attempt, bounded by the configured timeout and by ctx.
func (c *Check) Check(ctx context.Context) error {
	ctx, cancel := context.WithTimeoutCause(ctx, c.Timeout(),
		fmt.Errorf("timed out after %v", c.Timeout()))
	defer cancel()
	var err error
	switch {
	case c.cfg.TCP != "":
		err = c.checkTCP(ctx)
	case c.cfg.HTTP != "":
		err = c.checkHTTP(ctx)
	default:
		err = c.checkCommand(ctx)
	}
	if err != nil && ctx.Err() != nil {
		// Say why the context ended (our timeout or the caller's ctx)
		// and keep ctx.Err() in the chain for errors.Is.
		return fmt.Errorf("%s: %w", c, ctxErr(ctx))
	}
	return err
}

func (c *Check) checkTCP(ctx context.Context) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", c.cfg.TCP)
	if err != nil {
		return fmt.Errorf("%s: %w", c, err)
	}
	return conn.Close()
}

func (c *Check) checkHTTP(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.cfg.HTTP, nil)
	if err != nil {
		return fmt.Errorf("%s: %w", c, err)
	}
	req.Header.Set("User-Agent", "sft-health-check")
	resp, err := c.client.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", c, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
	_ = resp.Body.Close()
	if resp.StatusCode != c.cfg.ExpectStatus {
		return fmt.Errorf("%s: got status %d", c, resp.StatusCode)
	}
	return nil
}

func (c *Check) checkCommand(ctx context.Context) error {
	cmd := exec.Command(c.cfg.Command[0], c.cfg.Command[1:]...)
	var out bytes.Buffer
	cmd.Stdout = &limitedWriter{w: &out, n: 512}
	cmd.Stderr = cmd.Stdout
	cmd.WaitDelay = time.Second // a leftover holding the pipe cannot hang Wait
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	// Start from the spawner thread: Pdeathsig follows the forking
	// thread, and a runtime thread may exit under us (see package proc).
	sp := proc.Acquire()
	defer sp.Release()
	if err := sp.Start(cmd); err != nil {
		return fmt.Errorf("%s: %w", c, err)
	}
	pgid := cmd.Process.Pid
	// The leader is not reaped before cmd.Wait below, so its pid (the
	// group id) stays ours while we signal the group.
	stop := context.AfterFunc(ctx, func() { _ = proc.SignalGroup(pgid, syscall.SIGKILL) })
	_, werr := proc.WaitExit(pgid)
	stop()
	// Nothing the check started may outlive it.
	_ = proc.SignalGroup(pgid, syscall.SIGKILL)
	err := cmd.Wait()
	if werr != nil && err == nil {
		err = werr
	}
	if err != nil {
		msg := strings.TrimSpace(out.String())
		if msg != "" {
			return fmt.Errorf("%s: %w: %s", c, err, msg)
		}
		return fmt.Errorf("%s: %w", c, err)
	}
	return nil
}

// limitedWriter keeps the first n bytes written and drops the rest.
type limitedWriter struct {
	w io.Writer
	n int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if l.n > 0 {
		k := min(len(p), l.n)
		_, _ = l.w.Write(p[:k])
		l.n -= k
	}
	return len(p), nil
}

// Wait calls c.Check until it passes, pausing interval between attempts
// (the first attempt is at once). onAttempt, if not nil, is called after
// every attempt with its 1-based number and result. Wait returns nil when a
// check passes, or an error wrapping ctx's error and the last check error
// when ctx ends first.
func Wait(ctx context.Context, c Checker, interval time.Duration, onAttempt func(attempt int, err error)) error {
	var t *time.Timer
	for attempt := 1; ; attempt++ {
		err := c.Check(ctx)
		if onAttempt != nil {
			onAttempt(attempt, err)
		}
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("not ready after %d attempts: %w (last: %w)", attempt, ctxErr(ctx), err)
		}
		if t == nil {
			t = time.NewTimer(interval)
			defer t.Stop()
		} else {
			t.Reset(interval)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not ready after %d attempts: %w (last: %w)", attempt, ctxErr(ctx), err)
		case <-t.C:
		}
	}
}

// ctxErr returns ctx's cause, wrapped together with ctx.Err() when they
// differ, so that errors.Is(err, context.Canceled) keeps working.
func ctxErr(ctx context.Context) error {
	cause, err := context.Cause(ctx), ctx.Err()
	if cause == nil || cause == err {
		return err
	}
	return fmt.Errorf("%w (%w)", cause, err)
}
