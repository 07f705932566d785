package ipaddress

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"

	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// viewState is what the in-memory view knows about the instance's
// interface and address.
type viewState struct {
	LinkPresent bool
	LinkUp      bool // IFF_UP and IFF_RUNNING (carrier)
	AddrPresent bool // our exact address and prefix length on the link
	// NewAddrs counts RTM_NEWADDR notifications for our address; every add
	// or replace sends one, so Online uses it as a barrier: once the count
	// passes its value from before AddrReplace, every older event (a
	// removal from an earlier Offline, say) has been applied.
	NewAddrs uint64
	Err      error
}

// view is an in-memory picture of one interface and one address, kept
// current by netlink address and link subscriptions in the instance's
// namespace. Reading it costs a mutex, never a netlink dump.
type view struct {
	key      netip.Prefix
	onChange func(viewState) // called from the view's goroutine, outside mu

	mu      sync.Mutex
	name    string // interface name we follow
	index   int
	st      viewState
	changed chan struct{} // closed and replaced on every change

	done    chan struct{}
	closing bool
	wg      sync.WaitGroup
}

// startView subscribes, then initializes from one dump; events queued in the
// meantime are applied afterwards, which converges on the right state.
func startView(ns *vnetns.NsHandle, h *netlink.Handle, l link, key netip.Prefix, onChange func(viewState)) (*view, error) {
	v := &view{key: key, onChange: onChange, name: l.Name, index: l.Index,
		changed: make(chan struct{}), done: make(chan struct{})}
	addrs := make(chan netlink.AddrUpdate, 64)
	links := make(chan netlink.LinkUpdate, 64)
	var subErr error
	var subMu sync.Mutex
	errCB := func(err error) {
		subMu.Lock()
		defer subMu.Unlock()
		if subErr == nil {
			subErr = err
		}
	}
	if err := netlink.AddrSubscribeWithOptions(addrs, v.done, netlink.AddrSubscribeOptions{Namespace: ns, ErrorCallback: errCB, ReceiveBufferSize: 1 << 20}); err != nil {
		close(v.done)
		return nil, fmt.Errorf("netlink address subscription: %w", err)
	}
	if err := netlink.LinkSubscribeWithOptions(links, v.done, netlink.LinkSubscribeOptions{Namespace: ns, ErrorCallback: errCB, ReceiveBufferSize: 1 << 20}); err != nil {
		close(v.done)
		drain(addrs)
		return nil, fmt.Errorf("netlink link subscription: %w", err)
	}
	if err := v.init(h); err != nil {
		close(v.done)
		drain(addrs)
		drain(links)
		return nil, err
	}
	v.wg.Add(1)
	go func() {
		defer v.wg.Done()
		for addrs != nil || links != nil {
			select {
			case u, ok := <-addrs:
				if !ok {
					addrs = nil
					v.lost(&subMu, &subErr)
					continue
				}
				v.applyAddr(u)
			case u, ok := <-links:
				if !ok {
					links = nil
					v.lost(&subMu, &subErr)
					continue
				}
				v.applyLink(u)
			}
		}
	}()
	return v, nil
}

func drain[T any](c <-chan T) {
	for range c {
	}
}

// init reads the link and its addresses once.
func (v *view) init(h *netlink.Handle) error {
	l, err := h.LinkByName(v.name)
	var st viewState
	if err == nil {
		a := l.Attrs()
		v.index = a.Index
		st.LinkPresent = true
		st.LinkUp = linkUp(a.RawFlags)
		fam := netlink.FAMILY_V4
		if v.key.Addr().Is6() {
			fam = netlink.FAMILY_V6
		}
		as, err := h.AddrList(l, fam)
		if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
			return fmt.Errorf("netlink address list: %w", err)
		}
		for _, x := range as {
			if prefixOf(x.IPNet) == v.key && x.Flags&(unix.IFA_F_TENTATIVE|unix.IFA_F_DADFAILED) == 0 {
				st.AddrPresent = true
			}
		}
	} else if _, nf := err.(netlink.LinkNotFoundError); !nf {
		return fmt.Errorf("netlink link %s: %w", v.name, err)
	}
	v.mu.Lock()
	v.st = st
	v.mu.Unlock()
	return nil
}

func linkUp(flags uint32) bool {
	return flags&unix.IFF_UP != 0 && flags&unix.IFF_RUNNING != 0
}

// set replaces the state, wakes waiters and reports a change.
func (v *view) set(fn func(st *viewState)) {
	v.mu.Lock()
	old := v.st
	fn(&v.st)
	st := v.st
	changed := old.LinkPresent != st.LinkPresent || old.LinkUp != st.LinkUp || old.AddrPresent != st.AddrPresent || old.NewAddrs != st.NewAddrs || (old.Err == nil) != (st.Err == nil)
	if changed {
		close(v.changed)
		v.changed = make(chan struct{})
	}
	v.mu.Unlock()
	if changed && v.onChange != nil {
		v.onChange(st)
	}
}

func (v *view) applyAddr(u netlink.AddrUpdate) {
	if prefixOf(&u.LinkAddress) != v.key {
		return
	}
	v.mu.Lock()
	mine := u.LinkIndex == v.index
	v.mu.Unlock()
	if !mine {
		return
	}
	// A tentative IPv6 address does not answer probes yet, a failed one
	// never will: neither counts as present.
	usable := u.NewAddr && u.Flags&(unix.IFA_F_TENTATIVE|unix.IFA_F_DADFAILED) == 0
	v.set(func(st *viewState) {
		st.AddrPresent = usable
		if usable {
			st.NewAddrs++
		}
	})
}

func (v *view) applyLink(u netlink.LinkUpdate) {
	a := u.Link.Attrs()
	v.mu.Lock()
	ours := a.Name == v.name || a.Index == v.index
	if ours && u.Header.Type == unix.RTM_NEWLINK {
		v.index = a.Index
		v.name = a.Name
	}
	v.mu.Unlock()
	if !ours {
		return
	}
	if u.Header.Type == unix.RTM_DELLINK {
		v.set(func(st *viewState) { *st = viewState{Err: st.Err, NewAddrs: st.NewAddrs} })
		return
	}
	v.set(func(st *viewState) {
		st.LinkPresent = true
		st.LinkUp = linkUp(a.RawFlags)
	})
}

// lost records that a subscription ended without Close.
func (v *view) lost(mu *sync.Mutex, subErr *error) {
	v.mu.Lock()
	closing := v.closing
	v.mu.Unlock()
	if closing {
		return
	}
	mu.Lock()
	err := *subErr
	mu.Unlock()
	if err == nil {
		err = errors.New("closed")
	}
	v.set(func(st *viewState) { st.Err = fmt.Errorf("netlink subscription lost: %w", err) })
}

// State returns the current view.
func (v *view) State() viewState {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.st
}

// Link returns the interface index the view follows.
func (v *view) Index() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.index
}

// Wait blocks until cond holds for the view or ctx ends.
func (v *view) Wait(ctx context.Context, cond func(viewState) bool) error {
	for {
		v.mu.Lock()
		st, ch := v.st, v.changed
		v.mu.Unlock()
		if cond(st) {
			return nil
		}
		if st.Err != nil {
			return st.Err
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Close ends the subscriptions and waits for the view's goroutine (and the
// netlink library's readers, which it drains) to finish.
func (v *view) Close() {
	v.mu.Lock()
	if v.closing {
		v.mu.Unlock()
		v.wg.Wait()
		return
	}
	v.closing = true
	v.mu.Unlock()
	close(v.done)
	v.wg.Wait()
}
