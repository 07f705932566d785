package ipaddress

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/sftkit/sft/internal/netns"
	"github.com/sftkit/sft/resource"
)

// TypeName is the name of the type in a resource.Registry.
const TypeName = "ipaddress"

// Option configures the Type returned by NewType.
type Option func(*ipType)

// WithNetNS makes path (/run/netns/NAME or /proc/PID/ns/net) the network
// namespace of instances whose "netns" property is empty. Default: the
// namespace of the calling process.
func WithNetNS(path string) Option { return func(t *ipType) { t.defNS = path } }

// NewType returns the "ipaddress" resource type.
func NewType(opts ...Option) resource.Type {
	t := &ipType{}
	for _, o := range opts {
		o(t)
	}
	return t
}

type ipType struct {
	defNS string
}

var (
	_ resource.Type            = (*ipType)(nil)
	_ resource.Resource        = (*instance)(nil)
	_ resource.FailureReporter = (*instance)(nil)
	_ resource.Closer          = (*instance)(nil)
)

func (*ipType) Name() string { return TypeName }

// Validate checks the properties and, read-only, that the namespace and the
// interface exist (or, with no interface given, that exactly one interface
// has a subnet containing the address).
func (t *ipType) Validate(ctx context.Context, props resource.Properties) error {
	cfg, err := parseConfig(props, t.defNS)
	if err != nil {
		return err
	}
	h, err := openHandle(cfg)
	if err != nil {
		return err
	}
	defer h.Close()
	_, err = resolveLink(h, cfg)
	return err
}

// Open validates like Validate, resolves the interface and starts the
// netlink subscriptions that keep the instance's view current. Close ends
// them.
func (t *ipType) Open(ctx context.Context, req resource.OpenRequest) (resource.Resource, error) {
	cfg, err := parseConfig(req.Properties, t.defNS)
	if err != nil {
		return nil, err
	}
	h, err := openHandle(cfg)
	if err != nil {
		return nil, err
	}
	l, err := resolveLink(h, cfg)
	if err != nil {
		h.Close()
		return nil, err
	}
	r := &instance{
		cfg:      cfg,
		log:      req.Log().With("address", cfg.Prefix.String(), "interface", l.Name),
		h:        h,
		linkName: l.Name,
		inflight: make(map[*int]context.CancelFunc),
	}
	if r.view, err = r.startView(l); err != nil {
		h.Close()
		return nil, err
	}
	return r, nil
}

// startView subscribes to address and link changes in the instance's
// namespace.
func (r *instance) startView(l link) (*view, error) {
	var nsp *vnetns.NsHandle
	if r.cfg.NetNS != "" {
		ns, err := vnetns.GetFromPath(r.cfg.NetNS)
		if err != nil {
			return nil, resource.ConfigError("netns", r.cfg.NetNS, "cannot open network namespace: %v", err)
		}
		defer ns.Close()
		nsp = &ns
	}
	return startView(nsp, r.h, l, r.cfg.Prefix, r.viewChanged)
}

// currentView returns the view (Online may replace a broken one).
func (r *instance) currentView() *view {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.view
}

func openHandle(cfg *config) (*netlink.Handle, error) {
	if cfg.NetNS == "" {
		h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
		if err != nil {
			return nil, fmt.Errorf("netlink: %w", err)
		}
		return h, nil
	}
	ns, err := vnetns.GetFromPath(cfg.NetNS)
	if err != nil {
		return nil, resource.ConfigError("netns", cfg.NetNS, "cannot open network namespace: %v", err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netlink in %s: %w", cfg.NetNS, err)
	}
	return h, nil
}

func prefixOf(n *net.IPNet) netip.Prefix {
	if n == nil {
		return netip.Prefix{}
	}
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}
	}
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), ones)
}

func linkOf(l netlink.Link) link {
	a := l.Attrs()
	return link{Name: a.Name, Index: a.Index, MAC: a.HardwareAddr}
}

// resolveLink finds the interface: by name, or the one interface with an
// address whose subnet contains the virtual address.
func resolveLink(h *netlink.Handle, cfg *config) (link, error) {
	where := "this network namespace"
	if cfg.NetNS != "" {
		where = cfg.NetNS
	}
	var l netlink.Link
	if cfg.Interface != "" {
		var err error
		l, err = h.LinkByName(cfg.Interface)
		if err != nil {
			var nf netlink.LinkNotFoundError
			if errors.As(err, &nf) {
				return link{}, resource.ConfigError("interface", cfg.Interface, "no such interface in %s", where)
			}
			return link{}, fmt.Errorf("interface %q: %w", cfg.Interface, err)
		}
	} else {
		fam := netlink.FAMILY_V4
		if cfg.Addr().Is6() {
			fam = netlink.FAMILY_V6
		}
		addrs, err := h.AddrList(nil, fam)
		if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
			return link{}, fmt.Errorf("netlink address list: %w", err)
		}
		idx := map[int]netip.Prefix{}
		for _, a := range addrs {
			p := prefixOf(a.IPNet)
			if p.IsValid() && p.Addr() != cfg.Addr() && p.Masked().Contains(cfg.Addr()) {
				idx[a.LinkIndex] = p
			}
		}
		switch len(idx) {
		case 0:
			return link{}, resource.ConfigError("address", cfg.Prefix.String(), "in no local subnet: no interface in %s has an address whose prefix contains it (set \"interface\")", where)
		case 1:
		default:
			return link{}, resource.ConfigError("interface", "", "ambiguous: %d interfaces in %s have a subnet containing %s (set \"interface\")", len(idx), where, cfg.Addr())
		}
		for i := range idx {
			l, err = h.LinkByIndex(i)
			if err != nil {
				return link{}, fmt.Errorf("interface index %d: %w", i, err)
			}
		}
	}
	if len(l.Attrs().HardwareAddr) != 6 {
		return link{}, resource.ConfigError("interface", l.Attrs().Name, "not an Ethernet interface (hardware address %q)", l.Attrs().HardwareAddr)
	}
	return linkOf(l), nil
}

// instance is one virtual address.
type instance struct {
	cfg      *config
	log      *slog.Logger
	h        *netlink.Handle
	view     *view // guarded by mu: Online replaces a broken one
	linkName string

	// opMu serializes the bodies of Online, Offline, IsAlive and the
	// teardown part of Terminate.
	opMu sync.Mutex

	mu       sync.Mutex
	inflight map[*int]context.CancelFunc // calls Terminate cancels
	online   bool                        // bound and watched: changes push failures
	pushed   bool                        // a failure was pushed in this online session
	used     bool                        // it has been online: only a fresh instance adopts
	onFail   func(error)
	ann      *announcer
	closed   bool

	w *wire // packet socket, opened by the first probe or Online; guarded by opMu

	// hookProbing, if set (tests only), runs when Online starts probing.
	hookProbing func()
}

// begin derives a call's context, which Terminate cancels.
func (r *instance) begin(ctx context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancel(ctx)
	key := new(int)
	r.mu.Lock()
	r.inflight[key] = cancel
	r.mu.Unlock()
	return ctx, func() {
		r.mu.Lock()
		delete(r.inflight, key)
		r.mu.Unlock()
		cancel()
	}
}

// SetFailureHandler implements resource.FailureReporter.
func (r *instance) SetFailureHandler(fn func(err error)) {
	r.mu.Lock()
	r.onFail = fn
	r.mu.Unlock()
}

// viewChanged runs on the view's goroutine for every change.
func (r *instance) viewChanged(st viewState) {
	err := stateErr(st)
	if err == nil {
		return
	}
	r.mu.Lock()
	fn := r.onFail
	push := r.online && !r.pushed && fn != nil
	if push {
		r.pushed = true
	}
	r.mu.Unlock()
	if push {
		r.log.Warn("ipaddress: failure", "err", err)
		fn(err)
	}
}

// stateErr says why a view is not alive, or nil.
func stateErr(st viewState) error {
	switch {
	case st.Err != nil:
		return resource.Transient(st.Err)
	case !st.LinkPresent:
		return resource.NodeLocal(errors.New("interface is gone"))
	case !st.LinkUp:
		return resource.NodeLocal(errors.New("link is down"))
	case !st.AddrPresent:
		return resource.Transient(errors.New("address is not on the interface (removed by someone else?)"))
	}
	return nil
}

func (r *instance) link() (netlink.Link, error) {
	l, err := r.h.LinkByName(r.linkName)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil, resource.NodeLocal(fmt.Errorf("interface %q is gone", r.linkName))
		}
		return nil, err
	}
	return l, nil
}

func (r *instance) nlAddr() *netlink.Addr {
	p := r.cfg.Prefix
	a := &netlink.Addr{
		IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())},
		Label: r.cfg.Label,
	}
	if p.Addr().Is6() {
		// Online ran its own duplicate address probe: skip the kernel's
		// (which would keep the address tentative for 1-2 s).
		a.Flags = unix.IFA_F_NODAD
	}
	return a
}

// wireFor returns the instance's packet socket for l, opening it, or
// reopening it if the interface was re-created. Callers hold opMu, and no
// announcer runs.
func (r *instance) wireFor(l link) (*wire, error) {
	if r.w != nil && r.w.fits(l) {
		return r.w, nil
	}
	if r.w != nil {
		r.w.Close()
		r.w = nil
	}
	w, err := openWire(r.cfg.NetNS, l, r.cfg.Addr())
	if err != nil {
		return nil, err
	}
	r.w = w
	return w, nil
}

// Online probes for another holder, binds the address, announces it and
// starts the rest of the announcement schedule.
func (r *instance) Online(ctx context.Context) error {
	ctx, end := r.begin(ctx)
	defer end()
	r.opMu.Lock()
	defer r.opMu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	r.mu.Lock()
	closed := r.closed
	r.mu.Unlock()
	if closed {
		return errors.New("ipaddress: Online after Close")
	}
	// Online again while online starts over: no pushes, no schedule.
	r.mu.Lock()
	r.online = false
	r.mu.Unlock()
	if r.ann != nil {
		r.ann.Stop()
		r.ann = nil
	}
	nl, err := r.link()
	if err != nil {
		return err
	}
	l := linkOf(nl)
	if !linkUp(nl.Attrs().RawFlags) {
		return resource.NodeLocal(fmt.Errorf("interface %s: link is down", l.Name))
	}
	vip := r.cfg.Addr()
	w, err := r.wireFor(l)
	if err != nil {
		return err
	}
	if r.cfg.ProbeCount > 0 {
		t0 := time.Now()
		if r.hookProbing != nil {
			r.hookProbing()
		}
		mac, err := w.probe(ctx, r.cfg.ProbeCount, r.cfg.ProbeInterval, r.cfg.ProbeWait, false)
		if err != nil {
			return fmt.Errorf("duplicate address probe: %w", err)
		}
		if mac != nil {
			err := resource.NodeLocal(fmt.Errorf("address %s is held by another host (%s) on %s: not binding it", vip, mac, l.Name))
			r.log.Warn("ipaddress: refusing to bind", "err", err)
			return err
		}
		r.log.Debug("ipaddress: probe found no other holder", "took", time.Since(t0))
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if old := r.currentView(); old.State().Err != nil {
		// The subscription broke (say, ENOBUFS under an event flood):
		// subscribe again rather than fail every Online from now on.
		r.log.Warn("ipaddress: renewing netlink subscriptions", "err", old.State().Err)
		nv, err := r.startView(l)
		if err != nil {
			return err
		}
		r.mu.Lock()
		r.view = nv
		r.mu.Unlock()
		old.Close()
	}
	v := r.currentView()
	gen := v.State().NewAddrs
	if err := r.h.AddrReplace(nl, r.nlAddr()); err != nil {
		return fmt.Errorf("add %s to %s: %w", r.cfg.Prefix, l.Name, err)
	}
	// Wait for our own notification: then every older event (such as the
	// removal by a previous Offline) has been applied, LooksAlive sees the
	// address, and later changes are someone else's.
	if err := v.Wait(ctx, func(st viewState) bool { return st.NewAddrs > gen && st.AddrPresent && st.LinkUp }); err != nil {
		return fmt.Errorf("waiting for the address to show: %w", err)
	}
	if vip.Is6() {
		// Linux joins the solicited-node group from its address worker,
		// possibly well after the notification; until then it ignores
		// other nodes' duplicate address probes and could not defend the
		// address.
		if err := netns.WaitIPv6Group(ctx, r.cfg.NetNS, l.Name, netns.SolicitedNode(vip)); err != nil {
			return fmt.Errorf("waiting for the solicited-node group: %w", err)
		}
	}
	r.goOnline(w, l, "ipaddress: online")
	return nil
}

// goOnline marks the instance online with the address bound and starts
// announcing it.
func (r *instance) goOnline(w *wire, l link, msg string) {
	r.mu.Lock()
	r.online, r.pushed, r.used = true, false, true
	r.mu.Unlock()
	r.ann = startAnnouncer(w, r.cfg.Announce, r.cfg.Refresh, r.log)
	r.log.Info(msg, "mac", l.MAC)
}

// adopt takes over an address found bound on the interface by an
// instance that has never been online (a restarted host's): no other host may answer for it (one probe),
// then the instance is online as after Online, announcing it. Anything
// else returns notOnline.
func (r *instance) adopt(ctx context.Context, notOnline error) error {
	ctx, end := r.begin(ctx)
	defer end()
	r.opMu.Lock()
	defer r.opMu.Unlock()
	r.mu.Lock()
	closed, online, used := r.closed, r.online, r.used
	r.mu.Unlock()
	if closed || online || used { // after its own Offline, the address is not a leftover
		return notOnline
	}
	st := r.currentView().State()
	if st.Err != nil || !st.AddrPresent || !st.LinkUp {
		return notOnline
	}
	nl, err := r.link()
	if err != nil {
		return err
	}
	l := linkOf(nl)
	w, err := r.wireFor(l)
	if err != nil {
		return err
	}
	if r.cfg.ProbeCount > 0 {
		mac, err := w.probe(ctx, 1, r.cfg.ProbeInterval, r.cfg.ProbeWait, true)
		if err != nil {
			return fmt.Errorf("duplicate address probe: %w", err)
		}
		if mac != nil {
			return resource.NodeLocal(fmt.Errorf("address %s is bound here but also held by another host (%s) on %s", r.cfg.Addr(), mac, l.Name))
		}
	}
	r.goOnline(w, l, "ipaddress: adopted the address found bound")
	return nil
}

// down cancels announcements and removes the address. EADDRNOTAVAIL (not
// there) and a vanished interface count as success.
func (r *instance) down() error {
	r.mu.Lock()
	r.online = false
	closed := r.closed
	r.mu.Unlock()
	if closed {
		return nil // Close already removed the address
	}
	if r.ann != nil {
		r.ann.Stop()
		r.ann = nil
	}
	nl, err := r.h.LinkByName(r.linkName)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil
		}
		return err
	}
	if err := r.h.AddrDel(nl, r.nlAddr()); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("remove %s from %s: %w", r.cfg.Prefix, r.linkName, err)
	}
	return nil
}

// Offline removes the address and cancels the announcement schedule.
func (r *instance) Offline(ctx context.Context) error {
	_, end := r.begin(ctx)
	defer end()
	r.opMu.Lock()
	defer r.opMu.Unlock()
	return r.down()
}

// Terminate cancels whatever call is in flight, then does what Offline does.
func (r *instance) Terminate(ctx context.Context) error {
	r.mu.Lock()
	for _, cancel := range r.inflight {
		cancel()
	}
	r.mu.Unlock()
	r.opMu.Lock()
	defer r.opMu.Unlock()
	return r.down()
}

// LooksAliveInstant implements resource.InstantChecker: LooksAlive reads
// the in-memory view.
func (r *instance) LooksAliveInstant() bool { return true }

// LooksAlive answers from the in-memory view: the address is on the
// interface and the link is up.
func (r *instance) LooksAlive(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r.mu.Lock()
	online := r.online
	r.mu.Unlock()
	if !online {
		return errors.New("ipaddress: not online")
	}
	return stateErr(r.currentView().State())
}

// IsAlive is LooksAlive plus one duplicate-address probe: no other host may
// answer for the address. On an instance that is not online it adopts an
// address a previous run left bound (how the monitor's Probe, which falls
// back to IsAlive, finds it after a host restart): see adopt.
func (r *instance) IsAlive(ctx context.Context) error {
	if err := r.LooksAlive(ctx); err != nil {
		r.mu.Lock()
		online := r.online
		r.mu.Unlock()
		if online {
			return err
		}
		return r.adopt(ctx, err)
	}
	ctx, end := r.begin(ctx)
	defer end()
	r.opMu.Lock()
	defer r.opMu.Unlock()
	if r.cfg.ProbeCount == 0 {
		return nil
	}
	r.mu.Lock()
	closed := r.closed
	r.mu.Unlock()
	if closed {
		return errors.New("ipaddress: closed")
	}
	nl, err := r.link()
	if err != nil {
		return err
	}
	l := linkOf(nl)
	if r.w == nil || !r.w.fits(l) {
		return resource.NodeLocal(fmt.Errorf("interface %s changed since Online", l.Name))
	}
	mac, err := r.w.probe(ctx, 1, r.cfg.ProbeInterval, r.cfg.ProbeWait, true)
	if err != nil {
		return fmt.Errorf("duplicate address probe: %w", err)
	}
	if mac != nil {
		return resource.NodeLocal(fmt.Errorf("address %s is also claimed by %s", r.cfg.Addr(), mac))
	}
	return r.LooksAlive(ctx)
}

// Close ends the netlink subscriptions and the announcement schedule. The
// monitor calls it after the final Offline or Terminate; should the address
// still be bound, Close removes it too, so that nothing is left behind.
// Online after Close fails; Offline and Terminate after Close return nil.
func (r *instance) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	for _, cancel := range r.inflight {
		cancel()
	}
	r.mu.Unlock()
	r.opMu.Lock()
	defer r.opMu.Unlock()
	err := r.down()
	if r.w != nil {
		r.w.Close()
		r.w = nil
	}
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	r.currentView().Close()
	r.h.Close()
	return err
}

var (
	_ resource.FailureReporter = (*instance)(nil)
	_ resource.Closer          = (*instance)(nil)
	_ resource.InstantChecker  = (*instance)(nil)
)
