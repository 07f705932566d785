package node

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sftkit/sft/cluster"
	"github.com/sftkit/sft/cluster/peer"
	"github.com/sftkit/sft/examples/host/alert"
	"github.com/sftkit/sft/examples/host/api"
	"github.com/sftkit/sft/examples/host/config"
	"github.com/sftkit/sft/monitor"
	"github.com/sftkit/sft/plugins"
	"github.com/sftkit/sft/resource"
)

// Options configure Run.
type Options struct {
	// Config is the validated configuration. Required.
	Config *config.Config
	// Logger is the structured event log. Nil: built from Config.Log
	// (JSON or text, on stderr or the configured file).
	Logger *slog.Logger
	// Registry, if set, replaces the bundled types (tests).
	Registry *resource.Registry
	// Self replaces "${self}" in properties. Default: os.Executable().
	Self string
	// Ready, if set, is called once the node listens and its groups are
	// added, before the autostart groups are online.
	Ready func(*Node)
	// Stderr is where the log goes when Config.Log.File is empty.
	// Default os.Stderr.
	Stderr io.Writer
}

// Node is a running host node: a monitor, its groups, the API, metrics,
// the event log and the alert hook.
type Node struct {
	cfg       config.Config
	name      string
	log       *slog.Logger
	mon       *monitor.Monitor
	met       *metrics
	hook      *alert.Hook
	autostart map[string]bool
	instance  string // replaces config.InstancePlaceholder

	socketPath  string
	tcpAddr     string
	metricsAddr string

	evMu      sync.Mutex
	seq       uint64
	ring      []api.Event
	followers map[chan api.Event]struct{}
	evClosed  bool
	degraded  map[string]bool
	// restarts per "group/resource": every restart (total) and the times
	// of those the restart policy still counts (its history, reset with
	// the group's failure), guarded by evMu.
	restarts map[string]*restartCount
	periods  map[string]time.Duration // "group/resource" -> restart period

	// For Abort: every resource opened, and the plugin host.
	opened  []resource.Resource
	phost   *plugins.Pool
	abortMu sync.Mutex
	aborted bool

	// With a cluster section: the cluster node (nil otherwise) and the
	// end of its event consumer.
	cl     *cluster.Node
	clDone chan struct{}
	// In peer mode (cluster.mode: peer) the peer node instead (see
	// peer.go); clDone ends its event consumer.
	pn *peer.Node
}

// restartCount is one resource's restart tally (the total is the
// monitor's, in its status).
type restartCount struct {
	recent []time.Time
}

// NodeName is the node's name (api.Backend).
func (n *Node) NodeName() string { return n.name }

// SocketPath is the API's unix socket.
func (n *Node) SocketPath() string { return n.socketPath }

// TCPAddr is the API's TCP address, if any.
func (n *Node) TCPAddr() string { return n.tcpAddr }

// MetricsAddr is the metrics listener's address, if any.
func (n *Node) MetricsAddr() string { return n.metricsAddr }

// Instance is the random token this node start put in place of
// config.InstancePlaceholder.
func (n *Node) Instance() string { return n.instance }

func randomToken() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:])
}

// Config is the node's configuration (with defaults).
func (n *Node) Config() config.Config { return n.cfg }

// NewLogger builds the event log described by l. The returned closer
// closes the log file, if any.
func NewLogger(l config.Log, stderr io.Writer) (*slog.Logger, io.Closer, error) {
	var w = stderr
	var c io.Closer = io.NopCloser(nil)
	if l.File != "" {
		f, err := os.OpenFile(l.File, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			return nil, nil, fmt.Errorf("log.file: %w", err)
		}
		w, c = f, f
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(l.Level)); err != nil {
		lvl = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: lvl}
	var h slog.Handler = slog.NewJSONHandler(w, opts)
	if l.Format == "text" {
		h = slog.NewTextHandler(w, opts)
	}
	return slog.New(h), c, nil
}

// minLevel wraps a handler to drop records below min.
type minLevel struct {
	slog.Handler
	min slog.Level
}

func (h minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}
func (h minLevel) WithAttrs(as []slog.Attr) slog.Handler {
	return minLevel{h.Handler.WithAttrs(as), h.min}
}
func (h minLevel) WithGroup(g string) slog.Handler { return minLevel{h.Handler.WithGroup(g), h.min} }

// Run runs a node until ctx ends, then shuts it down gracefully: every
// group offline (in reverse dependency order), the plugin processes
// stopped, the API closed. It returns nil after a clean shutdown.
func Run(ctx context.Context, opts Options) (err error) {
	if opts.Config == nil {
		return errors.New("node: no config")
	}
	cfg := opts.Config.WithDefaults()
	stderr := opts.Stderr
	if stderr == nil {
		stderr = os.Stderr
	}
	log := opts.Logger
	if log == nil {
		l, closer, err := NewLogger(cfg.Log, stderr)
		if err != nil {
			return err
		}
		defer closer.Close()
		log = l
	}
	self := opts.Self
	if self == "" {
		if self, err = os.Executable(); err != nil {
			return fmt.Errorf("finding this executable: %w", err)
		}
	}
	n := &Node{
		cfg:       cfg,
		name:      cfg.NodeName(),
		log:       log.With("node", cfg.NodeName()),
		autostart: map[string]bool{},
		followers: map[chan api.Event]struct{}{},
		degraded:  map[string]bool{},
		instance:  randomToken(),
		restarts:  map[string]*restartCount{},
		periods:   map[string]time.Duration{},
	}
	var cleanups []func()
	defer func() {
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
	}()

	// Types: plugin processes or in-process.
	procEvents := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sft_plugin_process_events_total",
		Help: "Plugin process life events: started, relaunched (after an exit or a kill), exited (unexpectedly).",
	}, []string{"event"})
	for _, k := range []string{plugins.ProcessStarted, plugins.ProcessRelaunched, plugins.ProcessExited} {
		procEvents.WithLabelValues(k)
	}
	reg := opts.Registry
	var phost *plugins.Pool
	onProcess := func(e plugins.ProcessEvent) { procEvents.WithLabelValues(e.Kind).Inc() }
	if reg == nil {
		r, h, err := openTypes(ctx, cfg.Plugins, cfg.NodeName(), n.log.With("component", "plugins"), onProcess)
		if err != nil {
			return err
		}
		reg, phost = r, h
		n.phost = h
		if h != nil {
			cleanups = append(cleanups, func() {
				_ = h.Close()
				n.log.Info("plugin processes stopped")
			})
		}
	}

	ext, err := openExternal(ctx, cfg.Plugins, reg, n.log.With("component", "plugins"), onProcess)
	if err != nil {
		return err
	}
	cleanups = append(cleanups, ext.Close)

	// Monitor, metrics, event consumer.
	n.met = newMetrics(func() monitor.Status { return n.mon.Status() })
	n.met.reg.MustRegister(procEvents)
	ext.register(n.met.reg)
	monLevel := slog.LevelWarn
	if cfg.Log.Level == "debug" {
		monLevel = slog.LevelDebug
	}
	clustered := cfg.Cluster != nil
	witness := clustered && cfg.Cluster.IsWitness(n.name)
	n.mon = monitor.New(monitor.Config{
		Logger:   slog.New(minLevel{n.log.Handler(), monLevel}).With("component", "monitor"),
		Observer: n.met.observeCall,
		Managed:  clustered, // the cluster decides where a failed group goes
	})
	n.hook = alert.New(alert.Config{
		Webhook: cfg.Alerts.Webhook, Command: cfg.Alerts.Command,
		Timeout: cfg.Alerts.Timeout.D(), Retries: cfg.Alerts.Retries,
		Backoff: cfg.Alerts.Backoff.D(), MaxBackoff: cfg.Alerts.MaxBackoff.D(),
		Queue: cfg.Alerts.Queue, Logger: n.log.With("component", "alert"),
		OnResult: n.met.observeAlert,
	})
	sub := n.mon.Subscribe(eventBuffer(cfg.Groups))
	consumed := make(chan struct{})
	go func() { defer close(consumed); n.consume(sub) }()
	monClosed := false
	cleanups = append(cleanups, func() {
		if !monClosed {
			_ = n.mon.Close(context.Background())
		}
		<-consumed
		hctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = n.hook.Close(hctx)
	})

	// Groups (a witness hosts none).
	for _, g := range cfg.Groups {
		if witness {
			break
		}
		spec := monitor.GroupSpec{Name: g.Name}
		for _, r := range g.Resources {
			rlog := n.log.With("group", g.Name, "resource", r.Name, "type", r.Type)
			res, err := reg.Open(ctx, r.Type, resource.OpenRequest{
				Name:       g.Name + "/" + r.Name,
				Properties: resource.Properties(config.ExpandAll(r.Properties, self, n.instance)),
				Logger:     rlog,
			})
			if err != nil {
				for _, rs := range spec.Resources {
					closeResource(rs.Resource)
				}
				return fmt.Errorf("group %s: resource %s: %w", g.Name, r.Name, err)
			}
			n.abortMu.Lock()
			n.opened = append(n.opened, res)
			n.abortMu.Unlock()
			key := g.Name + "/" + r.Name
			n.restarts[key] = &restartCount{}
			n.periods[key] = r.Restart.PolicyRestart().WithDefaults().Period
			var tt resource.Timing
			if t, ok := reg.Lookup(r.Type); ok {
				if tp, ok := t.(resource.TimingProvider); ok {
					tt = tp.DefaultTiming()
				}
			}
			spec.Resources = append(spec.Resources, monitor.ResourceSpec{
				Name: r.Name, Type: r.Type, Resource: res, DependsOn: r.DependsOn,
				Restart: r.Restart.PolicyRestart(), Timing: r.Timing.PolicyTiming(), TypeTiming: tt,
			})
		}
		if err := n.mon.AddGroup(spec); err != nil {
			for _, rs := range spec.Resources {
				closeResource(rs.Resource)
			}
			return err
		}
		n.autostart[g.Name] = g.IsAutostart()
		n.met.initGroup(g.Name)
	}

	// API and metrics listeners.
	token, err := cfg.API.ReadToken()
	if err != nil {
		return err
	}
	srv := api.NewServer(api.ServerConfig{Backend: n, Token: token, Logger: n.log.With("component", "api"), OperationTimeout: cfg.API.OperationTimeout.D()})
	n.socketPath = cfg.SocketPath()
	uln, err := api.ListenUnix(n.socketPath, cfg.API.Socket == "")
	if err != nil {
		return err
	}
	srv.Serve(uln)
	cleanups = append(cleanups, func() {
		actx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Close(actx)
	})
	if cfg.API.TCP != "" {
		tln, err := api.ListenTCP(cfg.API.TCP)
		if err != nil {
			return err
		}
		n.tcpAddr = tln.Addr().String()
		srv.Serve(tln)
	}
	if cfg.Metrics.Listen != "" {
		mln, err := net.Listen("tcp", cfg.Metrics.Listen)
		if err != nil {
			return fmt.Errorf("metrics.listen: %w", err)
		}
		n.metricsAddr = mln.Addr().String()
		mux := http.NewServeMux()
		mux.Handle("/metrics", n.met.handler())
		mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/metrics", http.StatusFound)
		})
		msrv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		var mwg sync.WaitGroup
		mwg.Go(func() { _ = msrv.Serve(mln) })
		cleanups = append(cleanups, func() {
			mctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			if msrv.Shutdown(mctx) != nil {
				_ = msrv.Close()
			}
			mwg.Wait()
		})
	}
	if cfg.Cluster.IsPeer() {
		if err := n.startPeer(cfg); err != nil {
			return err
		}
		cleanups = append(cleanups, func() {
			_ = n.pn.Close() // no-op after the shutdown's Close
			<-n.clDone
		})
	} else if clustered {
		var local cluster.Local
		if !witness {
			local = n.mon
		}
		if err := n.startCluster(cfg, local); err != nil {
			return err
		}
		cleanups = append(cleanups, func() {
			_ = n.cl.Close(context.Background()) // no-op after the shutdown's Close
			<-n.clDone
		})
	}
	pluginPid := 0
	if phost != nil {
		pluginPid = phost.Pid()
		n.met.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "sft_plugin_process_pid",
			Help: "Process id of the shared plugin process (0 while none runs); a change means it was relaunched.",
		}, func() float64 { return float64(phost.Pid()) }))
	}
	n.log.Info("node started", "groups", len(cfg.Groups), "socket", n.socketPath, "tcp", n.tcpAddr,
		"metrics", n.metricsAddr, "plugins", cfg.Plugins.Mode, "plugin_pid", pluginPid, "pid", os.Getpid())
	if opts.Ready != nil {
		opts.Ready(n)
	}

	// Autostart.
	startCtx, stopStarting := context.WithCancel(ctx)
	var starting sync.WaitGroup
	for _, g := range cfg.Groups {
		if !g.IsAutostart() || clustered { // in a cluster, the cluster brings groups online
			continue
		}
		if !g.IsAutostart() {
			continue
		}
		starting.Go(func() {
			if err := n.mon.Online(startCtx, g.Name); err != nil && startCtx.Err() == nil {
				n.log.Error("autostart: group did not come online", "group", g.Name, "err", err)
			}
		})
	}

	<-ctx.Done()
	n.log.Info("shutting down: taking every group offline", "timeout", cfg.ShutdownTimeout.String())
	stopStarting()
	starting.Wait()
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout.D())
	defer cancel()
	if n.pn != nil {
		// Stop watching (taking nothing over while shutting down); the
		// monitor then takes every group offline and the peer takes them.
		if err := n.pn.Close(); err != nil {
			n.log.Error("shutdown: peer node", "err", err)
		}
	}
	if n.cl != nil {
		// Offline here (another node may take the groups), then leave.
		if err := n.cl.Close(sctx); err != nil {
			n.log.Error("shutdown: cluster node", "err", err)
		}
	}
	cerr := n.mon.Close(sctx)
	monClosed = true
	if cerr != nil {
		n.log.Error("shutdown: not every group went offline cleanly", "err", cerr)
	} else {
		n.log.Info("every group is offline")
	}
	if sctx.Err() != nil {
		return fmt.Errorf("shutdown timed out after %s: %w", cfg.ShutdownTimeout, cerr)
	}
	return nil
}

func closeResource(r resource.Resource) {
	if c, ok := r.(resource.Closer); ok {
		_ = c.Close()
	}
}

// consume reads the monitor's events: event log, metrics, alerts, history
// and followers. It ends when the monitor closes.
// eventBuffer sizes the node's subscription to the monitor: a plugin crash
// publishes about 5.2 events per resource at once (failure pushed, Failed,
// restart, OnlinePending, Online, and the groups'), 5,200 with 1,000
// resources, more than the 4,096 the buffer had; 8 per resource, at least
// 4,096, absorbs one such burst while the consumer is busy. What is still
// missed is counted (sft_events_dropped_total); the status's restart
// total (and the monitor's failure counters, monitor.ResourceStatus) are
// level-triggered and complete whatever was dropped.
func eventBuffer(groups []config.Group) int {
	n := 0
	for _, g := range groups {
		n += len(g.Resources)
	}
	return max(4096, 8*n)
}

func (n *Node) consume(sub *monitor.Subscription) {
	defer func() {
		n.evMu.Lock()
		n.evClosed = true
		for ch := range n.followers {
			close(ch)
			delete(n.followers, ch)
		}
		n.evMu.Unlock()
	}()
	for e := range sub.C() {
		if n.cfg.Cluster == nil {
			e = localize(e)
		}
		n.countRestarts(e)
		n.met.observeEvent(e)
		n.logEvent(e)
		n.alerts(e)
		n.publish(api.FromMonitor(0, n.name, e))
	}
}

func (n *Node) logEvent(e monitor.Event) {
	lvl := slog.LevelInfo
	switch e.Kind {
	case monitor.EventGroupFailed, monitor.EventCallDeadlocked:
		lvl = slog.LevelError
	case monitor.EventFailurePushed, monitor.EventCallTimedOut, monitor.EventsDropped, monitor.EventRestart:
		lvl = slog.LevelWarn
	case monitor.EventStateChanged, monitor.EventGroupStateChanged:
		if e.To == resource.StateFailed {
			lvl = slog.LevelWarn
		}
	}
	attrs := []slog.Attr{slog.String("kind", e.Kind.String()), slog.String("group", e.Group)}
	if e.Resource != "" {
		attrs = append(attrs, slog.String("resource", e.Resource), slog.String("type", e.Type))
	}
	if e.Kind == monitor.EventStateChanged || e.Kind == monitor.EventGroupStateChanged {
		attrs = append(attrs, slog.String("from", e.From.String()), slog.String("to", e.To.String()))
	}
	if e.Reason != "" {
		attrs = append(attrs, slog.String("reason", e.Reason))
	}
	if e.Class != "" {
		attrs = append(attrs, slog.String("class", e.Class))
	}
	if e.Method != "" {
		attrs = append(attrs, slog.String("method", e.Method))
	}
	if e.Kind == monitor.EventRestart {
		attrs = append(attrs, slog.Duration("delay", e.Delay))
	}
	if e.Kind == monitor.EventGroupFailed {
		attrs = append(attrs, slog.Bool("failover", e.Failover), slog.Duration("retry_after", e.RetryAfter))
	}
	if e.Dropped > 0 {
		attrs = append(attrs, slog.Uint64("dropped", e.Dropped))
	}
	n.log.LogAttrs(context.Background(), lvl, "event", attrs...)
}

// alerts turns events into alerts (except in peer mode, see consumePeer):
// failed or failover on EventGroupFailed,
// recovery when a group that failed is Online again. A resource restarted
// in place by its policy raises no alert (the events and metrics show it).
func (n *Node) alerts(e monitor.Event) {
	if n.cfg.Cluster.IsPeer() {
		return // peer mode's events raise the alerts (consumePeer)
	}
	switch {
	case e.Kind == monitor.EventGroupFailed:
		n.degraded[e.Group] = true
		kind := alert.KindFailed
		if e.Failover {
			kind = alert.KindFailover
		}
		n.fire(alert.Alert{Kind: kind, Time: e.Time, Node: n.name, Group: e.Group, Resource: e.Resource, Reason: e.Reason, Failover: e.Failover})
	case e.Kind == monitor.EventGroupStateChanged && e.To == resource.StateOnline && n.degraded[e.Group]:
		delete(n.degraded, e.Group)
		n.fire(alert.Alert{Kind: alert.KindRecovery, Time: e.Time, Node: n.name, Group: e.Group, Reason: "group is online again"})
	}
}

func (n *Node) fire(a alert.Alert) {
	for _, k := range n.cfg.Alerts.On {
		if k == a.Kind {
			n.hook.Fire(a)
			return
		}
	}
}

// Status implements api.Backend.
func (n *Node) Status() api.Status {
	st := n.mon.Status()
	now := time.Now()
	out := api.Status{Node: n.name, Time: now, Groups: make([]api.GroupStatus, 0, len(st.Groups))}
	n.evMu.Lock()
	defer n.evMu.Unlock()
	for _, g := range st.Groups {
		g.Reason = localizeReason(g.Reason)
		ag := api.GroupStatus{GroupStatus: g, Owner: n.name, Autostart: n.autostart[g.Name]}
		for _, r := range g.Resources {
			r.LastFailure = localizeReason(r.LastFailure)
			ar := api.ResourceStatus{ResourceStatus: r, RestartPeriod: n.periods[g.Name+"/"+r.Name].String()}
			ar.RestartsTotal = int(r.RestartsTotal) // level-triggered: complete even when events were dropped
			if c := n.restarts[g.Name+"/"+r.Name]; c != nil {
				ar.RestartsInPeriod = recent(c.recent, now, n.periods[g.Name+"/"+r.Name])
			}
			ag.Resources = append(ag.Resources, ar)
		}
		out.Groups = append(out.Groups, ag)
	}
	if n.cl != nil {
		n.clusterStatus(&out)
	}
	if n.pn != nil {
		n.peerStatus(&out)
	}
	return out
}

// recent counts the times within period before now.
func recent(ts []time.Time, now time.Time, period time.Duration) int {
	c := 0
	for _, t := range ts {
		if now.Sub(t) < period {
			c++
		}
	}
	return c
}

// countRestarts keeps the restart tallies: every EventRestart counts in
// the policy's window; the window starts anew when a
// failed group recovers or is cleared, as the monitor's policy history
// does.
func (n *Node) countRestarts(e monitor.Event) {
	n.evMu.Lock()
	defer n.evMu.Unlock()
	switch {
	case e.Kind == monitor.EventRestart:
		if c := n.restarts[e.Group+"/"+e.Resource]; c != nil {
			c.recent = append(c.recent, e.Time)
			if len(c.recent) > 1000 { // the threshold's bound: older ones no longer count
				c.recent = c.recent[1:]
			}
		}
	case e.Kind == monitor.EventGroupStateChanged && e.To == resource.StateOnline && n.degraded[e.Group]:
		n.resetRecentLocked(e.Group)
	}
}

func (n *Node) resetRecentLocked(group string) {
	for key, c := range n.restarts {
		if strings.HasPrefix(key, group+"/") {
			c.recent = nil
		}
	}
}

func mapErr(group string, err error) error {
	if errors.Is(err, monitor.ErrNoSuchGroup) {
		return fmt.Errorf("%w %q", api.ErrNotFound, group)
	}
	return err
}

// Online implements api.Backend. In a cluster it places the group again
// after Offline (cluster-wide) and returns once that is committed.
func (n *Node) Online(ctx context.Context, group string) error {
	if n.cl != nil {
		return clusterErr(n.cl.Online(ctx, group))
	}
	if n.pn != nil {
		return n.peerRefuse(group, "online")
	}
	return mapErr(group, n.mon.Online(ctx, group))
}

// Offline implements api.Backend. In a cluster it takes the group
// offline cluster-wide (left out of placement until Online).
func (n *Node) Offline(ctx context.Context, group string) error {
	if n.cl != nil {
		return clusterErr(n.cl.Offline(ctx, group))
	}
	if n.pn != nil {
		return n.peerRefuse(group, "offline")
	}
	return mapErr(group, n.mon.Offline(ctx, group))
}

// Clear implements api.Backend. In a cluster it also clears the group's
// failed state and bans cluster-wide.
func (n *Node) Clear(ctx context.Context, group string) error {
	if n.cl != nil {
		if err := n.cl.Clear(ctx, group); err != nil {
			return clusterErr(err)
		}
	}
	err := n.mon.Clear(ctx, group)
	if n.cl != nil && errors.Is(err, monitor.ErrNoSuchGroup) {
		err = nil // a witness runs no group itself
	}
	if err == nil {
		n.evMu.Lock()
		n.resetRecentLocked(group)
		n.evMu.Unlock()
	}
	return mapErr(group, err)
}

// Move implements api.Backend. In a cluster the owner drains the group
// and node gets it (cluster.Node.Move); on a single node a group can only
// be "moved" to this node (which brings it online here).
func (n *Node) Move(ctx context.Context, group, node string) error {
	if n.cl != nil {
		return clusterErr(n.cl.Move(ctx, group, node))
	}
	if n.pn != nil {
		if _, err := n.mon.GroupStatus(group); err != nil {
			return mapErr(group, err)
		}
		return clusterErr(n.pn.Move(ctx, group, node))
	}
	if _, err := n.mon.GroupStatus(group); err != nil {
		return mapErr(group, err)
	}
	if node != n.name {
		return fmt.Errorf("%w: no cluster section: group %s can only run on this node (%s), not %s", api.ErrConflict, group, n.name, node)
	}
	return mapErr(group, n.mon.Online(ctx, group))
}

// Abort is the last resort of a second SIGINT/SIGTERM: it does not wait
// for an orderly shutdown. Every resource the node opened is Terminated,
// in parallel, each bounded by bound; then the plugin processes are
// stopped (also bounded by bound) and the API socket is removed. It
// returns when that is done or bound has passed twice; the caller exits.
// Abort is safe to call once the node is Ready and at most once matters.
func (n *Node) Abort(bound time.Duration) {
	n.abortMu.Lock()
	if n.aborted {
		n.abortMu.Unlock()
		return
	}
	n.aborted = true
	opened := slices.Clone(n.opened)
	n.abortMu.Unlock()
	var wg sync.WaitGroup
	for _, r := range opened {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), bound)
			defer cancel()
			if err := r.Terminate(ctx); err != nil {
				n.log.Error("abort: terminate failed", "err", err)
			}
		})
	}
	waitFor(&wg, bound)
	if n.phost != nil {
		var pw sync.WaitGroup
		pw.Go(func() { _ = n.phost.Close() })
		waitFor(&pw, bound)
	}
	if n.socketPath != "" {
		_ = os.Remove(n.socketPath)
	}
	n.log.Warn("aborted: resources terminated, plugin processes stopped", "resources", len(opened))
}

// waitFor waits for wg, at most d.
func waitFor(wg *sync.WaitGroup, d time.Duration) {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	}
}

// localize rewrites an event for a single node, where nothing can move: a
// failure whose policy asks for a failover is a plain failure here (no
// failover alert, no "failing the group over"), and a failure a resource
// pushed says what happened rather than naming a health check.
func localize(e monitor.Event) monitor.Event {
	e.Reason = localizeReason(e.Reason)
	if e.Kind == monitor.EventGroupFailed {
		e.Failover = false
	}
	return e
}

// The monitor's and the policy's wording this node rewrites (see
// localize). Once they say it themselves, these replacements find nothing.
const (
	pushedPrefix   = "health check failed: failure reported by the resource: "
	pushedLast     = "failure reported by the resource: "
	failoverSuffix = ": failing the group over"
	noFailover     = ": failed; no other node to fail over to"
)

func localizeReason(s string) string {
	s = strings.ReplaceAll(s, pushedPrefix, "")
	s = strings.ReplaceAll(s, pushedLast, "")
	return strings.ReplaceAll(s, failoverSuffix, noFailover)
}

// Events implements api.Backend.
func (n *Node) Events(follow bool) ([]api.Event, <-chan api.Event, func()) {
	n.evMu.Lock()
	defer n.evMu.Unlock()
	hist := append([]api.Event(nil), n.ring...)
	if !follow {
		return hist, nil, func() {}
	}
	ch := make(chan api.Event, 256)
	if n.evClosed {
		close(ch)
		return hist, ch, func() {}
	}
	n.followers[ch] = struct{}{}
	return hist, ch, func() {
		n.evMu.Lock()
		defer n.evMu.Unlock()
		if _, ok := n.followers[ch]; ok {
			delete(n.followers, ch)
			close(ch)
		}
	}
}
