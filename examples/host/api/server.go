package api

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Server serves the API of a Backend on a unix socket (peer uid checked)
// and optionally on loopback TCP (bearer token checked).
type Server struct {
	backend Backend
	token   string
	log     *slog.Logger
	opTime  time.Duration
	srv     *http.Server
	cancel  context.CancelFunc

	mu  sync.Mutex
	lns []net.Listener
	wg  sync.WaitGroup
}

// ServerConfig configures NewServer.
type ServerConfig struct {
	// Backend answers the requests. Required.
	Backend Backend
	// Token is the bearer token TCP clients must send. TCP is refused
	// without one.
	Token string
	// Logger receives request errors. Nil discards.
	Logger *slog.Logger
	// OperationTimeout bounds a group action. Default 2 min.
	OperationTimeout time.Duration
	// AllowUID is the peer uid allowed on the unix socket besides root.
	// Default: this process's effective uid.
	AllowUID *int
}

type ctxKey int

const (
	keyConn ctxKey = iota
)

// connInfo is what the server knows about a connection.
type connInfo struct {
	unix   bool
	uid    int
	pid    int
	credOK bool
}

// NewServer returns a server; add listeners with ServeUnix and ServeTCP.
func NewServer(cfg ServerConfig) *Server {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	op := cfg.OperationTimeout
	if op <= 0 {
		op = 2 * time.Minute
	}
	allow := os.Geteuid()
	if cfg.AllowUID != nil {
		allow = *cfg.AllowUID
	}
	base, cancel := context.WithCancel(context.Background())
	s := &Server{backend: cfg.Backend, token: cfg.Token, log: log, opTime: op, cancel: cancel}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", s.status)
	mux.HandleFunc("POST /v1/groups/{name}/{action}", s.action)
	mux.HandleFunc("GET /v1/events", s.events)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeErr(w, http.StatusNotFound, fmt.Errorf("no such endpoint: %s %s", r.Method, r.URL.Path))
	})
	s.srv = &http.Server{
		Handler:           s.auth(mux, allow),
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return base },
		ConnContext:       connContext,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return s
}

// connContext records the peer credentials of unix connections.
func connContext(ctx context.Context, c net.Conn) context.Context {
	ci := &connInfo{}
	if uc, ok := c.(*net.UnixConn); ok {
		ci.unix = true
		if raw, err := uc.SyscallConn(); err == nil {
			_ = raw.Control(func(fd uintptr) {
				cred, err := unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
				if err == nil {
					ci.uid, ci.pid, ci.credOK = int(cred.Uid), int(cred.Pid), true
				}
			})
		}
	}
	return context.WithValue(ctx, keyConn, ci)
}

func (s *Server) auth(next http.Handler, allowUID int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ci, _ := r.Context().Value(keyConn).(*connInfo)
		switch {
		case ci == nil:
			writeErr(w, http.StatusForbidden, errors.New("unknown connection"))
			return
		case ci.unix:
			if !ci.credOK {
				writeErr(w, http.StatusForbidden, errors.New("cannot read the peer's credentials"))
				return
			}
			if ci.uid != allowUID && ci.uid != 0 {
				s.log.Warn("api: refused a client of another user", "uid", ci.uid, "pid", ci.pid)
				writeErr(w, http.StatusForbidden, fmt.Errorf("uid %d may not use this socket (owner uid %d)", ci.uid, allowUID))
				return
			}
		default:
			tok, ok := bearer(r.Header.Get("Authorization"))
			if s.token == "" || !ok || subtle.ConstantTimeCompare([]byte(tok), []byte(s.token)) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="sft"`)
				writeErr(w, http.StatusUnauthorized, errors.New("missing or wrong bearer token"))
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// Serve serves on ln until Close. It returns at once.
func (s *Server) Serve(ln net.Listener) {
	s.mu.Lock()
	s.lns = append(s.lns, ln)
	s.mu.Unlock()
	s.wg.Go(func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("api: serve", "addr", ln.Addr().String(), "err", err)
		}
	})
}

// Close ends every stream, stops the listeners and waits for the requests
// in flight (bounded by ctx).
func (s *Server) Close(ctx context.Context) error {
	s.cancel() // ends event streams and waiting actions
	err := s.srv.Shutdown(ctx)
	if err != nil {
		_ = s.srv.Close()
	}
	s.wg.Wait()
	return err
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeErr(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, ErrorBody{Error: err.Error()})
}

func (s *Server) status(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.backend.Status())
}

func (s *Server) action(w http.ResponseWriter, r *http.Request) {
	group, action := r.PathValue("name"), r.PathValue("action")
	ctx, cancel := context.WithTimeout(r.Context(), s.opTime)
	defer cancel()
	var err error
	switch action {
	case "online":
		err = s.backend.Online(ctx, group)
	case "offline":
		err = s.backend.Offline(ctx, group)
	case "clear":
		err = s.backend.Clear(ctx, group)
	case "move":
		var req MoveRequest
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16))
		dec.DisallowUnknownFields()
		if derr := dec.Decode(&req); derr != nil {
			writeErr(w, http.StatusBadRequest, fmt.Errorf("move: want a JSON body {\"node\": NAME}: %v", derr))
			return
		}
		if req.Node == "" {
			writeErr(w, http.StatusBadRequest, errors.New("move: node is required"))
			return
		}
		err = s.backend.Move(ctx, group, req.Node)
	default:
		writeErr(w, http.StatusNotFound, fmt.Errorf("unknown action %q (want online, offline, clear or move)", action))
		return
	}
	if err != nil {
		code := http.StatusInternalServerError
		switch {
		case errors.Is(err, ErrNotFound):
			// Said once: `no such group "x"`, whatever the backend wrapped.
			writeErr(w, http.StatusNotFound, fmt.Errorf("%w %q", ErrNotFound, group))
			return
		case errors.Is(err, ErrConflict):
			code = http.StatusConflict
		case errors.Is(err, context.DeadlineExceeded):
			code = http.StatusGatewayTimeout
		}
		writeErr(w, code, fmt.Errorf("%s %s: %w", action, group, err))
		return
	}
	res := ActionResult{Group: group, Action: action}
	for _, g := range s.backend.Status().Groups {
		if g.Name == group {
			res.Status = g
		}
	}
	writeJSON(w, http.StatusOK, res)
}

// events streams NDJSON: the history, then (with follow=1) live events
// until the client goes away or the node stops.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	follow := r.URL.Query().Get("follow")
	f := follow == "1" || follow == "true"
	history, live, stop := s.backend.Events(f)
	defer stop()
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	for _, e := range history {
		if enc.Encode(e) != nil {
			return
		}
	}
	fl, _ := w.(http.Flusher)
	if fl != nil {
		fl.Flush()
	}
	if !f {
		return
	}
	for {
		select {
		case <-r.Context().Done():
			return
		case e, ok := <-live:
			if !ok {
				return
			}
			if enc.Encode(e) != nil {
				return
			}
			if fl != nil {
				fl.Flush()
			}
		}
	}
}

// bearer returns the token of an "Authorization: Bearer TOKEN" header. The
// scheme is matched case-insensitively (RFC 7235 section 2.1), and any
// run of spaces may separate it from the token.
func bearer(h string) (string, bool) {
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimLeft(tok, " ")
	return tok, tok != ""
}
