package qemuvm

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sftkit/sft/resource"
)

// TypeName is the resource type's name.
const TypeName = "qemuvm"

// New returns the "qemuvm" type.
func New() resource.Type { return vmType{} }

type vmType struct{}

func (vmType) Name() string { return TypeName }

func (vmType) Validate(_ context.Context, p resource.Properties) error {
	_, err := decode(p, "")
	return err
}

func (vmType) Open(_ context.Context, req resource.OpenRequest) (resource.Resource, error) {
	c, err := decode(req.Properties, req.Name)
	if err != nil {
		return nil, err
	}
	if c.VMName == "" {
		return nil, resource.ConfigError("vm_name", "", "required when the instance has no name")
	}
	return &VM{cfg: c, log: req.Log().With("vm", c.VMName)}, nil
}

// VM is one virtual machine instance.
type VM struct {
	cfg config
	log *slog.Logger

	life     resource.Lifecycle
	starting *run // an Online's run before it commits; guarded by life
	cur      atomic.Pointer[run]
	handler  atomic.Pointer[func(error)]
}

var (
	_ resource.Resource        = (*VM)(nil)
	_ resource.FailureReporter = (*VM)(nil)
	_ resource.InstantChecker  = (*VM)(nil)
)

// errOffline is LooksAlive's and IsAlive's answer while no VM runs.
var errOffline = errors.New("qemuvm: offline")

// SetFailureHandler implements resource.FailureReporter: a guest panic,
// STOP, SHUTDOWN, a silent heartbeat and the exit of QEMU are pushed at once.
func (v *VM) SetFailureHandler(fn func(error)) {
	if fn == nil {
		v.handler.Store(nil)
		return
	}
	v.handler.Store(&fn)
}

func (v *VM) push(err error) {
	if fn := v.handler.Load(); fn != nil {
		(*fn)(err)
	}
}

// Accelerator returns the accelerator the running VM uses ("kvm" or
// "tcg") and why, or "" when it is offline.
func (v *VM) Accelerator() (accel, why string) {
	if r := v.cur.Load(); r != nil {
		return r.accel, r.accelWhy
	}
	return "", ""
}

// LooksAliveInstant implements resource.InstantChecker: LooksAlive reads
// state that QMP events and the process waiter keep current.
func (v *VM) LooksAliveInstant() bool { return true }

// LooksAlive answers from the event-fed view: QEMU runs, the guest is
// running (no STOP, SHUTDOWN or GUEST_PANICKED), no failure was seen.
func (v *VM) LooksAlive(context.Context) error {
	r := v.cur.Load()
	if r == nil {
		return errOffline
	}
	return r.health()
}

// IsAlive also wants a recent guest heartbeat.
func (v *VM) IsAlive(ctx context.Context) error {
	r := v.cur.Load()
	if r == nil {
		return errOffline
	}
	if err := r.health(); err != nil {
		return err
	}
	if age := time.Since(time.Unix(0, r.lastBeat.Load())); age > v.cfg.HeartbeatTimeout.D() {
		return fmt.Errorf("qemuvm %s: last guest heartbeat %v ago (heartbeat_timeout %v)", v.cfg.VMName, age.Round(time.Millisecond), v.cfg.HeartbeatTimeout.D())
	}
	return nil
}

// Online starts QEMU and returns once the guest's first heartbeat arrived,
// reporting progress every second while the guest boots.
func (v *VM) Online(ctx context.Context) error {
	ctx, call := v.life.Begin(ctx)
	defer call.End()
	if err := call.Err(); err != nil {
		return err
	}
	if r := v.cur.Load(); r != nil {
		if r.health() == nil {
			return nil
		}
		// A failed run the monitor did not terminate: replace it.
		r.destroy()
		_ = call.Commit(func() { v.cur.CompareAndSwap(r, nil) })
	}
	r, err := v.start(ctx, call)
	if err != nil {
		return err
	}
	if err := v.waitBoot(ctx, r); err != nil {
		r.destroy()
		_ = v.life.Locked(func() error {
			if v.starting == r {
				v.starting = nil
			}
			return nil
		})
		return err
	}
	if err := call.Commit(func() {
		v.starting = nil
		v.cur.Store(r)
	}); err != nil {
		r.destroy() // Terminate overtook us
		return err
	}
	if err := r.markOnline(); err != nil {
		return err // failed between boot and commit; the monitor terminates
	}
	v.log.Info("guest up", "pid", r.proc.pid, "accel", r.accel, "accel_reason", r.accelWhy, "boot", time.Since(r.started).Round(time.Millisecond))
	return nil
}

func (v *VM) waitBoot(ctx context.Context, r *run) error {
	boot := time.NewTimer(v.cfg.BootTimeout.D())
	defer boot.Stop()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-r.up:
			return nil
		case <-r.failed:
			if tail := consoleTail(v.cfg.consoleFile()); tail != "" {
				return fmt.Errorf("%w%s", r.failure(), tail)
			}
			return r.failure()
		case <-ctx.Done():
			return fmt.Errorf("qemuvm %s: waiting for the guest's first heartbeat: %w", v.cfg.VMName, ctx.Err())
		case <-boot.C:
			return resource.Transient(fmt.Errorf("qemuvm %s: no guest heartbeat within boot_timeout %v (accel %s)%s", v.cfg.VMName, v.cfg.BootTimeout.D(), r.accel, consoleTail(v.cfg.consoleFile())))
		case <-tick.C:
			resource.ReportProgress(ctx, fmt.Sprintf("guest booting for %v (accel %s: %s)", time.Since(r.started).Round(time.Second), r.accel, r.accelWhy))
		}
	}
}

// Offline asks the guest to power down (ACPI, QMP system_powerdown), waits
// shutdown_grace for QEMU to exit, then sends QMP quit, then kills.
func (v *VM) Offline(ctx context.Context) error {
	ctx, call := v.life.Begin(ctx)
	defer call.End()
	r := v.cur.Load()
	if r == nil {
		return nil
	}
	r.stop()
	err := r.shutdown(ctx, v.cfg.ShutdownGrace.D())
	r.destroy()
	_ = call.Commit(func() { v.cur.CompareAndSwap(r, nil) })
	return err
}

// Terminate quits QEMU at once (QMP quit, killed if it has not exited
// within 500 ms) and cancels an Online in flight. Idempotent.
func (v *VM) Terminate(context.Context) error {
	return v.life.Terminate(func() error {
		for _, r := range []*run{v.cur.Swap(nil), v.starting} {
			if r != nil {
				r.stop()
				r.quit(context.Background(), 500*time.Millisecond)
				r.destroy()
			}
		}
		v.starting = nil
		return nil
	})
}

// run is one QEMU process with its connections.
type run struct {
	vm       *VM
	dir      string // private directory, removed by destroy
	accel    string
	accelWhy string
	started  time.Time

	proc  *proc // set before the run is shared (v.starting)
	qmpLn net.Listener
	hbLn  net.Listener

	up       chan struct{} // closed at the first heartbeat
	upOnce   sync.Once
	lastBeat atomic.Int64 // unix ns of the last heartbeat
	status   atomic.Pointer[string]

	mu        sync.Mutex
	err       error         // first failure; guarded by mu
	failed    chan struct{} // closed with err
	online    bool          // Online committed: failures are pushed
	stopping  bool          // Offline/Terminate began: failures are not pushed
	destroyed bool          // destroy began: no new connection is kept
	qmp       *qmpConn      // nil until negotiated; guarded by mu
	hbConn    net.Conn      // guarded by mu

	destroyOnce sync.Once
}

func (r *run) setStatus(s string) { r.status.Store(&s) }

// health is nil while QEMU runs a running guest and nothing failed.
func (r *run) health() error {
	if err := r.failure(); err != nil {
		return err
	}
	if s := r.status.Load(); s == nil || *s != "running" {
		st := "starting"
		if s != nil {
			st = *s
		}
		return fmt.Errorf("qemuvm %s: guest %s", r.vm.cfg.VMName, st)
	}
	return nil
}

func (r *run) failure() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// fail records the first failure and pushes it when the VM is online and
// nobody is stopping it.
func (r *run) fail(err error) {
	r.mu.Lock()
	if r.err != nil {
		r.mu.Unlock()
		return
	}
	r.err = err
	close(r.failed)
	push := r.online && !r.stopping
	r.mu.Unlock()
	if push {
		r.vm.log.Warn("vm failed", "err", err)
		r.vm.push(err)
	}
}

func (r *run) markOnline() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.online = true
	return r.err
}

// keep stores a connection (store runs under mu) unless destroy began;
// then it closes it (closeIt) and returns an error.
func (r *run) keep(store, closeIt func()) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.destroyed {
		closeIt()
		return errors.New("stopped while starting")
	}
	store()
	return nil
}

func (r *run) qmpConn() *qmpConn {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.qmp
}

func (r *run) stop() {
	r.mu.Lock()
	r.stopping = true
	r.mu.Unlock()
}

// chooseAccel resolves accel "auto" and checks "kvm".
func chooseAccel(want string) (accel, why string, err error) {
	kvmErr := func() error {
		f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
		if err != nil {
			return err
		}
		return f.Close()
	}()
	switch {
	case want == AccelTCG:
		return AccelTCG, "accel tcg configured (emulation, no hardware virtualization)", nil
	case kvmErr == nil:
		return AccelKVM, "/dev/kvm is usable", nil
	case want == AccelKVM:
		return "", "", resource.NodeLocal(fmt.Errorf("accel kvm: /dev/kvm is not usable on this node: %w", kvmErr))
	default:
		return AccelTCG, fmt.Sprintf("TCG emulation, slow: /dev/kvm is not usable (%v)", kvmErr), nil
	}
}

// listen listens on a unix socket at path, replacing a stale socket file.
func listen(field, path string) (net.Listener, error) {
	if st, err := os.Lstat(path); err == nil {
		if st.Mode()&os.ModeSocket == 0 {
			return nil, resource.ConfigError(field, path, "exists and is not a socket")
		}
		os.Remove(path)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", field, err)
	}
	return ln, nil
}

// start starts QEMU (paused), registers the run as v.starting, connects
// QMP and the heartbeat channel, and lets the guest run. On error nothing
// is left behind.
func (v *VM) start(ctx context.Context, call *resource.Call) (_ *run, err error) {
	c := v.cfg
	accel, why, err := chooseAccel(c.Accel)
	if err != nil {
		return nil, err
	}
	qemu, err := exec.LookPath(c.QEMU)
	if err != nil {
		return nil, resource.NodeLocal(fmt.Errorf("qemu %q: %w (install qemu-system-x86)", c.QEMU, err))
	}
	r := &run{vm: v, accel: accel, accelWhy: why, started: time.Now(), up: make(chan struct{}), failed: make(chan struct{})}
	r.setStatus("starting")
	defer func() {
		if err != nil {
			r.stop()
			r.destroy()
		}
	}()
	sweepRunDirs(os.TempDir())
	if r.dir, err = os.MkdirTemp("", fmt.Sprintf("%s%d-", runDirPrefix, os.Getpid())); err != nil {
		return nil, err
	}
	lock, err := lockVM(c.LockDir, c.VMName)
	if err != nil {
		if errors.Is(err, errLocked) {
			return nil, resource.Transient(err)
		}
		return nil, err
	}
	defer lock.Close() // QEMU holds its own copy from now on
	qmpPath := c.QMP
	if qmpPath == "" {
		qmpPath = filepath.Join(r.dir, "qmp.sock")
	}
	hbPath := c.HBSocket
	if hbPath == "" {
		hbPath = filepath.Join(r.dir, "heartbeat.sock")
	}
	if r.qmpLn, err = listen("qmp_socket", qmpPath); err != nil {
		return nil, err
	}
	if r.hbLn, err = listen("heartbeat_socket", hbPath); err != nil {
		return nil, err
	}
	cmd := exec.Command(qemu, qemuArgs(c, accel, qmpPath, hbPath)...)
	cmd.ExtraFiles = []*os.File{lock}
	if r.proc, err = spawn(cmd); err != nil {
		return nil, resource.NodeLocal(fmt.Errorf("start %s: %w", qemu, err))
	}
	writePID(lock, r.proc.pid)
	if err := call.Commit(func() { v.starting = r }); err != nil {
		return nil, err
	}
	go func() {
		<-r.proc.exited
		r.setStatus("exited")
		r.fail(r.proc.exitError())
	}()
	v.log.Info("qemu started", "pid", r.proc.pid, "accel", accel, "accel_reason", why)

	qc, err := r.accept(ctx, r.qmpLn)
	if err != nil {
		return nil, r.startError(ctx, "qmp", err)
	}
	q, err := newQMP(ctx, qc, r.event, func(err error) {
		if r.exitedWithin(time.Second) {
			return // the process waiter reports it, with QEMU's words
		}
		r.fail(fmt.Errorf("qemuvm %s: qmp connection lost: %v", c.VMName, err))
	})
	if err != nil {
		return nil, r.startError(ctx, "qmp", err)
	}
	if err := r.keep(func() { r.qmp = q }, q.close); err != nil {
		return nil, r.startError(ctx, "qmp", err)
	}
	hc, err := r.accept(ctx, r.hbLn)
	if err != nil {
		return nil, r.startError(ctx, "heartbeat", err)
	}
	if err := r.keep(func() { r.hbConn = hc }, func() { hc.Close() }); err != nil {
		return nil, r.startError(ctx, "heartbeat", err)
	}
	go r.readHeartbeats(hc)
	if _, err := q.command(ctx, "cont", nil); err != nil {
		return nil, r.startError(ctx, "cont", err)
	}
	if s := r.status.Load(); s != nil && *s == "starting" {
		r.status.CompareAndSwap(s, ptr("running"))
	}
	return r, nil
}

func ptr[T any](v T) *T { return &v }

// startError explains a start that failed, preferring QEMU's own words
// when it exited (an image locked by another QEMU, a bad option).
func (r *run) startError(ctx context.Context, step string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("qemuvm %s: %s: %w", r.vm.cfg.VMName, step, ctx.Err())
	}
	if r.exitedWithin(time.Second) {
		msg := r.proc.exitError()
		if strings.Contains(msg.Error(), "lock") {
			return resource.Transient(fmt.Errorf("qemuvm %s: disk image %s is %w: %v", r.vm.cfg.VMName, r.vm.cfg.Disk, errLocked, msg))
		}
		return msg
	}
	return fmt.Errorf("qemuvm %s: %s: %w", r.vm.cfg.VMName, step, err)
}

// exitedWithin reports whether QEMU exits within d: a closed connection
// usually means it did, and its exit status and stderr say why.
func (r *run) exitedWithin(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-r.proc.exited:
		return true
	case <-t.C:
		return false
	}
}

// accept accepts QEMU's connection on ln, unless ctx ends or QEMU exits.
func (r *run) accept(ctx context.Context, ln net.Listener) (net.Conn, error) {
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := ln.Accept()
		ch <- res{c, err}
	}()
	select {
	case a := <-ch:
		return a.c, a.err
	case <-ctx.Done():
	case <-r.proc.exited:
	}
	ln.Close()
	if a := <-ch; a.err == nil {
		a.c.Close()
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return nil, errors.New("qemu exited")
}

// consoleTail returns `, console (path) ends: "..."`, the last KiB of the
// console file, for errors that the guest's own words may explain (a boot
// panic); "" without a file.
func consoleTail(path string) string {
	if path == "" {
		return ""
	}
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	const size = 1024
	if st, err := f.Stat(); err == nil && st.Size() > size {
		_, _ = f.Seek(st.Size()-size, io.SeekStart)
	}
	b, _ := io.ReadAll(io.LimitReader(f, size))
	if t := strings.TrimSpace(string(b)); t != "" {
		return fmt.Sprintf(", console (%s) ends: %q", path, t)
	}
	return ""
}

// event handles one QMP event.
func (r *run) event(e qmpEvent) {
	name := r.vm.cfg.VMName
	r.vm.log.Info("qmp event", "event", e.Name, "data", string(e.Data))
	switch e.Name {
	case "RESUME":
		r.setStatus("running")
	case "STOP":
		r.setStatus("paused")
		r.fail(fmt.Errorf("qemuvm %s: guest stopped (QMP STOP)", name))
	case "SHUTDOWN":
		r.setStatus("shutdown")
		var d struct {
			Guest  bool   `json:"guest"`
			Reason string `json:"reason"`
		}
		_ = json.Unmarshal(e.Data, &d)
		r.fail(fmt.Errorf("qemuvm %s: guest shut down (QMP SHUTDOWN, reason %s)", name, d.Reason))
	case "GUEST_PANICKED":
		r.setStatus("panicked")
		r.fail(fmt.Errorf("qemuvm %s: guest panicked (QMP GUEST_PANICKED %s)", name, strings.TrimSpace(string(e.Data))))
	}
}

// readHeartbeats reads the guest's heartbeat lines: a line starting with
// "panic" is a guest-reported panic, every other line a heartbeat. Once
// the guest is up, silence longer than heartbeat_timeout is a failure.
func (r *run) readHeartbeats(conn net.Conn) {
	timeout := r.vm.cfg.HeartbeatTimeout.D()
	br := bufio.NewReader(conn)
	silent := false
	for {
		if !silent && r.lastBeat.Load() != 0 {
			_ = conn.SetReadDeadline(time.Now().Add(timeout))
		} else {
			_ = conn.SetReadDeadline(time.Time{})
		}
		line, err := br.ReadString('\n')
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				silent = true
				r.fail(fmt.Errorf("qemuvm %s: guest heartbeat silent for %v (heartbeat_timeout)", r.vm.cfg.VMName, timeout))
				continue
			}
			return
		}
		line = strings.TrimSpace(line)
		switch {
		case line == "":
		case strings.HasPrefix(line, "panic"):
			r.fail(fmt.Errorf("qemuvm %s: guest reported a panic: %q", r.vm.cfg.VMName, line))
		default:
			r.lastBeat.Store(time.Now().UnixNano())
			r.upOnce.Do(func() { close(r.up) })
		}
	}
}

// shutdown powers the guest down over ACPI and waits grace for QEMU to
// exit, then quits it, then kills it. It returns early, killing QEMU, when
// ctx ends.
func (r *run) shutdown(ctx context.Context, grace time.Duration) error {
	name := r.vm.cfg.VMName
	killed := func(step string) error {
		r.proc.kill()
		<-r.proc.exited
		return fmt.Errorf("qemuvm %s: %s: %w (QEMU killed)", name, step, ctx.Err())
	}
	if ctx.Err() != nil {
		return killed("offline")
	}
	if q := r.qmpConn(); q != nil && grace > 0 {
		if _, err := q.command(ctx, "system_powerdown", nil); err != nil {
			if ctx.Err() != nil {
				return killed("system_powerdown")
			}
			r.vm.log.Warn("system_powerdown failed", "err", err)
		} else {
			t := time.NewTimer(grace)
			defer t.Stop()
			select {
			case <-r.proc.exited:
				r.vm.log.Info("guest powered off", "after", time.Since(r.started).Round(time.Millisecond))
				return nil
			case <-ctx.Done():
				return killed("waiting for the guest to power off")
			case <-t.C:
				r.vm.log.Warn("guest ignored ACPI power-down; quitting QEMU", "shutdown_grace", grace)
			}
		}
	}
	r.quit(ctx, 5*time.Second)
	if ctx.Err() != nil {
		return fmt.Errorf("qemuvm %s: quit: %w (QEMU killed)", name, ctx.Err())
	}
	return nil
}

// quit sends QMP quit and waits up to wait (or until ctx ends) for QEMU to
// exit, then kills its process group and waits for it to be reaped.
func (r *run) quit(ctx context.Context, wait time.Duration) {
	if r.proc == nil {
		return
	}
	if q := r.qmpConn(); q != nil && ctx.Err() == nil {
		ctx, cancel := context.WithTimeout(ctx, wait)
		_, _ = q.command(ctx, "quit", nil)
		select {
		case <-r.proc.exited:
		case <-ctx.Done():
		}
		cancel()
	}
	r.proc.kill()
	<-r.proc.exited
}

// destroy kills QEMU (if still running), closes every connection and
// removes the private directory. Idempotent; concurrent callers wait.
func (r *run) destroy() {
	r.destroyOnce.Do(func() {
		r.mu.Lock()
		r.destroyed = true
		q, hc := r.qmp, r.hbConn
		r.mu.Unlock()
		if r.proc != nil {
			r.proc.kill()
			<-r.proc.exited
		}
		for _, c := range []interface{ Close() error }{r.qmpLn, r.hbLn, hc} {
			if c != nil {
				c.Close()
			}
		}
		if q != nil {
			q.close()
		}
		if r.dir != "" {
			os.RemoveAll(r.dir)
		}
		for _, p := range []string{r.vm.cfg.QMP, r.vm.cfg.HBSocket} {
			if p != "" {
				os.Remove(p)
			}
		}
	})
}

// qemuArgs builds QEMU's command line. QEMU starts paused (-S) and
// connects to the plugin's QMP and heartbeat sockets; the plugin lets the
// guest run ("cont") once it listens to the events.
func qemuArgs(c config, accel, qmpPath, hbPath string) []string {
	esc := func(s string) string { return strings.ReplaceAll(s, ",", ",,") }
	a := []string{
		"-nodefaults", "-no-user-config", "-display", "none", "-S", "-no-reboot",
		"-name", esc(c.VMName),
		"-machine", "pc,accel=" + accel,
		"-m", strconv.Itoa(int(c.Memory)),
		"-smp", strconv.Itoa(int(c.CPUs)),
		"-action", "panic=pause",
	}
	if c.Kernel != "" {
		a = append(a, "-kernel", c.Kernel)
		if c.Initrd != "" {
			a = append(a, "-initrd", c.Initrd)
		}
		if c.Append != "" {
			a = append(a, "-append", c.Append)
		}
	}
	if c.Disk != "" {
		a = append(a, "-drive", "file="+esc(c.Disk)+",format="+c.Format+",if=virtio")
	}
	a = append(a, "-chardev", "socket,id=qmp,path="+esc(qmpPath), "-mon", "chardev=qmp,mode=control")
	logfile := ""
	if c.ConsLog != "" {
		logfile = ",logfile=" + esc(c.ConsLog) + ",logappend=on"
	}
	switch kind, path, _ := strings.Cut(c.Console, ":"); kind {
	case "log":
		a = append(a, "-chardev", "file,id=con,path="+esc(path))
	case "socket":
		a = append(a, "-chardev", "socket,id=con,path="+esc(path)+",server=on,wait=off"+logfile)
	default:
		a = append(a, "-chardev", "null,id=con"+logfile)
	}
	a = append(a, "-serial", "chardev:con", "-chardev", "socket,id=hb,path="+esc(hbPath), "-serial", "chardev:hb")
	if c.pvpanic() {
		a = append(a, "-device", "pvpanic")
	}
	switch c.Network {
	case NetUser:
		nd := "user,id=net0"
		for _, f := range c.Forwards {
			nd += ",hostfwd=" + f
		}
		a = append(a, "-netdev", nd, "-device", "virtio-net-pci,netdev=net0")
	case NetTap:
		a = append(a, "-netdev", "tap,id=net0,ifname="+c.NetDev+",script=no,downscript=no", "-device", "virtio-net-pci,netdev=net0")
	case NetBridge:
		a = append(a, "-netdev", "bridge,id=net0,br="+c.NetDev, "-device", "virtio-net-pci,netdev=net0")
	}
	return a
}
