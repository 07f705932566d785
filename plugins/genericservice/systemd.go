package genericservice

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"syscall"

	sd "github.com/coreos/go-systemd/v22/dbus"
	"github.com/godbus/dbus/v5"
)

// SystemdConfig configures the systemd backend. The zero value is ready to
// use.
type SystemdConfig struct {
	// Dial returns a new, authenticated D-Bus connection to systemd (with
	// Hello done when it goes through a bus daemon). It is called three
	// times per Manager (go-systemd's method and job connections and the
	// state-watching one) and each call must return an independent
	// connection that lives until closed. Default: [DialSystemd].
	Dial func() (*dbus.Conn, error)
	// Logger receives connection events. Default: discard.
	Logger *slog.Logger
}

// SystemdFactory is the default "systemd" entry of Config.Managers: the
// systemd backend over DialSystemd, or over DialPrivate(address) when the
// resource sets an address.
func SystemdFactory(log *slog.Logger, address string) (Manager, error) {
	cfg := SystemdConfig{Logger: log}
	if address != "" {
		cfg.Dial = func() (*dbus.Conn, error) { return DialPrivate(address) }
	}
	return NewSystemd(cfg)
}

// DialSystemd connects to systemd the way systemctl does: as root over the
// private socket /run/systemd/private (no bus daemon needed), otherwise over
// the system bus.
func DialSystemd() (*dbus.Conn, error) {
	if os.Geteuid() == 0 {
		if c, err := DialPrivate("unix:path=/run/systemd/private"); err == nil {
			return c, nil
		}
	}
	c, err := dbus.SystemBusPrivate()
	if err != nil {
		return nil, err
	}
	if err := c.Auth([]dbus.Auth{dbus.AuthExternal(strconv.Itoa(os.Getuid()))}); err != nil {
		c.Close()
		return nil, err
	}
	if err := c.Hello(); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// DialPrivate connects to systemd's private bus at address (a D-Bus
// address, "unix:path=/run/systemd/private") with EXTERNAL authentication
// and no Hello. The client must run in systemd's PID namespace (systemd
// resets connections whose peer it cannot see).
func DialPrivate(address string) (*dbus.Conn, error) {
	c, err := dbus.Dial(address)
	if err != nil {
		return nil, err
	}
	if err := c.Auth([]dbus.Auth{dbus.AuthExternal(strconv.Itoa(os.Getuid()))}); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

const (
	sdDest        = "org.freedesktop.systemd1"
	sdPath        = dbus.ObjectPath("/org/freedesktop/systemd1")
	sdUnitIface   = "org.freedesktop.systemd1.Unit"
	sdManager     = "org.freedesktop.systemd1.Manager"
	propsChanged  = "org.freedesktop.DBus.Properties.PropertiesChanged"
	errNoSuchUnit = "org.freedesktop.systemd1.NoSuchUnit"
	errNoSuchProc = "org.freedesktop.systemd1.NoSuchProcess"
	errLoadFailed = "org.freedesktop.systemd1.LoadFailed"
	errMasked     = "org.freedesktop.systemd1.UnitMasked"
	errBadSetting = "org.freedesktop.systemd1.BadUnitSetting"
)

// systemd is the systemd Manager: go-systemd for methods and job
// completion, plus a connection of its own whose signals keep the watched
// units' states in memory.
type systemd struct {
	log  *slog.Logger
	conn *sd.Conn
	sig  *dbus.Conn
	ch   chan *dbus.Signal
	done chan struct{}

	mu      sync.Mutex
	closed  bool
	watches map[dbus.ObjectPath]map[*sdWatch]struct{}
}

// NewSystemd connects to systemd. Watches are fed by PropertiesChanged
// signals (systemd's Subscribe), so keeping a unit's state costs no D-Bus
// round trip per poll.
func NewSystemd(cfg SystemdConfig) (Manager, error) {
	if cfg.Dial == nil {
		cfg.Dial = DialSystemd
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	conn, err := sd.NewConnection(cfg.Dial)
	if err != nil {
		return nil, fmt.Errorf("systemd: connect: %w", err)
	}
	sig, err := cfg.Dial()
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("systemd: connect: %w", err)
	}
	m := &systemd{
		log: log, conn: conn, sig: sig,
		ch:      make(chan *dbus.Signal, 4096),
		done:    make(chan struct{}),
		watches: make(map[dbus.ObjectPath]map[*sdWatch]struct{}),
	}
	sig.Signal(m.ch)
	// Through a bus daemon signals need match rules; on the private
	// socket there is no daemon (the call fails) and systemd sends every
	// signal to every direct client anyway.
	_ = sig.AddMatchSignal(dbus.WithMatchInterface("org.freedesktop.DBus.Properties"),
		dbus.WithMatchMember("PropertiesChanged"), dbus.WithMatchPathNamespace("/org/freedesktop/systemd1/unit"))
	if err := sig.Object(sdDest, sdPath).Call(sdManager+".Subscribe", 0).Store(); err != nil {
		sig.Close()
		conn.Close()
		return nil, fmt.Errorf("systemd: subscribe: %w", err)
	}
	go m.dispatch()
	return m, nil
}

func unitPath(unit string) dbus.ObjectPath {
	return dbus.ObjectPath("/org/freedesktop/systemd1/unit/" + sd.PathBusEscape(unit))
}

// dispatch applies PropertiesChanged signals to the watches, in order.
func (m *systemd) dispatch() {
	defer close(m.done)
	for s := range m.ch {
		if s.Name != propsChanged || len(s.Body) < 2 {
			continue
		}
		if iface, _ := s.Body[0].(string); iface != sdUnitIface {
			continue
		}
		changed, ok := s.Body[1].(map[string]dbus.Variant)
		if !ok {
			continue
		}
		m.mu.Lock()
		ws := make([]*sdWatch, 0, len(m.watches[s.Path]))
		for w := range m.watches[s.Path] {
			ws = append(ws, w)
		}
		m.mu.Unlock()
		for _, w := range ws {
			w.apply(changed)
		}
	}
	// The signal connection is gone: nothing is known any more.
	m.mu.Lock()
	m.closed = true
	var ws []*sdWatch
	for _, set := range m.watches {
		for w := range set {
			ws = append(ws, w)
		}
	}
	m.mu.Unlock()
	for _, w := range ws {
		w.lost()
	}
}

// mapErr maps D-Bus errors: unknown units to ErrNoSuchUnit, a lost
// connection (ErrClosed, or any error once a connection is down) to
// ErrManagerClosed.
func (m *systemd) mapErr(unit string, err error) error {
	if err == nil {
		return nil
	}
	if !m.conn.Connected() || !m.sig.Connected() {
		return fmt.Errorf("%s: %w (%v)", unit, ErrManagerClosed, err)
	}
	var de dbus.Error
	if errors.As(err, &de) {
		switch de.Name {
		case errNoSuchUnit:
			return fmt.Errorf("%s: %w (%v)", unit, ErrNoSuchUnit, err)
		case errLoadFailed, errMasked, errBadSetting:
			return fmt.Errorf("%s: %w (%v)", unit, ErrBadUnit, err)
		}
	}
	if errors.Is(err, dbus.ErrClosed) {
		return fmt.Errorf("%s: %w", unit, ErrManagerClosed)
	}
	return fmt.Errorf("%s: %w", unit, err)
}

func isDBusError(err error, name string) bool {
	var de dbus.Error
	return errors.As(err, &de) && de.Name == name
}

func (m *systemd) job(ctx context.Context, kind, unit string, call func(context.Context, string, string, chan<- string) (int, error)) error {
	ch := make(chan string, 1) // go-systemd sends without select
	if _, err := call(ctx, unit, "replace", ch); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%s %s: %w", kind, unit, ctx.Err())
		}
		return m.mapErr(unit, err)
	}
	select {
	case r := <-ch:
		if r != "done" {
			return &JobError{Unit: unit, Job: kind, Result: r}
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%s %s: waiting for the job: %w", kind, unit, ctx.Err())
	case <-m.done:
		return fmt.Errorf("%s %s: %w", kind, unit, ErrManagerClosed)
	}
}

func (m *systemd) Start(ctx context.Context, unit string) error {
	return m.job(ctx, "start", unit, m.conn.StartUnitContext)
}

func (m *systemd) Stop(ctx context.Context, unit string) error {
	err := m.job(ctx, "stop", unit, m.conn.StopUnitContext)
	if errors.Is(err, ErrNoSuchUnit) {
		return nil // nothing loaded, nothing running
	}
	if err != nil {
		return err
	}
	return m.resetFailed(ctx, unit)
}

// resetFailed clears a failed state. It is a no-op for a unit that is not
// failed, and a unit that is not loaded is not failed: one round trip, no
// unit load.
func (m *systemd) resetFailed(ctx context.Context, unit string) error {
	if err := m.conn.ResetFailedUnitContext(ctx, unit); err != nil && !isDBusError(err, errNoSuchUnit) {
		if ctx.Err() != nil {
			return fmt.Errorf("reset-failed %s: %w", unit, ctx.Err())
		}
		return m.mapErr(unit, err)
	}
	return nil
}

func (m *systemd) Kill(ctx context.Context, unit string) error {
	err := m.conn.KillUnitWithTarget(ctx, unit, sd.All, int32(syscall.SIGKILL))
	switch {
	case err == nil, isDBusError(err, errNoSuchProc):
	case isDBusError(err, errNoSuchUnit):
		return nil
	default:
		if ctx.Err() != nil {
			return fmt.Errorf("kill %s: %w", unit, ctx.Err())
		}
		return m.mapErr(unit, err)
	}
	return m.Stop(ctx, unit)
}

func (m *systemd) Status(ctx context.Context, unit string) (Status, error) {
	st := Status{Unit: unit}
	var props map[string]dbus.Variant
	call := m.sig.Object(sdDest, unitPath(unit)).CallWithContext(ctx,
		"org.freedesktop.DBus.Properties.GetAll", 0, sdUnitIface)
	if call.Err != nil {
		if ctx.Err() != nil {
			return st, fmt.Errorf("status %s: %w", unit, ctx.Err())
		}
		return st, m.mapErr(unit, call.Err)
	}
	if err := call.Store(&props); err != nil {
		return st, m.mapErr(unit, err)
	}
	st.apply(props)
	return st, nil
}

func (s *Status) apply(props map[string]dbus.Variant) {
	if v, ok := props["LoadState"].Value().(string); ok {
		s.Load = v
	}
	if v, ok := props["ActiveState"].Value().(string); ok {
		s.Active = ActiveState(v)
	}
	if v, ok := props["SubState"].Value().(string); ok {
		s.Sub = v
	}
}

func (m *systemd) Watch(ctx context.Context, unit string, fn func(Status)) (Watch, error) {
	w := &sdWatch{m: m, path: unitPath(unit), fn: fn, st: Status{Unit: unit}}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, ErrManagerClosed
	}
	if m.watches[w.path] == nil {
		m.watches[w.path] = make(map[*sdWatch]struct{})
	}
	m.watches[w.path][w] = struct{}{}
	m.mu.Unlock()
	// Seed the state. The seed is read on the signal connection after the
	// watch is registered; a signal that arrived meanwhile wins (signals
	// are applied in the order systemd sent them, and every change is
	// followed by one).
	st, err := m.Status(ctx, unit)
	if err != nil {
		w.Close()
		return nil, err
	}
	w.seed(st)
	// Pin the unit (Unit.Ref, tracked per connection): systemd then keeps
	// it loaded while inactive instead of unloading it and parsing its file
	// again on the next start or status (about 5 ms each). Best effort:
	// without the pin everything works, only slower.
	if err := m.sig.Object(sdDest, w.path).CallWithContext(ctx, sdUnitIface+".Ref", 0).Err; err == nil {
		w.mu.Lock()
		w.pinned = true
		w.mu.Unlock()
	} else {
		m.log.Debug("cannot pin unit", "unit", unit, "err", err)
	}
	return w, nil
}

func (m *systemd) Close() error {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	m.conn.Close()
	err := m.sig.Close()
	<-m.done
	return err
}

type sdWatch struct {
	m    *systemd
	path dbus.ObjectPath
	fn   func(Status)

	mu       sync.Mutex
	st       Status
	signaled bool
	closed   bool
	pinned   bool
}

func (w *sdWatch) Status() Status {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.st
}

func (w *sdWatch) seed(st Status) {
	w.mu.Lock()
	if w.signaled || w.closed {
		w.mu.Unlock()
		return
	}
	w.st = st
	w.mu.Unlock()
	w.fn(st)
}

func (w *sdWatch) apply(changed map[string]dbus.Variant) {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return
	}
	old := w.st
	w.st.apply(changed)
	w.signaled = true
	st := w.st
	w.mu.Unlock()
	if st != old {
		w.fn(st)
	}
}

func (w *sdWatch) lost() {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return
	}
	w.st.Active, w.st.Sub = StateUnknown, "connection lost"
	st := w.st
	w.mu.Unlock()
	w.fn(st)
}

func (w *sdWatch) Close() {
	w.mu.Lock()
	pinned := w.pinned && !w.closed
	w.closed = true
	w.mu.Unlock()
	if pinned {
		// Go: a lost connection drops the pin anyway.
		w.m.sig.Object(sdDest, w.path).Go(sdUnitIface+".Unref", dbus.FlagNoReplyExpected, nil)
	}
	w.m.mu.Lock()
	delete(w.m.watches[w.path], w)
	if len(w.m.watches[w.path]) == 0 {
		delete(w.m.watches, w.path)
	}
	w.m.mu.Unlock()
}
