package plugins

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"

	"github.com/sftkit/sft/internal/proc"
	"github.com/sftkit/sft/resource"
)

// Pool runs the plugin processes of one plugin binary and hands out its
// types. Instances of all types share one process unless isolated. A Pool is
// safe for concurrent use.
type Pool struct {
	cfg    Config
	pin    []byte
	logger *slog.Logger
	shared *lineage
	start  func(ctx context.Context, l *lineage) (*gen, error)
	types  map[string]*remoteType
	order  []string

	// ctx is canceled by Close: it interrupts backoff waits and background
	// relaunches, and every launch that starts after it fails.
	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	isolated map[*lineage]struct{}
	closed   bool
	launches sync.WaitGroup // launches in flight (Close waits for them)
	bg       sync.WaitGroup // reaping of dead processes, background relaunches
	opens    chan struct{}  // bounds the Opens in flight (maxOpens)
	treeOf   func(dir string) tree
	spawner  *proc.Spawner // forks the plugins (nil in-process)
	sockDir  string        // 0700 directory for the plugins' unix sockets; removed by Close
}

// Launch starts the plugin binary, asks it which types it serves and
// returns a Pool handing them out. The process is relaunched as needed
// later; Close stops it.
func Launch(ctx context.Context, cfg Config) (*Pool, error) {
	if cfg.Path != "" {
		// An explicit binary must be one nobody else can replace (the
		// running executable, the default, is trusted as it is).
		if err := CheckBinary(cfg.Path); err != nil {
			return nil, resource.ConfigError("Path", cfg.Path, "%v", err)
		}
	}
	cfg, pin, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	sockDir, err := makeSocketDir(cfg.Logger)
	if err != nil {
		return nil, err
	}
	h := newPool(cfg, pin)
	h.sockDir = sockDir
	h.spawner = proc.Acquire()
	h.start = h.startProcess
	h.shared = h.newLineage()
	return h.init(ctx)
}

func newPool(cfg Config, pin []byte) *Pool {
	h := &Pool{
		cfg:      cfg,
		pin:      pin,
		logger:   cfg.Logger.With("plugin", cfg.Path),
		types:    make(map[string]*remoteType),
		isolated: make(map[*lineage]struct{}),
		opens:    make(chan struct{}, maxOpens),
		treeOf:   treeOf,
	}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	return h
}

func (h *Pool) notify(e ProcessEvent) {
	if h.cfg.OnProcess != nil {
		h.cfg.OnProcess(e)
	}
}

// init starts the shared process and learns the types.
func (h *Pool) init(ctx context.Context) (*Pool, error) {
	g, err := h.shared.ensure(ctx, false)
	if err != nil {
		_ = h.Close()
		return nil, err
	}
	for _, ti := range g.info.GetTypes() {
		t := &remoteType{h: h, name: ti.GetName(), timing: timingFromPB(ti), isolated: slices.Contains(h.cfg.Isolate, ti.GetName())}
		h.types[t.name] = t
		h.order = append(h.order, t.name)
	}
	for _, name := range h.cfg.Isolate {
		if h.types[name] == nil {
			_ = h.Close()
			return nil, resource.ConfigError("Isolate", name, "type not served by plugin %s (served: %v)", h.cfg.Path, h.order)
		}
	}
	return h, nil
}

// Types returns the types the plugin serves, in its order.
func (h *Pool) Types() []resource.Type {
	out := make([]resource.Type, 0, len(h.order))
	for _, name := range h.order {
		out = append(out, h.types[name])
	}
	return out
}

// Type returns the type named name.
func (h *Pool) Type(name string) (resource.Type, bool) {
	t, ok := h.types[name]
	return t, ok
}

// Register adds every type of the plugin to r.
func (h *Pool) Register(r *resource.Registry) error {
	for _, t := range h.Types() {
		if err := r.Register(t); err != nil {
			return err
		}
	}
	return nil
}

// Pid is the process id of the shared plugin process, 0 when none runs.
func (h *Pool) Pid() int {
	if g := h.shared.current(); g != nil {
		return g.pid
	}
	return 0
}

// Close stops every plugin process of h: a graceful stop bounded by
// StopTimeout, then the process group is killed. It interrupts relaunch
// backoffs. Instances still open fail with ErrPluginExited afterwards, and
// every later call (Open, Online, Offline, Terminate, ...) fails at once
// with it.
func (h *Pool) Close() error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	lines := []*lineage{h.shared}
	for l := range h.isolated {
		lines = append(lines, l)
	}
	h.mu.Unlock()
	h.cancel()
	var wg sync.WaitGroup
	for _, l := range lines {
		wg.Go(l.shutdown)
	}
	wg.Wait()
	h.launches.Wait() // a start in flight shuts its process down itself
	h.bg.Wait()
	if h.spawner != nil {
		h.spawner.Release()
	}
	if h.sockDir != "" {
		if err := os.RemoveAll(h.sockDir); err != nil {
			return fmt.Errorf("plugins: removing the socket directory: %w", err)
		}
	}
	return nil
}

// beginLaunch registers a launch in flight; false once h is closed.
func (h *Pool) beginLaunch() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	h.launches.Add(1)
	return true
}

func (h *Pool) newLineage() *lineage {
	return &lineage{h: h, launch: make(chan struct{}, 1)}
}

// newIsolated returns a process lineage for one instance.
func (h *Pool) newIsolated() (*lineage, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, errPoolClosed
	}
	l := h.newLineage()
	h.isolated[l] = struct{}{}
	return l, nil
}

func (h *Pool) dropIsolated(l *lineage) {
	h.mu.Lock()
	delete(h.isolated, l)
	h.mu.Unlock()
	l.shutdown()
}

var errPoolClosed = fmt.Errorf("%w: plugin pool closed", ErrPluginExited)
