package systemdsandbox

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// Environment of the child roles.
const (
	envRole     = "SFT_SYSTEMD_SANDBOX_ROLE"
	envRoot     = "SFT_SYSTEMD_SANDBOX_ROOT"
	envCanary   = "SFT_SYSTEMD_SANDBOX_CANARY"
	envSystemd  = "SFT_SYSTEMD_SANDBOX_SYSTEMD"
	envUnits    = "SFT_SYSTEMD_SANDBOX_UNITS"
	envListen   = "SFT_SYSTEMD_SANDBOX_LISTEN"
	envTarget   = "SFT_SYSTEMD_SANDBOX_TARGET"
	envLogLevel = "SFT_SYSTEMD_SANDBOX_LOG_LEVEL"
	envConsole  = "SFT_SYSTEMD_SANDBOX_CONSOLE"

	roleInit  = "init"
	roleProxy = "proxy"
)

// Main runs a sandbox child role when this process was started as one, and
// never returns in that case; otherwise it returns at once. Call it first
// thing in TestMain of every test binary that uses [Start]:
//
//	func TestMain(m *testing.M) {
//		systemdsandbox.Main()
//		os.Exit(m.Run())
//	}
func Main() {
	switch os.Getenv(envRole) {
	case "":
		return
	case roleInit:
		err := runInit()
		fmt.Fprintf(os.Stderr, "systemdsandbox init: %v\n", err)
		os.Exit(111)
	case roleProxy:
		// runProxy serves until its listener fails, so it always returns
		// an error.
		err := runProxy(os.Getenv(envListen), os.Getenv(envTarget))
		fmt.Fprintf(os.Stderr, "systemdsandbox proxy: %v\n", err)
		os.Exit(112)
	default:
		fmt.Fprintf(os.Stderr, "systemdsandbox: unknown role %q\n", os.Getenv(envRole))
		os.Exit(113)
	}
}

// droppedCaps leave the bounding set before systemd is exec'ed: they act on
// state the namespaces do not isolate (modules, clock, raw I/O, kernel log).
var droppedCaps = []uintptr{
	unix.CAP_SYS_MODULE, unix.CAP_SYS_TIME, unix.CAP_SYS_RAWIO, unix.CAP_SYSLOG,
	unix.CAP_WAKE_ALARM, unix.CAP_MAC_ADMIN, unix.CAP_MAC_OVERRIDE,
}

// runInit is PID 1 of the new namespaces until it execs systemd. It reports
// "ok" or an error on fd 3, then waits for "go" on stdin before the exec.
// It only returns on error.
func runInit() error {
	status := os.NewFile(3, "status")
	report := func(err error) error {
		msg := "ok"
		if err != nil {
			msg = "error: " + strings.ReplaceAll(err.Error(), "\n", "; ")
		}
		fmt.Fprintln(status, msg)
		return err
	}
	if os.Getpid() != 1 {
		return report(fmt.Errorf("init runs as pid %d, not 1: no new pid namespace", os.Getpid()))
	}
	root := os.Getenv(envRoot)
	canary := os.Getenv(envCanary)
	if root == "" || canary == "" {
		return report(errors.New("missing root or canary in the environment"))
	}
	if err := setupRoot(root, os.Getenv(envUnits)); err != nil {
		return report(err)
	}
	if err := verifyInside(canary); err != nil {
		return report(fmt.Errorf("precautions not in place, refusing to boot: %w", err))
	}
	for _, c := range droppedCaps {
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, c, 0, 0, 0); err != nil {
			return report(fmt.Errorf("drop capability %d: %w", c, err))
		}
	}
	report(nil)
	status.Close()

	line, err := bufio.NewReader(os.Stdin).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "go" {
		return fmt.Errorf("parent did not say go (%q, %v)", line, err)
	}
	systemd := os.Getenv(envSystemd)
	argv := []string{systemd, "--unit=" + TargetUnit, "--log-target=console", "--log-level=" + os.Getenv(envLogLevel), "--show-status=no"}
	env := []string{"container=sft-systemd-sandbox", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"}
	return unix.Exec(systemd, argv, env)
}

func mount(source, target, fstype string, flags uintptr, data string) error {
	if err := unix.Mount(source, target, fstype, flags, data); err != nil {
		return fmt.Errorf("mount %s on %s (%s): %w", source, target, fstype, err)
	}
	return nil
}

// setupRoot builds the sandbox's root at root and pivots into it.
func setupRoot(root, unitsDir string) error {
	// Nothing we mount may reach the host.
	if err := mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return err
	}
	if err := mount("/", root, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return err
	}
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}
	if err := unix.MountSetattr(unix.AT_FDCWD, root, unix.AT_RECURSIVE, &attr); err != nil {
		return fmt.Errorf("recursive read-only remount of the host root: %w", err)
	}
	tmpfs := func(dir, mode string, ro bool) error {
		p := filepath.Join(root, dir)
		if fi, err := os.Stat(p); err != nil || !fi.IsDir() {
			return fmt.Errorf("mount point %s missing on the host: %v", dir, err)
		}
		var flags uintptr = unix.MS_NOSUID | unix.MS_NODEV
		if ro {
			flags |= unix.MS_RDONLY
		}
		return mount("sft-sandbox", p, "tmpfs", flags, "mode="+mode)
	}
	fresh := []struct{ dir, mode string }{
		{"/run", "0755"}, {"/tmp", "1777"}, {"/var/tmp", "1777"}, {"/var/log", "0755"},
		{"/var/lib/systemd", "0755"}, {"/root", "0700"}, {"/dev/shm", "1777"},
	}
	// Drop the copies of host mounts below them first (network namespaces
	// under /run/netns, say): hidden, they would still pin what they hold.
	var dirs []string
	for _, d := range fresh {
		dirs = append(dirs, filepath.Join(root, d.dir))
	}
	if err := detachBelow(dirs); err != nil {
		return err
	}
	for _, d := range fresh {
		if err := tmpfs(d.dir, d.mode, false); err != nil {
			return err
		}
	}
	// A console of its own: systemd as PID 1 logs to /dev/console, which
	// would be the host's console. It gets the slave of a pty whose master
	// the parent reads (Sandbox.Output), or /dev/null when there is none;
	// /dev/kmsg, the host's kernel log, becomes /dev/null.
	console := os.Getenv(envConsole)
	if console == "" {
		console = "/dev/null"
	}
	for _, b := range []struct{ src, dst string }{{console, "/dev/console"}, {"/dev/null", "/dev/kmsg"}} {
		dst := filepath.Join(root, b.dst)
		if _, err := os.Stat(dst); err != nil {
			continue
		}
		if err := mount(b.src, dst, "", unix.MS_BIND, ""); err != nil {
			return err
		}
	}
	// Hide the host's generators and admin units behind empty read-only
	// tmpfs: no fstab mounts, no host services.
	for _, d := range []string{
		"/usr/lib/systemd/system-generators", "/usr/local/lib/systemd/system-generators",
		"/etc/systemd/system-generators", "/usr/lib/systemd/system-environment-generators",
		"/etc/systemd/system",
	} {
		if fi, err := os.Stat(filepath.Join(root, d)); err != nil || !fi.IsDir() {
			continue
		}
		if err := tmpfs(d, "0755", true); err != nil {
			return err
		}
	}
	// Fresh proc for the new pid namespace, its global knobs read-only.
	proc := filepath.Join(root, "proc")
	if err := mount("proc", proc, "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return err
	}
	for _, p := range []string{"sys", "sysrq-trigger", "irq", "bus", "fs", "kcore", "kmsg"} {
		pp := filepath.Join(proc, p)
		if _, err := os.Stat(pp); err != nil {
			continue
		}
		if err := mount(pp, pp, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return err
		}
		if err := mount("", pp, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
			return err
		}
	}
	// Fresh read-only sysfs (it shows the new network namespace) and a
	// cgroup2 hierarchy rooted at the sandbox's cgroup namespace.
	sys := filepath.Join(root, "sys")
	if err := mount("sysfs", sys, "sysfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return err
	}
	if err := mount("cgroup2", filepath.Join(sys, "fs/cgroup"), "cgroup2", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return err
	}
	// Masks, the sandbox target and the caller's units, in the new /run.
	control := filepath.Join(root, "run/systemd/system.control")
	units := filepath.Join(root, "run/systemd/system")
	for _, d := range []string{control, units} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	for _, u := range MaskedUnits {
		if err := os.Symlink("/dev/null", filepath.Join(control, u)); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(units, TargetUnit), []byte(targetUnitText), 0o644); err != nil {
		return err
	}
	if unitsDir != "" {
		ents, err := os.ReadDir(unitsDir)
		if err != nil {
			return err
		}
		for _, e := range ents {
			b, err := os.ReadFile(filepath.Join(unitsDir, e.Name()))
			if err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(units, e.Name()), b, 0o644); err != nil {
				return err
			}
		}
	}
	// Enter the new root and drop the old one.
	if err := unix.Chdir(root); err != nil {
		return err
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detach old root: %w", err)
	}
	return unix.Chdir("/")
}

// detachBelow lazily unmounts every mount strictly below one of dirs,
// deepest first.
func detachBelow(dirs []string) error {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	entries, err := parseMountinfo(f)
	f.Close()
	if err != nil {
		return err
	}
	var below []string
	for _, m := range entries {
		for _, d := range dirs {
			if strings.HasPrefix(m.Point, d+"/") {
				below = append(below, m.Point)
			}
		}
	}
	// Deeper (longer) paths first; a stacked point appears once per mount.
	slices.SortFunc(below, func(a, b string) int { return len(b) - len(a) })
	for _, p := range below {
		if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("detach %s: %w", p, err)
		}
	}
	return nil
}

// verifyInside checks the precautions from inside the new root.
func verifyInside(canary string) error {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	entries, err := parseMountinfo(f)
	f.Close()
	if err != nil {
		return err
	}
	return errors.Join(checkMounts(entries), checkReadOnly("/", "/proc"), checkTmp("/tmp", canary))
}

// runProxy forwards every connection on listen to target, byte for byte.
// It runs inside the sandbox's PID namespace (the credentials systemd sees
// are then its own), and dies with the namespace.
func runProxy(listen, target string) error {
	if listen == "" || target == "" {
		return errors.New("missing listen or target address")
	}
	l, err := net.Listen("unix", listen)
	if err != nil {
		return err
	}
	// Tell the parent we listen.
	fmt.Fprintln(os.Stdout, "listening")
	for {
		c, err := l.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer c.Close()
			u, err := net.Dial("unix", target)
			if err != nil {
				return
			}
			defer u.Close()
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				io.Copy(u, c)
				u.(*net.UnixConn).CloseWrite()
			}()
			io.Copy(c, u)
			c.(*net.UnixConn).CloseWrite()
			wg.Wait()
		}()
	}
}
