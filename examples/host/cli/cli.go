package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/sftkit/sft/examples/host/api"
	"github.com/sftkit/sft/examples/host/config"
	"github.com/sftkit/sft/examples/host/node"
)

// DemoHTTPCommand is the hidden subcommand that runs the quick start's
// demo application.
const DemoHTTPCommand = "demo-http"

// Env is what Main needs from the process.
type Env struct {
	Stdout, Stderr io.Writer
	// Quickstart is the embedded default configuration.
	Quickstart []byte
	// Getenv reads environment variables. Default os.Getenv.
	Getenv func(string) string
	// Signals, if set, replaces SIGINT/SIGTERM handling for run: the node
	// stops when the channel yields or closes (tests).
	Signals <-chan os.Signal
}

const usage = `sft example host: runs resources and groups on this node.

Usage:
  host                              run the node on the built-in quick-start config
  host run [-config FILE] [flags]   run the node (Ctrl-C / SIGTERM: graceful stop)
  host validate [FILE]              check a config (default: the quick start)
  host status [-json]               table of groups and resources
  host online GROUP                 bring a group online and wait
  host offline GROUP                take a group offline and wait
  host clear GROUP                  reset a failed group (it stays offline)
  host move GROUP NODE              move a group (only to this node until the cluster layer lands)
  host events [-follow] [-json]     recent events; -follow streams new ones
  host simulate                     replay failures against a config (needs the cluster layer)

Client commands find the node by -socket PATH (or $SFT_SOCKET, or the socket
named by -config FILE, or the default socket), or by -addr HOST:PORT with
-token-file FILE (or $SFT_ADDR and $SFT_TOKEN) for the loopback TCP API.
`

// Main runs the command line and returns the exit code: 0 success, 1
// failure, 2 usage error.
func Main(args []string, env Env) int {
	if env.Getenv == nil {
		env.Getenv = os.Getenv
	}
	if len(args) == 0 {
		return cmdRun(nil, env)
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "run":
		return cmdRun(rest, env)
	case "validate":
		return cmdValidate(rest, env)
	case "status":
		return cmdStatus(rest, env)
	case "online", "offline", "clear":
		return cmdAction(cmd, rest, env)
	case "move":
		return cmdMove(rest, env)
	case "events":
		return cmdEvents(rest, env)
	case "simulate":
		fmt.Fprintln(env.Stderr, "simulate: not available until the cluster layer lands (it replays node and group failures against the cluster's placement)")
		return 1
	case DemoHTTPCommand:
		return demoHTTP(rest, env.Stdout, env.Stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(env.Stdout, usage)
		return 0
	}
	fmt.Fprintf(env.Stderr, "unknown command %q\n\n%s", cmd, usage)
	return 2
}

// parse parses flags interleaved with positional arguments.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func newFlags(name string, env Env) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	return fs
}

// loadConfig reads path (or the quick start) and applies fn before
// validating.
func loadConfig(path string, env Env, fn func(*config.Config)) (*config.Config, string, error) {
	name, data := "quickstart.yaml (built in)", env.Quickstart
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, path, err
		}
		name, data = path, b
	}
	cfg, pos, err := config.Parse(name, data)
	if err != nil {
		return nil, name, err
	}
	if fn != nil {
		fn(cfg)
	}
	self, err := os.Executable()
	if err != nil {
		return nil, name, err
	}
	reg, done, err := node.ValidationRegistryFor(context.Background(), cfg.Plugins)
	if err != nil {
		return nil, name, err
	}
	defer done()
	if err := cfg.Validate(context.Background(), name, pos, reg, self); err != nil {
		return nil, name, err
	}
	return cfg, name, nil
}

func cmdValidate(args []string, env Env) int {
	fs := newFlags("validate", env)
	file := fs.String("config", "", "config `file` (default: the built-in quick start)")
	pos, err := parse(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) > 1 || (len(pos) == 1 && *file != "") {
		fmt.Fprintln(env.Stderr, "validate: want at most one config file")
		return 2
	}
	if len(pos) == 1 {
		*file = pos[0]
	}
	cfg, name, err := loadConfig(*file, env, nil)
	if err != nil {
		var es config.Errors
		if errors.As(err, &es) {
			fmt.Fprintf(env.Stderr, "%s\n%s: %d problem(s)\n", err, name, len(es))
		} else {
			fmt.Fprintf(env.Stderr, "%s: %v\n", name, err)
		}
		return 1
	}
	nres := 0
	for _, g := range cfg.Groups {
		nres += len(g.Resources)
	}
	fmt.Fprintf(env.Stdout, "%s: ok (%d groups, %d resources)\n", name, len(cfg.Groups), nres)
	return 0
}

func cmdRun(args []string, env Env) int {
	fs := newFlags("run", env)
	file := fs.String("config", "", "config `file` (default: the built-in quick start)")
	socket := fs.String("socket", "", "API unix socket `path` (overrides api.socket)")
	metrics := fs.String("metrics-listen", "", "metrics `host:port` (overrides metrics.listen; \"off\" disables)")
	nodeName := fs.String("node", "", "node `name` (overrides node.name)")
	mode := fs.String("plugins", "", "plugin `mode`: process or inprocess (overrides plugins.mode)")
	pos, err := parse(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) > 0 {
		fmt.Fprintf(env.Stderr, "run: unexpected argument %q (use -config FILE)\n", pos[0])
		return 2
	}
	cfg, name, err := loadConfig(*file, env, func(c *config.Config) {
		if *socket != "" {
			c.API.Socket = *socket
		}
		switch *metrics {
		case "":
		case "off":
			c.Metrics.Listen = ""
		default:
			c.Metrics.Listen = *metrics
		}
		if *nodeName != "" {
			c.Node.Name = *nodeName
		}
		if *mode != "" {
			c.Plugins.Mode = *mode
		}
	})
	if err != nil {
		fmt.Fprintf(env.Stderr, "%v\n", err)
		fmt.Fprintf(env.Stderr, "%s: invalid configuration\n", name)
		return 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := env.Signals
	if sigs == nil {
		ch := make(chan os.Signal, 2)
		signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
		defer signal.Stop(ch)
		sigs = ch
	}
	go func() {
		s, ok := <-sigs
		if ok {
			fmt.Fprintf(env.Stderr, "received %v: stopping (every group goes offline)\n", s)
		}
		cancel()
		if _, ok := <-sigs; ok {
			fmt.Fprintln(env.Stderr, "second signal: exiting at once")
			os.Exit(1)
		}
	}()
	quick := *file == ""
	err = node.Run(ctx, node.Options{
		Config: cfg,
		Stderr: env.Stderr,
		Ready:  func(n *node.Node) { banner(env.Stdout, n, name, quick) },
	})
	if err != nil {
		fmt.Fprintf(env.Stderr, "host: %v\n", err)
		return 1
	}
	fmt.Fprintln(env.Stdout, "host: stopped cleanly")
	return 0
}

// banner tells a new user where everything is.
func banner(w io.Writer, n *node.Node, name string, quick bool) {
	cfg := n.Config()
	self := "go run ./examples/host"
	if exe, err := os.Executable(); err == nil && !strings.Contains(exe, "go-build") {
		self = exe
	}
	sockFlag := ""
	if cfg.API.Socket != "" {
		sockFlag = " -socket " + n.SocketPath()
	}
	fmt.Fprintf(w, "sft host: node %q is up (pid %d, config %s, plugins %s)\n", n.NodeName(), os.Getpid(), name, cfg.Plugins.Mode)
	fmt.Fprintf(w, "  API:      unix socket %s\n", n.SocketPath())
	if n.TCPAddr() != "" {
		fmt.Fprintf(w, "  API:      http://%s (bearer token required)\n", n.TCPAddr())
	}
	if n.MetricsAddr() != "" {
		fmt.Fprintf(w, "  metrics:  http://%s/metrics\n", n.MetricsAddr())
	}
	var appURL string
	for _, g := range cfg.Groups {
		for _, r := range g.Resources {
			line := fmt.Sprintf("  group %s: resource %s (%s)", g.Name, r.Name, r.Type)
			if u := checkURL(r.Properties); u != "" {
				line += " checked at " + u
				if appURL == "" {
					appURL = u
				}
			}
			fmt.Fprintln(w, line)
		}
	}
	fmt.Fprintln(w, "Try:")
	fmt.Fprintf(w, "  %s status%s\n", self, sockFlag)
	fmt.Fprintf(w, "  %s events -follow%s\n", self, sockFlag)
	if quick && appURL != "" {
		base := strings.TrimSuffix(appURL, "/healthz")
		fmt.Fprintf(w, "  kill -9 $(curl -s %s/pid)   # the app dies; sft restarts it\n", base)
	}
	if n.MetricsAddr() != "" {
		fmt.Fprintf(w, "  curl -s http://%s/metrics | grep ^sft_\n", n.MetricsAddr())
	}
	fmt.Fprintln(w, "Stop with Ctrl-C (every group goes offline in order).")
}

func checkURL(props map[string]any) string {
	for _, k := range []string{"readiness", "health"} {
		if m, ok := props[k].(map[string]any); ok {
			if u, ok := m["http"].(string); ok {
				return u
			}
		}
	}
	return ""
}

// conn holds the client connection flags.
type conn struct {
	socket, addr, tokenFile, config *string
}

func connFlags(fs *flag.FlagSet) conn {
	return conn{
		socket:    fs.String("socket", "", "API unix socket `path` (default $SFT_SOCKET or the default socket)"),
		addr:      fs.String("addr", "", "loopback TCP API `host:port` (default $SFT_ADDR)"),
		tokenFile: fs.String("token-file", "", "`file` with the TCP API token (default $SFT_TOKEN)"),
		config:    fs.String("config", "", "take the API address from this config `file`"),
	}
}

func (c conn) client(env Env) (*api.Client, error) {
	socket, addr := *c.socket, *c.addr
	token := env.Getenv("SFT_TOKEN")
	if *c.tokenFile != "" {
		b, err := os.ReadFile(*c.tokenFile)
		if err != nil {
			return nil, err
		}
		token = strings.TrimSpace(string(b))
	}
	if *c.config != "" && socket == "" && addr == "" {
		b, err := os.ReadFile(*c.config)
		if err != nil {
			return nil, err
		}
		cfg, _, err := config.Parse(*c.config, b)
		if err != nil {
			return nil, err
		}
		socket = cfg.SocketPath()
	}
	if socket == "" && addr == "" {
		socket, addr = env.Getenv("SFT_SOCKET"), env.Getenv("SFT_ADDR")
	}
	if addr != "" && socket == "" {
		if token == "" {
			return nil, errors.New("the TCP API needs a token: -token-file FILE or $SFT_TOKEN")
		}
		return api.NewTCPClient(addr, token), nil
	}
	if socket == "" {
		socket = config.DefaultSocketPath()
	}
	return api.NewUnixClient(socket), nil
}

func cmdStatus(args []string, env Env) int {
	fs := newFlags("status", env)
	c := connFlags(fs)
	asJSON := fs.Bool("json", false, "print the raw JSON status")
	if _, err := parse(fs, args); err != nil {
		return 2
	}
	cl, err := c.client(env)
	if err != nil {
		fmt.Fprintf(env.Stderr, "status: %v\n", err)
		return 1
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := cl.Status(ctx)
	if err != nil {
		fmt.Fprintf(env.Stderr, "status: %v\n", err)
		return 1
	}
	if *asJSON {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(st)
		return 0
	}
	PrintStatus(env.Stdout, st)
	return 0
}

// PrintStatus writes the status table.
func PrintStatus(w io.Writer, st api.Status) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GROUP\tOWNER\tSTATE\tRESOURCE\tTYPE\tRESOURCE STATE\tRESTARTS\tLAST FAILURE")
	var notes []string
	for _, g := range st.Groups {
		gstate := g.State.String()
		if g.Target != g.State && !g.Failed {
			gstate += " -> " + g.Target.String()
		}
		if !g.Autostart && g.State.String() == "Offline" {
			gstate += " (manual)"
		}
		if g.Failed && g.Reason != "" {
			notes = append(notes, fmt.Sprintf("group %s failed: %s", g.Name, g.Reason))
		}
		rs := g.Resources
		if len(rs) == 0 {
			fmt.Fprintf(tw, "%s\t%s\t%s\t-\t-\t-\t-\t-\n", g.Name, g.Owner, gstate)
		}
		for i, r := range rs {
			gname, owner, gs := g.Name, g.Owner, gstate
			if i > 0 {
				gname, owner, gs = "", "", ""
			}
			rstate := r.State.String()
			if r.RestartPending {
				rstate += " (restart pending)"
			}
			last := "-"
			if r.LastFailure != "" {
				last = r.LastFailure
				if !r.LastFailureTime.IsZero() {
					last = r.LastFailureTime.Local().Format("15:04:05") + " " + last
				}
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", gname, owner, gs, r.Name, r.Type, rstate, r.Restarts, oneLine(last))
		}
	}
	_ = tw.Flush()
	for _, n := range notes {
		fmt.Fprintln(w, n)
	}
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 120 {
		s = s[:117] + "..."
	}
	return s
}

func cmdAction(action string, args []string, env Env) int {
	fs := newFlags(action, env)
	c := connFlags(fs)
	pos, err := parse(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) != 1 {
		fmt.Fprintf(env.Stderr, "%s: want exactly one GROUP\n", action)
		return 2
	}
	cl, err := c.client(env)
	if err != nil {
		fmt.Fprintf(env.Stderr, "%s: %v\n", action, err)
		return 1
	}
	defer cl.Close()
	res, err := cl.Action(context.Background(), pos[0], action)
	if err != nil {
		fmt.Fprintf(env.Stderr, "%s: %v\n", action, err)
		return 1
	}
	fmt.Fprintf(env.Stdout, "group %s: %s\n", res.Group, res.Status.State)
	return 0
}

func cmdMove(args []string, env Env) int {
	fs := newFlags("move", env)
	c := connFlags(fs)
	pos, err := parse(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) != 2 {
		fmt.Fprintln(env.Stderr, "move: want GROUP NODE")
		return 2
	}
	cl, err := c.client(env)
	if err != nil {
		fmt.Fprintf(env.Stderr, "move: %v\n", err)
		return 1
	}
	defer cl.Close()
	res, err := cl.Move(context.Background(), pos[0], pos[1])
	if err != nil {
		fmt.Fprintf(env.Stderr, "move: %v\n", err)
		return 1
	}
	fmt.Fprintf(env.Stdout, "group %s: %s on %s\n", res.Group, res.Status.State, res.Status.Owner)
	return 0
}

func cmdEvents(args []string, env Env) int {
	fs := newFlags("events", env)
	c := connFlags(fs)
	follow := fs.Bool("follow", false, "keep streaming new events")
	fs.BoolVar(follow, "f", false, "short for -follow")
	asJSON := fs.Bool("json", false, "print one JSON object per line")
	if _, err := parse(fs, args); err != nil {
		return 2
	}
	cl, err := c.client(env)
	if err != nil {
		fmt.Fprintf(env.Stderr, "events: %v\n", err)
		return 1
	}
	defer cl.Close()
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()
	enc := json.NewEncoder(env.Stdout)
	err = cl.Events(ctx, *follow, func(e api.Event) error {
		if *asJSON {
			return enc.Encode(e)
		}
		_, err := fmt.Fprintln(env.Stdout, e.String())
		return err
	})
	if err != nil {
		fmt.Fprintf(env.Stderr, "events: %v\n", err)
		return 1
	}
	return 0
}
