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
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/sftkit/sft/cluster"
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
	// Stdin is read by simulate without a script file. Default os.Stdin.
	Stdin io.Reader
	// Quickstart is the default configuration. Default: the package's
	// Quickstart.
	Quickstart []byte
	// Getenv reads environment variables. Default os.Getenv.
	Getenv func(string) string
	// Signals, if set, replaces SIGINT/SIGTERM handling for run: the node
	// stops when the channel yields or closes (tests).
	Signals <-chan os.Signal
	// Exit ends the process after a second signal. Default os.Exit.
	Exit func(code int)
}

func (e Env) exit(code int) {
	if e.Exit != nil {
		e.Exit(code)
		return
	}
	os.Exit(code)
}

// Name is the command's name in usage texts. `go install
// ./examples/host/sftd` installs it under this name; `go run
// ./examples/host` runs the same program.
const Name = "sftd"

// command is one subcommand: its help (args, a sentence, an example) and
// what runs it.
type command struct {
	name, args string
	summary    string // one sentence, shown in the overview
	more       string // more sentences for the command's help
	example    string
	run        func(args []string, env Env) int
}

// commands is the command table: Main's dispatch, the usage and every
// command's -h come from it.
var commands []command

func init() {
	action := func(name string) func([]string, Env) int {
		return func(args []string, env Env) int { return cmdAction(name, args, env) }
	}
	commands = []command{
		{"run", "[-config FILE] [flags]", "Run the node on a config (default: the built-in quick start).",
			"Its groups come online, the API and metrics listen. SIGINT or SIGTERM takes every group offline in order, then stops; a second signal terminates every resource and plugin process at once and exits 128+N. A config with no resource is refused unless -allow-empty.",
			"run -config examples/host/reference.yaml", cmdRun},
		{"validate", "[FILE]", "Check a config (default: the built-in quick start).",
			"Every problem is listed as FILE:LINE:COL: PATH VALUE: REASON; what run would refuse is an error here. Problems that depend on this machine's state (a network namespace not created yet, a token file readable by others) and a config with nothing to run are warnings. Exit status 1 on errors.",
			"validate examples/host/reference.yaml", cmdValidate},
		{"status", "[-json] [client flags]", "Show the groups and resources of the running node (and, in a cluster, every node and every group's owner).",
			"RESTARTS IN PERIOD is what the restart policy counts now (events say \"restart N of THRESHOLD\"); TOTAL RESTARTS counts every restart since the node started.",
			"status", cmdStatus},
		{"online", "GROUP [client flags]", "Bring a group online and wait until it is (or failed).", "", "online web", action("online")},
		{"offline", "GROUP [client flags]", "Take a group offline and wait until it is.", "In peer mode online and offline are refused (the other node would take over a group taken offline): use move.", "offline web", action("offline")},
		{"clear", "GROUP [client flags]", "Reset a failed group's failure and restart counts; it stays offline.", "", "clear web", action("clear")},
		{"move", "GROUP NODE [client flags]", "Move a group to a node.",
			"In a cluster the owner takes the group offline first, then NODE brings it online (never online on both); a node the placement refuses (down, banned, not a possible owner, a witness) is refused with the reason. In peer mode (cluster.mode: peer) the holder takes it offline, then the other node brings it online: the manual failback. Without a cluster section only this node is a target.",
			"move web n2", cmdMove},
		{"events", "[-follow] [-json] [client flags]", "Print recent events; -follow keeps streaming new ones.", "", "events -follow", cmdEvents},
		{"simulate", "-config FILE [SCRIPT|-]", "Replay node and group events against a cluster config's placement (like crm_simulate).",
			"Needs no running node. Every node starts up and every group unplaced; the script (a file, or standard input) has one step per line: down NODE, up NODE, maintenance NODE, fail GROUP [transient|node-local|configuration], wait DURATION, move GROUP NODE, clear GROUP (# starts a comment). Each step prints what it led to; deferred decisions (failback windows, stable periods) fall due during waits. In peer mode (cluster.mode: peer) each line is a scenario instead: KEY=VALUE fields duration, host-dead, service-dead, loss (0.4 or 40%), seed, check-timeout, e.g. `duration=60s loss=40%`; each runs the watcher's decisions for every group in simulated time and says whether it would take over. An empty script runs a standard set (the holder dying, its service dying, a minute at 20 % and at 40 % loss).",
			"simulate -config cluster.yaml script.txt", cmdSimulate},
		{"version", "", "Print the module version, the VCS commit and the Go version.", "", "version", cmdVersion},
		{"help", "[COMMAND]", "Show the usage, or one command's help.", "", "help run", cmdHelp},
	}
}

func lookup(name string) (command, bool) {
	for _, c := range commands {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

const clientHelp = `Client flags: -socket PATH (or $SFT_SOCKET, or the socket named by
-config FILE, or the default socket), or -addr HOST:PORT with -token-file
FILE (or $SFT_ADDR and $SFT_TOKEN) for the loopback TCP API.
`

// usage is the overview: every command with its arguments and sentence.
func usage(w io.Writer) {
	fmt.Fprintf(w, "%s: sft's example host; runs resources and groups on this node.\n\nUsage:\n", Name)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "  %s\tRun the node on the built-in quick start (the same as `%s run`).\n", Name, Name)
	for _, c := range commands {
		fmt.Fprintf(tw, "  %s %s %s\t%s\n", Name, c.name, c.args, c.summary)
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "\n%s\n`%s help COMMAND` or `%s COMMAND -h` shows a command's flags and an example.\n", clientHelp, Name, Name)
	fmt.Fprintln(w, "Exit status: 0 success, 1 failure, 2 usage error; run: 128+N after a second signal N.")
}

// wrap breaks s into lines of at most width characters.
func wrap(s string, width int) string {
	var b strings.Builder
	n := 0
	for i, w := range strings.Fields(s) {
		if i > 0 && n+1+len(w) > width {
			b.WriteByte('\n')
			n = 0
		} else if i > 0 {
			b.WriteByte(' ')
			n++
		}
		b.WriteString(w)
		n += len(w)
	}
	return b.String()
}

// commandHelp prints one command's help: arguments, sentence, flags and
// an example.
func commandHelp(w io.Writer, c command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: %s %s %s\n\n%s\n", Name, c.name, c.args, c.summary)
	if c.more != "" {
		fmt.Fprintf(w, "%s\n", wrap(c.more, 76))
	}
	if fs != nil {
		var flags strings.Builder
		fs.SetOutput(&flags)
		fs.PrintDefaults()
		if flags.Len() > 0 {
			fmt.Fprintf(w, "\nFlags:\n%s", flags.String())
		}
	}
	if strings.Contains(c.args, "client flags") {
		fmt.Fprintf(w, "\n%s", clientHelp)
	}
	fmt.Fprintf(w, "\nExample:\n  %s %s\n", Name, c.example)
}

// Main runs the command line and returns the exit code: 0 success, 1
// failure, 2 usage error (and 128+N when run stopped at a second signal N).
func Main(args []string, env Env) int {
	if env.Getenv == nil {
		env.Getenv = os.Getenv
	}
	if env.Quickstart == nil {
		env.Quickstart = Quickstart
	}
	if env.Stdin == nil {
		env.Stdin = os.Stdin
	}
	if len(args) == 0 {
		return cmdRun(nil, env)
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case DemoHTTPCommand:
		return demoHTTP(rest, env.Stdout, env.Stderr)
	case "-h", "-help", "--help":
		usage(env.Stdout)
		return 0
	case "-version", "--version":
		return cmdVersion(nil, env)
	}
	if c, ok := lookup(cmd); ok {
		return c.run(rest, env)
	}
	fmt.Fprintf(env.Stderr, "%s: unknown command %q\n\n", Name, cmd)
	usage(env.Stderr)
	return 2
}

func cmdHelp(args []string, env Env) int {
	fs := newFlags("help", env)
	args, err := fs.parse(args)
	if err != nil {
		return parseExit(err)
	}
	switch len(args) {
	case 0:
		usage(env.Stdout)
		return 0
	case 1:
		c, ok := lookup(args[0])
		if !ok {
			fmt.Fprintf(env.Stderr, "help: unknown command %q\n", args[0])
			return 2
		}
		// The command's own -h prints its help with its flags.
		return c.run([]string{"-h"}, env)
	}
	fmt.Fprintln(env.Stderr, "help: want at most one COMMAND")
	return 2
}

// cmdVersion prints what debug.ReadBuildInfo knows: the module version
// ("(devel)" when built from a checkout), the VCS commit and time, and
// the Go version.
func cmdVersion(args []string, env Env) int {
	fs := newFlags("version", env)
	if _, err := fs.parse(args); err != nil {
		return parseExit(err)
	}
	fmt.Fprintln(env.Stdout, versionLine())
	return 0
}

func versionLine() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return Name + " (no build information) " + runtime.Version()
	}
	version := bi.Main.Version
	if version == "" {
		version = "(devel)"
	}
	var rev, at, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "+dirty"
			}
		}
	}
	commit := "commit unknown"
	if rev != "" {
		commit = "commit " + rev + dirty
		if at != "" {
			commit += " " + at
		}
	}
	return fmt.Sprintf("%s %s %s (%s) %s", Name, bi.Main.Path, version, commit, bi.GoVersion)
}

// parse parses flags interleaved with positional arguments. -h and -help
// return flag.ErrHelp after the command's help went to standard output.
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

// parseExit is the exit code for a parse error: 0 for -h, else 2.
func parseExit(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	return 2
}

// flagSet is a command's flag set: errors go to standard error, -h
// prints the command's help to standard output.
type flagSet struct {
	*flag.FlagSet
	name string
	env  Env
}

func newFlags(name string, env Env) flagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	fs.Usage = func() {} // parse prints the help or the short usage
	return flagSet{FlagSet: fs, name: name, env: env}
}

// parse parses args (flags and positional arguments interleaved). On -h
// it prints the command's help to standard output and returns
// flag.ErrHelp; on a bad flag it adds the short usage to the error flag
// printed.
func (f flagSet) parse(args []string) ([]string, error) {
	pos, err := parse(f.FlagSet, args)
	if err == nil {
		return pos, nil
	}
	c, _ := lookup(f.name)
	if errors.Is(err, flag.ErrHelp) {
		commandHelp(f.env.Stdout, c, f.FlagSet)
		f.SetOutput(f.env.Stderr)
		return nil, err
	}
	fmt.Fprintf(f.env.Stderr, "Usage: %s %s %s  (%s help %s for more)\n", Name, c.name, c.args, Name, c.name)
	return nil, err
}

// loadConfig reads path (or the quick start), applies fn and validates:
// for run (check false) with Validate, for the validate command (check
// true) with Check, whose machine-state problems are warnings.
func loadConfig(path string, env Env, check bool, fn func(*config.Config)) (cfg *config.Config, name string, warnings config.Errors, err error) {
	name, data := "quickstart.yaml (built in)", env.Quickstart
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, path, nil, err
		}
		name, data = path, b
	}
	cfg, pos, err := config.Parse(name, data)
	if err != nil {
		return nil, name, nil, err
	}
	if fn != nil {
		fn(cfg)
	}
	self, err := os.Executable()
	if err != nil {
		return nil, name, nil, err
	}
	reg, done, err := node.ValidationRegistryFor(context.Background(), cfg.Plugins)
	if err != nil {
		return nil, name, nil, err
	}
	defer done()
	if check {
		warnings, err = cfg.Check(context.Background(), name, pos, reg, self)
	} else {
		err = cfg.Validate(context.Background(), name, pos, reg, self)
	}
	if err != nil {
		return nil, name, warnings, err
	}
	return cfg, name, warnings, nil
}

// plural is "1 group", "2 groups".
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

func printWarnings(w io.Writer, ws config.Errors) {
	for _, e := range ws {
		fmt.Fprintf(w, "warning: %v\n", e)
	}
}

func cmdValidate(args []string, env Env) int {
	fs := newFlags("validate", env)
	file := fs.String("config", "", "config `file` (the same as the FILE argument)")
	nodeName := fs.String("node", "", "node `name` (overrides node.name, as run -node does)")
	pos, err := fs.parse(args)
	if err != nil {
		return parseExit(err)
	}
	if len(pos) > 1 || (len(pos) == 1 && *file != "") {
		fmt.Fprintln(env.Stderr, "validate: want at most one config FILE")
		return 2
	}
	if len(pos) == 1 {
		*file = pos[0]
	}
	cfg, name, warnings, err := loadConfig(*file, env, true, func(c *config.Config) {
		if *nodeName != "" {
			c.Node.Name = *nodeName
		}
	})
	printWarnings(env.Stderr, warnings)
	if err != nil {
		var es config.Errors
		if errors.As(err, &es) {
			fmt.Fprintf(env.Stderr, "%s\n%s: %s\n", err, name, plural(len(es), "problem", "problems"))
		} else {
			fmt.Fprintf(env.Stderr, "%s: %v\n", name, err)
		}
		return 1
	}
	nres := 0
	for _, g := range cfg.Groups {
		nres += len(g.Resources)
	}
	ok := "ok"
	if len(warnings) > 0 {
		ok = "ok with " + plural(len(warnings), "warning", "warnings")
	}
	fmt.Fprintf(env.Stdout, "%s: %s (%s, %s)\n", name, ok, plural(len(cfg.Groups), "group", "groups"), plural(nres, "resource", "resources"))
	return 0
}

func cmdRun(args []string, env Env) int {
	fs := newFlags("run", env)
	file := fs.String("config", "", "config `file` (default: the built-in quick start)")
	socket := fs.String("socket", "", "API unix socket `path` (overrides api.socket)")
	metrics := fs.String("metrics-listen", "", "metrics `host:port` (overrides metrics.listen; \"off\" disables)")
	nodeName := fs.String("node", "", "node `name` (overrides node.name)")
	mode := fs.String("plugins", "", "plugin `mode`: process or inprocess (overrides plugins.mode)")
	allowEmpty := fs.Bool("allow-empty", false, "run even if the config has no resource (the node then manages nothing)")
	pos, err := fs.parse(args)
	if err != nil {
		return parseExit(err)
	}
	if len(pos) > 0 {
		fmt.Fprintf(env.Stderr, "run: unexpected argument %q (use -config FILE)\n", pos[0])
		return 2
	}
	cfg, name, _, err := loadConfig(*file, env, false, func(c *config.Config) {
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
	if cfg.Empty() && !*allowEmpty {
		fmt.Fprintf(env.Stderr, "run: %s has no resources: this node would manage nothing (-allow-empty runs it anyway)\n", name)
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
	var (
		nodeMu  sync.Mutex
		running *node.Node
		// aborting closes at the second signal; abortCode then yields
		// the exit code once Abort is done (and env.exit was called).
		aborting  = make(chan struct{})
		abortCode = make(chan int, 1)
	)
	go func() {
		s, ok := <-sigs
		if ok {
			fmt.Fprintf(env.Stderr, "received %v: stopping (every group goes offline; a second signal terminates everything at once)\n", s)
		}
		cancel()
		s, ok = <-sigs
		if !ok {
			return
		}
		fmt.Fprintf(env.Stderr, "second signal (%v): terminating every resource and plugin process, then exiting\n", s)
		close(aborting)
		nodeMu.Lock()
		n := running
		nodeMu.Unlock()
		if n != nil {
			n.Abort(abortBound)
		}
		code := 128 + 15
		if sig, ok := s.(syscall.Signal); ok {
			code = 128 + int(sig)
		}
		env.exit(code)
		abortCode <- code // only reached when env.Exit returns (tests)
	}()
	if env.Signals == nil {
		go watchGoRun(ctx, env, cancel)
	}
	quick := *file == ""
	err = node.Run(ctx, node.Options{
		Config: cfg,
		Stderr: env.Stderr,
		Ready: func(n *node.Node) {
			nodeMu.Lock()
			running = n
			nodeMu.Unlock()
			banner(env.Stdout, n, name, quick)
		},
	})
	select {
	case <-aborting: // Abort unblocked the graceful stop: the abort exits
		return <-abortCode
	default:
	}
	if err != nil {
		fmt.Fprintf(env.Stderr, "host: %v\n", err)
		return 1
	}
	fmt.Fprintln(env.Stdout, "host: stopped cleanly")
	return 0
}

// abortBound bounds each step of the second-signal exit: Terminate of
// every resource (in parallel), then the plugin processes' stop.
const abortBound = 2 * time.Second

// watchGoRun makes the node notice the death of `go run`: go run does not
// pass SIGTERM on to the program it built, and dies, leaving the node
// running as an orphan. When this process was started by a `go` process,
// a parent change (the parent died; the node was re-parented) stops the
// node as SIGTERM would. A node started any other way is left alone (a
// shell that exits after `sftd run &` must not stop it).
func watchGoRun(ctx context.Context, env Env, stop func()) {
	ppid := os.Getppid()
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", ppid))
	if err != nil || strings.TrimSpace(string(comm)) != "go" {
		return
	}
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if os.Getppid() != ppid {
				fmt.Fprintf(env.Stderr, "the go run process (pid %d) is gone: stopping (every group goes offline)\n", ppid)
				stop()
				return
			}
		}
	}
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
			if u := checkURL(config.ExpandAll(r.Properties, "", n.Instance())); u != "" {
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
		base, _, _ := strings.Cut(appURL, "/healthz")
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
	c := connFlags(fs.FlagSet)
	asJSON := fs.Bool("json", false, "print the raw JSON status")
	if _, err := fs.parse(args); err != nil {
		return parseExit(err)
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
		return clientFailed(env, "status", err)
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

// PrintStatus writes the status table. RESTARTS IN PERIOD is what the
// restart policy counts now (the events' "restart N of THRESHOLD"), with
// the period; TOTAL RESTARTS counts every restart since the node started.
func PrintStatus(w io.Writer, st api.Status) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GROUP\tOWNER\tSTATE\tRESOURCE\tTYPE\tRESOURCE STATE\tRESTARTS IN PERIOD\tTOTAL RESTARTS\tLAST FAILURE")
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
			fmt.Fprintf(tw, "%s\t%s\t%s\t-\t-\t-\t-\t-\t-\n", g.Name, g.Owner, gstate)
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
			inPeriod := strconv.Itoa(r.RestartsInPeriod)
			if r.RestartPeriod != "" {
				inPeriod += " in " + shortDuration(r.RestartPeriod)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", gname, owner, gs, r.Name, r.Type, rstate, inPeriod, r.RestartsTotal, oneLine(last))
		}
	}
	_ = tw.Flush()
	for _, n := range notes {
		fmt.Fprintln(w, n)
	}
	if st.Cluster != nil {
		printCluster(w, *st.Cluster, st.Time)
	}
	if st.Peer != nil {
		printPeer(w, *st.Peer, st.Time)
	}
}

// printCluster writes the cluster part of the status: this node's lease,
// the raft leader, every node with its state and evidence, every group's
// owner, epoch and reason.
func printCluster(w io.Writer, cs cluster.Status, now time.Time) {
	lease := "not held"
	if cs.Lease {
		lease = "held, " + cs.LeaseMargin.Round(time.Millisecond).String() + " left"
	}
	leader := cs.Leader
	if leader == "" {
		leader = "(none)"
	}
	fmt.Fprintf(w, "\nCluster (seen from %s): leader %s, lease %s, raft index %d\n", cs.Node, leader, lease, cs.Index)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tROLE\tSTATE\tSINCE\tHEARD\tEVIDENCE")
	for _, n := range cs.Nodes {
		role := "voter"
		if n.Witness {
			role = "witness"
		}
		since := "-"
		if !n.Since.IsZero() {
			since = now.Sub(n.Since).Round(time.Second).String() + " ago"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%t\t%s\n", n.Name, role, n.State, since, n.Heard, oneLine(orDash(n.Reason)))
	}
	_ = tw.Flush()
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GROUP\tOWNER\tEPOCH\tKIND\tLOCAL\tREASON")
	for _, g := range cs.Groups {
		owner := g.Owner
		switch {
		case owner == "" && g.Failed:
			owner = "(offline, failed)"
		case owner == "" && g.Stopped:
			owner = "(offline by hand)"
		case owner == "":
			owner = "(none)"
		case g.MoveTo != "":
			owner += " -> " + g.MoveTo
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", g.Name, owner, g.Epoch, orDash(string(g.Kind)), g.Local, oneLine(orDash(g.Reason)))
	}
	_ = tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// shortDuration drops the zero units of a Go duration string: "15m0s" is
// "15m", "1h0m0s" is "1h".
func shortDuration(s string) string {
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// clientFailed prints a client command's error; when no node listens
// there, it says how to start one.
func clientFailed(env Env, cmd string, err error) int {
	fmt.Fprintf(env.Stderr, "%s: %v\n", cmd, err)
	if errors.Is(err, api.ErrUnreachable) && (errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED)) {
		fmt.Fprintf(env.Stderr, "%s: no node is running there: start one with `%s run` (or `go run ./examples/host`), or point -socket/-addr at it\n", cmd, Name)
	}
	return 1
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
	c := connFlags(fs.FlagSet)
	pos, err := fs.parse(args)
	if err != nil {
		return parseExit(err)
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
		return clientFailed(env, action, err)
	}
	fmt.Fprintf(env.Stdout, "group %s: %s\n", res.Group, res.Status.State)
	return 0
}

func cmdMove(args []string, env Env) int {
	fs := newFlags("move", env)
	c := connFlags(fs.FlagSet)
	pos, err := fs.parse(args)
	if err != nil {
		return parseExit(err)
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
		return clientFailed(env, "move", err)
	}
	if res.Status.Epoch != 0 { // a cluster: the state shown is the answering node's
		fmt.Fprintf(env.Stdout, "group %s: owned by %s (epoch %d)\n", res.Group, res.Status.Owner, res.Status.Epoch)
		return 0
	}
	if res.Status.Placement != "" { // peer mode: likewise, without epochs
		fmt.Fprintf(env.Stdout, "group %s: owned by %s (%s)\n", res.Group, orDash(res.Status.Owner), res.Status.Placement)
		return 0
	}
	fmt.Fprintf(env.Stdout, "group %s: %s on %s\n", res.Group, res.Status.State, res.Status.Owner)
	return 0
}

func cmdEvents(args []string, env Env) int {
	fs := newFlags("events", env)
	c := connFlags(fs.FlagSet)
	follow := fs.Bool("follow", false, "keep streaming new events")
	fs.BoolVar(follow, "f", false, "short for -follow")
	asJSON := fs.Bool("json", false, "print one JSON object per line")
	if _, err := fs.parse(args); err != nil {
		return parseExit(err)
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
		return clientFailed(env, "events", err)
	}
	return 0
}
