package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

// demoHTTP is the hidden `demo-http` subcommand: the quick start's
// application. It serves on a loopback address only:
//
//	GET /        a greeting with its pid
//	GET /healthz 200 "ok" (the readiness and health check); with
//	             ?instance=T, 200 only if it was started with --instance T
//	             (409 otherwise: another node's app holds the port)
//	GET /pid     its process id (so you can kill it)
//	GET /node    the --name it was given (the cluster demo and tests: which
//	             node answered on the virtual IP)
//
// It exits 0 on SIGTERM or SIGINT. --allow-any-address lifts the loopback
// rule for the namespace demo (netns-demo.sh), where it serves on the
// virtual IP inside a network namespace of its own.
func demoHTTP(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo-http", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8380", "loopback `address` to serve on")
	instance := fs.String("instance", "", "`token` this app was started with: /healthz?instance=T answers 200 only for this token (409 otherwise), so a readiness check can tell this app from another one on the same port")
	name := fs.String("name", "", "`name` GET /node answers with (the node it runs on)")
	anyAddr := fs.Bool("allow-any-address", false, "allow a non-loopback address (the namespace demo serves on its virtual IP inside a private network namespace)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ap, err := netip.ParseAddrPort(*listen)
	if err != nil || (!ap.Addr().IsLoopback() && !*anyAddr) {
		fmt.Fprintf(stderr, "demo-http: --listen %q: want a loopback address like 127.0.0.1:8380\n", *listen)
		return 2
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(stderr, "demo-http: %v\n", err)
		return 1
	}
	pid := os.Getpid()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "hello from the sft demo app (pid %d)\n", pid)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if got := r.URL.Query().Get("instance"); got != "" && got != *instance {
			w.WriteHeader(http.StatusConflict)
			fmt.Fprintf(w, "not instance %q: this is pid %d of another instance\n", got, pid)
			return
		}
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /node", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, *name+"\n") })
	mux.HandleFunc("GET /pid", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, strconv.Itoa(pid)+"\n") })
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	fmt.Fprintf(stdout, "demo-http: serving on http://%s (pid %d)\n", ln.Addr(), pid)
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintf(stderr, "demo-http: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, "demo-http: stopped")
	return 0
}
