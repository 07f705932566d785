package peer

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sftkit/sft/internal/health"
)

func TestCheckBody(t *testing.T) {
	body := "status: ready"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/moved" {
			http.Redirect(w, r, "/", http.StatusFound)
			return
		}
		_, _ = w.Write([]byte(body))
	}))
	defer srv.Close()
	mk := func(path, want string) checker {
		c, err := newChecker(Group{Name: "web", Check: health.Config{HTTP: srv.URL + path}, CheckBody: want})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	if err := mk("/", "ready").Check(context.Background()); err != nil {
		t.Fatalf("matching body: %v", err)
	}
	if err := mk("/", "degraded").Check(context.Background()); err == nil || !strings.Contains(err.Error(), "degraded") {
		t.Fatalf("wrong body: %v", err)
	}
	if err := mk("/moved", "ready").Check(context.Background()); err == nil || !strings.Contains(err.Error(), "302") {
		t.Fatalf("redirect not followed must fail on status: %v", err)
	}
	cfg := validConfig()
	cfg.Groups[0].CheckBody = "x"
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "groups[0].check_body") {
		t.Fatalf("check_body without http accepted: %v", err)
	}
}
