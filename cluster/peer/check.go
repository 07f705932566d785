package peer

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/sftkit/sft/internal/health"
)

// checker is a group's functional check.
type checker interface {
	Check(ctx context.Context) error
	Interval() time.Duration
	Timeout() time.Duration
}

// newChecker builds the group's check: internal/health's, or, when the
// group wants an HTTP body (CheckBody), an HTTP GET that must answer the
// expected status and a body containing CheckBody.
func newChecker(g Group) (checker, error) {
	c, err := health.New(g.Name+".check", g.Check)
	if err != nil || g.CheckBody == "" {
		return c, err
	}
	return &bodyCheck{hc: c, url: g.Check.HTTP, status: g.Check.ExpectStatus, body: g.CheckBody,
		client: &http.Client{
			Transport:     &http.Transport{DisableKeepAlives: true},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}}, nil
}

type bodyCheck struct {
	hc        *health.Check
	url, body string
	status    int
	client    *http.Client
}

func (b *bodyCheck) Interval() time.Duration { return b.hc.Interval() }
func (b *bodyCheck) Timeout() time.Duration  { return b.hc.Timeout() }

func (b *bodyCheck) Check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, b.Timeout())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.url, nil)
	if err != nil {
		return err
	}
	resp, err := b.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return fmt.Errorf("GET %s: reading body: %w", b.url, err)
	}
	want := b.status
	if want == 0 {
		want = http.StatusOK
	}
	if resp.StatusCode != want {
		return fmt.Errorf("GET %s: status %d, want %d", b.url, resp.StatusCode, want)
	}
	if !strings.Contains(string(data), b.body) {
		return fmt.Errorf("GET %s: body does not contain %q", b.url, b.body)
	}
	return nil
}
