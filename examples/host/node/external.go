package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sftkit/sft/examples/host/config"
	"github.com/sftkit/sft/plugins"
	"github.com/sftkit/sft/resource"
)

// external is the plugin hosts of the config's plugins.external, one per
// binary. Each plugins.Pool supervises its process as the bundled one's
// is: relaunch with backoff, heartbeat, deadlock kill, pushed failures.
type external struct {
	hosts []*plugins.Pool
	paths []string
}

// openExternal launches each plugin of pc.External (checked with
// config.CheckPluginBinary and its pin) and registers the types it
// announces in its handshake into reg. A type name already in reg is an
// error naming both.
func openExternal(ctx context.Context, pc config.Plugins, reg *resource.Registry, log *slog.Logger, onProcess func(plugins.ProcessEvent)) (*external, error) {
	e := &external{}
	for i, p := range pc.External {
		h, err := launchExternal(ctx, i, p, pc, reg, log, onProcess)
		if err != nil {
			e.Close()
			return nil, err
		}
		e.hosts = append(e.hosts, h)
		e.paths = append(e.paths, p.Path)
	}
	return e, nil
}

func launchExternal(ctx context.Context, i int, p config.ExternalPlugin, pc config.Plugins, reg *resource.Registry, log *slog.Logger, onProcess func(plugins.ProcessEvent)) (*plugins.Pool, error) {
	field := fmt.Sprintf("plugins.external[%d].path", i)
	if err := config.CheckPluginBinary(p.Path); err != nil {
		return nil, &config.Error{Path: field, Value: p.Path, Msg: err.Error()}
	}
	h, err := plugins.Launch(ctx, plugins.Config{
		Path:            p.Path,
		SHA256:          p.SHA256,
		DisableAutoMTLS: !pc.AutoMTLSOn(),
		Logger:          log,
		OnProcess:       onProcess,
	})
	if err != nil {
		var re *resource.Error
		if errors.As(err, &re) && re.Field == "SHA256" {
			return nil, &config.Error{Path: fmt.Sprintf("plugins.external[%d].sha256", i), Value: p.SHA256, Msg: re.Err.Error()}
		}
		return nil, &config.Error{Path: field, Value: p.Path, Msg: fmt.Sprintf("starting the plugin: %v", err)}
	}
	for _, t := range h.Types() {
		if _, taken := reg.Lookup(t.Name()); taken {
			_ = h.Close()
			return nil, &config.Error{Path: field, Value: p.Path, Msg: fmt.Sprintf("serves type %q, which another plugin (or the bundled set) already serves", t.Name())}
		}
	}
	if err := h.Register(reg); err != nil {
		_ = h.Close()
		return nil, &config.Error{Path: field, Value: p.Path, Msg: err.Error()}
	}
	return h, nil
}

// Close stops every external plugin process.
func (e *external) Close() {
	if e == nil {
		return
	}
	for _, h := range e.hosts {
		_ = h.Close()
	}
}

// register adds sft_external_plugin_process_pid{path} to r: the pid of
// each external plugin's process (0 while none runs).
func (e *external) register(r *prometheus.Registry) {
	if e == nil || len(e.hosts) == 0 {
		return
	}
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "sft_external_plugin_process_pid",
		Help: "Process id of each external plugin's process (0 while none runs); a change means it was relaunched.",
	}, []string{"path"})
	r.MustRegister(prometheusFunc{g, e})
}

// prometheusFunc refreshes the pid gauges at every scrape.
type prometheusFunc struct {
	g *prometheus.GaugeVec
	e *external
}

func (p prometheusFunc) Describe(ch chan<- *prometheus.Desc) { p.g.Describe(ch) }
func (p prometheusFunc) Collect(ch chan<- prometheus.Metric) {
	for i, h := range p.e.hosts {
		p.g.WithLabelValues(p.e.paths[i]).Set(float64(h.Pid()))
	}
	p.g.Collect(ch)
}

// ValidationRegistryFor is ValidationRegistry plus the types of the
// external plugins in pc, launched so that their properties are validated
// by the plugin itself. Call done when validation is over; it stops them.
// Plugins that config.Validate refuses (a bad path, a writable binary) are
// left out here: Validate reports them, with their position.
func ValidationRegistryFor(ctx context.Context, pc config.Plugins) (reg *resource.Registry, done func(), err error) {
	reg = ValidationRegistry()
	e := &external{}
	log := slog.New(slog.DiscardHandler)
	for i, p := range pc.External {
		if config.CheckPluginBinary(p.Path) != nil {
			continue
		}
		h, err := launchExternal(ctx, i, p, pc, reg, log, nil)
		if err != nil {
			e.Close()
			return nil, func() {}, err
		}
		e.hosts = append(e.hosts, h)
	}
	return reg, e.Close, nil
}
