package systemdsandbox

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/godbus/dbus/v5"
	"golang.org/x/sys/unix"
)

// Config configures a sandbox. The zero value is ready to use.
type Config struct {
	// Systemd is the systemd binary. Default: /lib/systemd/systemd.
	Systemd string
	// Nsenter is the nsenter binary. Default: found in PATH.
	Nsenter string
	// Units are unit files (name -> contents) written into the sandbox's
	// /run/systemd/system before boot. Use DefaultDependencies=no in them.
	// Default: none.
	Units map[string]string
	// BootTimeout bounds Start (set-up, checks and boot until systemd
	// answers on D-Bus with SystemState running or degraded) on top of the
	// ctx given to Start.
	// Default: 30 s.
	BootTimeout time.Duration
	// LogLevel is systemd's --log-level (its console output is in
	// Sandbox.Output). Default: notice.
	LogLevel string
	// Logger receives the harness's steps and systemd's console output at
	// debug level. Default: discard.
	Logger *slog.Logger
}

// Sandbox is a running systemd in its own namespaces.
type Sandbox struct {
	log     *slog.Logger
	workDir string
	canary  string
	canaryB []byte
	cgroup  string

	cmd     *exec.Cmd // the sandbox's PID 1 (host view)
	proxy   *exec.Cmd
	busPath string
	output  *syncBuffer

	ptmx     *os.File // master of the sandbox's console
	ptSlave  *os.File // its slave, held open so the master never reads EIO
	ptmxDone chan struct{}

	closeOnce sync.Once
	closeErr  error
}

// PID is the host-view PID of the sandbox's systemd (PID 1 inside).
func (s *Sandbox) PID() int { return s.cmd.Process.Pid }

// Root is the sandbox's root directory seen from the host
// (/proc/PID/root): write unit files through it.
func (s *Sandbox) Root() string { return fmt.Sprintf("/proc/%d/root", s.PID()) }

// BusAddress is the D-Bus address of systemd's private bus, reachable from
// the host through the sandbox's proxy.
func (s *Sandbox) BusAddress() string { return "unix:path=" + s.busPath }

// CgroupPath is the host path of the sandbox's cgroup (the root of its
// cgroup namespace): a unit's processes are listed, with host PIDs, in
// CgroupPath()/system.slice/UNIT/cgroup.procs.
func (s *Sandbox) CgroupPath() string { return s.cgroup }

// Output returns what systemd wrote to its console (and the harness's
// children to stderr) so far, for test logs.
func (s *Sandbox) Output() string { return s.output.String() }

// DialBus opens an authenticated (EXTERNAL, uid 0) private connection to the
// sandbox's systemd. It needs no Hello: there is no bus daemon.
func (s *Sandbox) DialBus(ctx context.Context) (*dbus.Conn, error) {
	conn, err := dbus.Dial(s.BusAddress(), dbus.WithContext(ctx))
	if err != nil {
		return nil, err
	}
	if err := conn.Auth([]dbus.Auth{dbus.AuthExternal(strconv.Itoa(os.Getuid()))}); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

// WriteUnit writes a unit file into the sandbox's /run/systemd/system. The
// caller reloads systemd (Manager.Reload) before using it.
func (s *Sandbox) WriteUnit(name, text string) error {
	if name == "" || strings.ContainsAny(name, "/\x00") {
		return fmt.Errorf("systemdsandbox: bad unit name %q", name)
	}
	return os.WriteFile(filepath.Join(s.Root(), "run/systemd/system", name), []byte(text), 0o644)
}

// Start boots systemd in a sandbox (see the package documentation) and
// returns when it answers on D-Bus with SystemState running or degraded.
// It refuses to boot when any precaution cannot be verified. On error
// everything it created is torn down.
func Start(ctx context.Context, cfg Config) (_ *Sandbox, err error) {
	if os.Getenv(envRole) != "" {
		panic("systemdsandbox: Start called in a sandbox child: call systemdsandbox.Main first in TestMain")
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("systemdsandbox: needs root")
	}
	if cfg.Systemd == "" {
		cfg.Systemd = "/lib/systemd/systemd"
	}
	if cfg.Nsenter == "" {
		p, err := exec.LookPath("nsenter")
		if err != nil {
			return nil, fmt.Errorf("systemdsandbox: nsenter (Debian package util-linux): %w", err)
		}
		cfg.Nsenter = p
	}
	if _, err := os.Stat(cfg.Systemd); err != nil {
		return nil, fmt.Errorf("systemdsandbox: systemd (Debian package systemd): %w", err)
	}
	if cfg.LogLevel == "" {
		cfg.LogLevel = "notice"
	}
	if strings.ContainsAny(cfg.LogLevel, " \x00") {
		return nil, fmt.Errorf("systemdsandbox: bad log level %q", cfg.LogLevel)
	}
	if cfg.BootTimeout <= 0 {
		cfg.BootTimeout = 30 * time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.BootTimeout)
	defer cancel()
	s := &Sandbox{log: log, output: &syncBuffer{}}
	defer func() {
		if err != nil {
			if cerr := s.Close(); cerr != nil {
				err = errors.Join(err, cerr)
			}
		}
	}()

	// The canary lives in the real /tmp (not $TMPDIR): it is what a loose
	// systemd-tmpfiles would wipe.
	s.canaryB = make([]byte, 16)
	rand.Read(s.canaryB)
	cf, err := os.CreateTemp("/tmp", "sft-sandbox-canary-")
	if err != nil {
		return nil, err
	}
	s.canary = cf.Name()
	_, werr := cf.Write(s.canaryB)
	if cerr := cf.Close(); werr != nil || cerr != nil {
		return nil, errors.Join(werr, cerr)
	}
	sweepStale(log)
	if s.workDir, err = os.MkdirTemp("/tmp", "sft-systemd-sandbox-"); err != nil {
		return nil, err
	}
	// Who owns this sandbox, for sweepStale after a crash of this process.
	owner := fmt.Sprintf("%d %s %s\n", os.Getpid(), procStart(os.Getpid()), s.canary)
	if err := os.WriteFile(filepath.Join(s.workDir, "owner"), []byte(owner), 0o600); err != nil {
		return nil, err
	}
	root := filepath.Join(s.workDir, "root")
	unitsDir := filepath.Join(s.workDir, "units")
	for _, d := range []string{root, unitsDir} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return nil, err
		}
	}
	for name, text := range cfg.Units {
		if name == "" || strings.ContainsAny(name, "/\x00") {
			return nil, fmt.Errorf("systemdsandbox: bad unit name %q", name)
		}
		if err := os.WriteFile(filepath.Join(unitsDir, name), []byte(text), 0o644); err != nil {
			return nil, err
		}
	}

	// A cgroup of its own: the sandbox's cgroup namespace is rooted there,
	// so systemd manages that subtree only.
	v2, err := cgroup2Mount()
	if err != nil {
		return nil, err
	}
	s.cgroup = filepath.Join(v2, "sft-systemd-sandbox-"+filepath.Base(s.workDir))
	if err := os.Mkdir(s.cgroup, 0o755); err != nil {
		s.cgroup = ""
		return nil, fmt.Errorf("systemdsandbox: create cgroup: %w", err)
	}
	cgfd, err := unix.Open(s.cgroup, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(cgfd)

	statusR, statusW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer statusR.Close()
	goR, goW, err := os.Pipe()
	if err != nil {
		statusW.Close()
		return nil, err
	}
	defer goW.Close()

	// The sandbox's console: a pty whose master we read.
	console := ""
	if m, slave, err := openPty(); err == nil {
		// Hold the slave open ourselves: while no process has it open,
		// reads on the master fail with EIO, the reader would stop, and
		// systemd's console writes would block once the tty buffer fills.
		sl, err := os.OpenFile(slave, os.O_RDWR|syscall.O_NOCTTY, 0)
		if err != nil {
			m.Close()
			return nil, fmt.Errorf("systemdsandbox: open console %s: %w", slave, err)
		}
		s.ptmx, s.ptSlave, console = m, sl, slave
		s.ptmxDone = make(chan struct{})
		go func() {
			defer close(s.ptmxDone)
			io.Copy(s.output, m)
		}()
	} else {
		log.Debug("no pty for the sandbox console, using /dev/null", "err", err)
	}

	s.cmd = exec.Command(exe)
	s.cmd.Args = []string{"sft-systemd-sandbox-init"}
	s.cmd.Env = []string{
		envRole + "=" + roleInit,
		envRoot + "=" + root,
		envCanary + "=" + filepath.Base(s.canary),
		envSystemd + "=" + cfg.Systemd,
		envUnits + "=" + unitsDir,
		envLogLevel + "=" + cfg.LogLevel,
		envConsole + "=" + console,
	}
	s.cmd.Stdin = goR
	s.cmd.Stdout = s.output
	s.cmd.Stderr = s.output
	s.cmd.ExtraFiles = []*os.File{statusW}
	s.cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWPID | syscall.CLONE_NEWNS | syscall.CLONE_NEWUTS |
			syscall.CLONE_NEWIPC | syscall.CLONE_NEWNET | syscall.CLONE_NEWCGROUP,
		UseCgroupFD: true,
		CgroupFD:    cgfd,
		// If the test process dies, the sandbox's PID 1 dies, and with it
		// every process in its PID namespace.
		Pdeathsig: syscall.SIGKILL,
	}
	err = s.cmd.Start()
	goR.Close()
	statusW.Close()
	if err != nil {
		s.cmd = nil
		return nil, fmt.Errorf("systemdsandbox: start init: %w", err)
	}
	log.Debug("sandbox init started", "pid", s.cmd.Process.Pid, "cgroup", s.cgroup)

	// 1. The child checks the precautions from inside.
	line, err := readLine(ctx, statusR)
	if err != nil {
		return nil, fmt.Errorf("systemdsandbox: init did not report: %w (output: %s)", err, s.output)
	}
	if line != "ok" {
		return nil, fmt.Errorf("systemdsandbox: refusing to boot: %s", line)
	}
	// 2. We check them again from outside.
	if err := s.verifyOutside(); err != nil {
		return nil, fmt.Errorf("systemdsandbox: precautions not verified from the host, refusing to boot: %w", err)
	}
	// 3. Only then may the child exec systemd.
	if _, err := io.WriteString(goW, "go\n"); err != nil {
		return nil, fmt.Errorf("systemdsandbox: release init: %w", err)
	}
	log.Debug("sandbox verified, systemd booting", "pid", s.PID())

	if err := s.startProxy(ctx, cfg.Nsenter, exe); err != nil {
		return nil, err
	}
	if err := s.waitBooted(ctx); err != nil {
		return nil, fmt.Errorf("systemdsandbox: boot: %w (output: %s)", err, s.output)
	}
	if err := s.CheckCanary(); err != nil {
		return nil, err
	}
	return s, nil
}

// verifyOutside repeats the checks through /proc/PID from the host.
func (s *Sandbox) verifyOutside() error {
	pid := s.PID()
	f, err := os.Open(fmt.Sprintf("/proc/%d/mountinfo", pid))
	if err != nil {
		return err
	}
	entries, err := parseMountinfo(f)
	f.Close()
	if err != nil {
		return err
	}
	root := s.Root()
	var hostTmp, sbTmp unix.Stat_t
	if err := unix.Stat("/tmp", &hostTmp); err != nil {
		return err
	}
	if err := unix.Stat(filepath.Join(root, "tmp"), &sbTmp); err != nil {
		return err
	}
	var errs []error
	if hostTmp.Dev == sbTmp.Dev {
		errs = append(errs, errors.New("the sandbox's /tmp is on the host /tmp's device"))
	}
	errs = append(errs, checkMounts(entries), checkReadOnly(root, filepath.Join(root, "proc")),
		checkTmp(filepath.Join(root, "tmp"), filepath.Base(s.canary)))
	return errors.Join(errs...)
}

// CheckCanary reports whether the canary file in the real /tmp is intact.
func (s *Sandbox) CheckCanary() error {
	b, err := os.ReadFile(s.canary)
	if err != nil {
		return fmt.Errorf("systemdsandbox: CANARY IN /tmp LOST (%v): the sandbox touched the host's /tmp", err)
	}
	if !bytes.Equal(b, s.canaryB) {
		return fmt.Errorf("systemdsandbox: CANARY IN /tmp CHANGED: the sandbox touched the host's /tmp")
	}
	return nil
}

func (s *Sandbox) startProxy(ctx context.Context, nsenter, exe string) error {
	s.busPath = filepath.Join(s.workDir, "bus.sock")
	s.proxy = exec.Command(nsenter, "-t", strconv.Itoa(s.PID()), "-p", "--", exe)
	s.proxy.Env = []string{
		envRole + "=" + roleProxy,
		envListen + "=" + s.busPath,
		envTarget + "=" + filepath.Join(s.Root(), "run/systemd/private"),
	}
	out, err := s.proxy.StdoutPipe()
	if err != nil {
		return err
	}
	s.proxy.Stderr = s.output
	s.proxy.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.proxy.Start(); err != nil {
		s.proxy = nil
		return fmt.Errorf("systemdsandbox: start proxy: %w", err)
	}
	line, err := readLine(ctx, out)
	if err != nil || line != "listening" {
		return fmt.Errorf("systemdsandbox: proxy did not come up (%q, %v; output: %s)", line, err, s.output)
	}
	go io.Copy(io.Discard, out)
	return nil
}

// waitBooted polls until systemd answers on its private bus with a final
// SystemState. Boot takes tens of milliseconds; the poll period is 10 ms.
func (s *Sandbox) waitBooted(ctx context.Context) error {
	sock := filepath.Join(s.Root(), "run/systemd/private")
	var last error
	for {
		if _, err := os.Stat(sock); err == nil {
			last = s.systemState(ctx)
			if last == nil {
				return nil
			}
		} else {
			last = err
		}
		if s.cmd.ProcessState != nil {
			return errors.New("systemd exited")
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), last)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func (s *Sandbox) systemState(ctx context.Context) error {
	conn, err := s.DialBus(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	v, err := conn.Object("org.freedesktop.systemd1", "/org/freedesktop/systemd1").
		GetProperty("org.freedesktop.systemd1.Manager.SystemState")
	if err != nil {
		return err
	}
	st, _ := v.Value().(string)
	switch st {
	case "running", "degraded":
		s.log.Debug("sandbox systemd booted", "state", st)
		return nil
	}
	return fmt.Errorf("SystemState %q", st)
}

// Close tears the sandbox down: SIGKILL to its PID 1 (by PID; the kernel
// kills the rest of the PID namespace, the proxy included), wait for the
// processes and the cgroup to empty, remove the cgroup and the work
// directory, and check the canary. It is idempotent.
func (s *Sandbox) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.close() })
	return s.closeErr
}

func (s *Sandbox) close() error {
	var errs []error
	if s.cmd != nil && s.cmd.Process != nil {
		s.cmd.Process.Kill()
		s.cmd.Wait()
	}
	if s.ptmx != nil {
		// The sandbox's holders of the slave died with the namespace;
		// closing ours makes the reader get EIO and end.
		s.ptSlave.Close()
		select {
		case <-s.ptmxDone:
		case <-time.After(5 * time.Second):
		}
		s.ptmx.Close() // non-blocking fd: unblocks a reader still waiting
		<-s.ptmxDone
	}
	if s.proxy != nil && s.proxy.Process != nil {
		// nsenter's child (the proxy) died with the namespace; nsenter
		// then exits by itself. Kill it by PID in case it has not.
		s.proxy.Process.Kill()
		s.proxy.Wait()
	}
	if s.cgroup != "" {
		if err := removeCgroup(s.cgroup); err != nil {
			errs = append(errs, err)
		}
	}
	if s.workDir != "" {
		if err := s.removeWorkDir(); err != nil {
			errs = append(errs, err)
		}
	}
	if s.canary != "" {
		errs = append(errs, s.CheckCanary())
		os.Remove(s.canary)
	}
	return errors.Join(errs...)
}

// removeWorkDir removes the work directory entry by entry, never
// recursively: its root directory was the mount point of a bind of the
// whole host root (in the sandbox's mount namespace only), and a recursive
// removal that met such a mount would walk the host's file system. rmdir of
// a mount point fails with EBUSY instead.
func (s *Sandbox) removeWorkDir() error {
	var errs []error
	units := filepath.Join(s.workDir, "units")
	if ents, err := os.ReadDir(units); err == nil {
		for _, e := range ents {
			if err := os.Remove(filepath.Join(units, e.Name())); err != nil {
				errs = append(errs, err)
			}
		}
	}
	for _, p := range []string{units, filepath.Join(s.workDir, "bus.sock"), filepath.Join(s.workDir, "owner"),
		filepath.Join(s.workDir, "root"), s.workDir} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// openPty opens a pty master in the devpts mounted at /dev/pts and returns
// it with its slave's path.
func openPty() (*os.File, string, error) {
	fd, err := unix.Open("/dev/pts/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, "", err
	}
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		unix.Close(fd)
		return nil, "", err
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		unix.Close(fd)
		return nil, "", err
	}
	// Non-blocking, so that os.File uses the poller and Close wakes a
	// pending Read.
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, "", err
	}
	return os.NewFile(uintptr(fd), "ptmx"), fmt.Sprintf("/dev/pts/%d", n), nil
}

// procStart returns the start time of pid (field 22 of /proc/PID/stat), which
// tells a live owner from a later process that reused its PID.
func procStart(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	// The command name (field 2) may hold spaces; fields count from its ")".
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return ""
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return ""
	}
	return f[19]
}

// sweepStale removes what sandboxes of dead processes left behind (a test
// binary killed by its timeout cannot run Close; its sandbox died with it
// through Pdeathsig, but the work directory, the empty cgroup and the canary
// remain). Only sandboxes whose recorded owner is gone are touched.
func sweepStale(log *slog.Logger) {
	dirs, _ := filepath.Glob("/tmp/sft-systemd-sandbox-*")
	v2, err := cgroup2Mount()
	if err != nil {
		return
	}
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "owner"))
		if err != nil {
			continue
		}
		f := strings.Fields(string(b))
		if len(f) != 3 || !strings.HasPrefix(f[2], "/tmp/sft-sandbox-canary-") {
			continue
		}
		pid, err := strconv.Atoi(f[0])
		if err != nil || (procStart(pid) == f[1] && f[1] != "") {
			continue // owner alive
		}
		st := &Sandbox{workDir: d, canary: f[2]}
		cg := filepath.Join(v2, "sft-systemd-sandbox-"+filepath.Base(d))
		if ev, err := os.ReadFile(filepath.Join(cg, "cgroup.events")); err == nil && !bytes.Contains(ev, []byte("populated 0")) {
			log.Debug("stale sandbox cgroup still populated", "cgroup", cg)
			continue
		}
		if err := removeCgroup(cg); err != nil {
			log.Debug("stale sandbox cgroup", "cgroup", cg, "err", err)
			continue
		}
		if err := st.removeWorkDir(); err != nil {
			log.Debug("stale sandbox work dir", "dir", d, "err", err)
			continue
		}
		os.Remove(st.canary)
		log.Debug("removed a stale sandbox", "dir", d, "owner", pid)
	}
}

// removeCgroup waits (bounded, 5 s) until the cgroup has no processes left,
// then removes it and its children, deepest first.
func removeCgroup(dir string) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, err := os.ReadFile(filepath.Join(dir, "cgroup.events"))
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil
			}
			return err
		}
		if bytes.Contains(b, []byte("populated 0")) {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("systemdsandbox: cgroup %s still populated after 5 s", dir)
		}
		time.Sleep(5 * time.Millisecond)
	}
	var dirs []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	var errs []error
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := unix.Rmdir(dirs[i]); err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("rmdir %s: %w", dirs[i], err))
		}
	}
	return errors.Join(errs...)
}

// cgroup2Mount returns where the cgroup v2 hierarchy is mounted on the host
// (/sys/fs/cgroup on a unified host, /sys/fs/cgroup/unified on a hybrid one).
func cgroup2Mount() (string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	defer f.Close()
	entries, err := parseMountinfo(f)
	if err != nil {
		return "", err
	}
	for _, m := range entries {
		if m.FSType == "cgroup2" {
			return m.Point, nil
		}
	}
	return "", errors.New("systemdsandbox: no cgroup2 hierarchy mounted")
}

// readLine reads one line from r, giving up when ctx ends.
func readLine(ctx context.Context, r io.Reader) (string, error) {
	type res struct {
		s   string
		err error
	}
	ch := make(chan res, 1)
	go func() {
		s, err := bufio.NewReader(r).ReadString('\n')
		ch <- res{strings.TrimSpace(s), err}
	}()
	select {
	case x := <-ch:
		if x.err != nil && x.s == "" {
			return "", x.err
		}
		return x.s, nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.b.Len() > 1<<20 {
		return len(p), nil
	}
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// ErrUnsupported is returned by Start where the sandbox cannot run.
var ErrUnsupported = errors.ErrUnsupported
