package systemdsandbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/sftkit/sft/internal/testenv"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	Main()
	goleak.VerifyTestMain(m)
}

func TestParseMountinfoAndCheck(t *testing.T) {
	t.Parallel()
	const good = `1 0 254:0 / / ro,relatime - ext4 /dev/vda rw
2 1 0:5 / /run rw,nosuid - tmpfs sft-sandbox rw
3 1 0:6 / /tmp rw - tmpfs sft-sandbox rw
4 1 0:7 / /var/tmp rw - tmpfs sft-sandbox rw
5 1 0:8 / /var/log rw - tmpfs sft-sandbox rw
6 1 0:9 / /var/lib/systemd rw - tmpfs sft-sandbox rw
7 1 0:10 / /root rw - tmpfs sft-sandbox rw
8 1 0:11 / /dev/shm rw - tmpfs sft-sandbox rw
9 1 0:12 / /proc rw - proc proc rw
10 9 0:12 /sys /proc/sys ro - proc proc rw
11 1 0:13 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw
12 1 0:14 / /mnt/with\040space ro master:3 - tmpfs x ro
`
	entries, err := parseMountinfo(strings.NewReader(good))
	if err != nil {
		t.Fatal(err)
	}
	if got := entries[11].Point; got != "/mnt/with space" {
		t.Fatalf("unescape: got %q", got)
	}
	if err := checkMounts(entries); err != nil {
		t.Fatalf("good table rejected: %v", err)
	}
	tests := []struct {
		name, line, want string
	}{
		{"writable host mount", "20 1 254:0 /work /work rw - ext4 /dev/vda rw", "/work (ext4) is writable"},
		{"shared mount", "20 1 0:30 / /mnt/x ro shared:7 - tmpfs x ro", "is shared"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, err := parseMountinfo(strings.NewReader(good + tc.line + "\n"))
			if err != nil {
				t.Fatal(err)
			}
			err = checkMounts(e)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want error containing %q, got %v", tc.want, err)
			}
		})
	}
	t.Run("tmp is not tmpfs", func(t *testing.T) {
		e, _ := parseMountinfo(strings.NewReader(strings.Replace(good, "/tmp rw - tmpfs", "/tmp rw - ext4", 1)))
		if err := checkMounts(e); err == nil || !strings.Contains(err.Error(), "/tmp is ext4") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("hidden writable mount", func(t *testing.T) {
		e, _ := parseMountinfo(strings.NewReader(strings.Replace(good, "3 1 0:6 / /tmp rw - tmpfs", "30 1 0:6 / /tmp rw - ext4 host rw\n3 1 0:6 / /tmp rw - tmpfs", 1)))
		if err := checkMounts(e); err == nil || !strings.Contains(err.Error(), "mount /tmp (ext4) is writable") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("root writable", func(t *testing.T) {
		e, _ := parseMountinfo(strings.NewReader(strings.Replace(good, "/ / ro,relatime", "/ / rw,relatime", 1)))
		if err := checkMounts(e); err == nil || !strings.Contains(err.Error(), "mount / (ext4) is writable") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("missing tmpfs", func(t *testing.T) {
		e, _ := parseMountinfo(strings.NewReader(strings.Replace(good, "6 1 0:9 / /var/lib/systemd rw - tmpfs sft-sandbox rw\n", "", 1)))
		if err := checkMounts(e); err == nil || !strings.Contains(err.Error(), "no fresh mount at /var/lib/systemd") {
			t.Fatalf("got %v", err)
		}
	})
}

func TestCheckTmpRejectsHostTmp(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	f, err := os.CreateTemp(dir, "canary-")
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	// t.TempDir is not an empty tmpfs showing no canary: must be refused.
	if err := checkTmp(dir, filepath.Base(f.Name())); err == nil {
		t.Fatal("checkTmp accepted a directory that shows the canary")
	}
}

// TestBoot boots the real systemd in the sandbox, checks it from inside and
// outside, starts a unit, tears down and checks nothing is left.
func TestBoot(t *testing.T) {
	testenv.RequireRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// Debug logging writes far more than a tty buffer holds: the console
	// must keep draining (it once blocked systemd).
	sb, err := Start(ctx, Config{LogLevel: "debug", Units: map[string]string{
		"sleeper.service": "[Unit]\nDefaultDependencies=no\n[Service]\nExecStart=/bin/sleep infinity\nStandardOutput=null\n",
	}})
	if err != nil {
		t.Fatal(err)
	}
	pid := sb.PID()
	workDir, cgroup, canary := sb.workDir, sb.cgroup, sb.canary
	t.Cleanup(func() { sb.Close() })

	// Still read-only from outside after boot.
	if err := checkReadOnly(sb.Root(), filepath.Join(sb.Root(), "proc")); err != nil {
		t.Fatalf("after boot: %v", err)
	}
	// The console is the sandbox's own, not the host's (5:1).
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(sb.Root(), "dev/console"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Rdev == 5<<8|1 {
		t.Fatal("the sandbox's /dev/console is the host's console")
	}
	// No copies of host mounts below the fresh tmpfs mounts.
	mi, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", sb.PID()))
	if err != nil {
		t.Fatal(err)
	}
	entries, err := parseMountinfo(strings.NewReader(string(mi)))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range entries {
		if strings.HasPrefix(m.Point, "/tmp/") || (strings.HasPrefix(m.Point, "/run/") && m.FSType != "tmpfs") {
			t.Errorf("host mount copy left below a fresh tmpfs: %s (%s)", m.Point, m.FSType)
		}
	}
	conn, err := sb.DialBus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Private bus: systemd sends every signal to every direct client.
	sigs := make(chan *dbus.Signal, 64)
	conn.Signal(sigs)
	obj := conn.Object("org.freedesktop.systemd1", "/org/freedesktop/systemd1")
	var job dbus.ObjectPath
	if err := obj.CallWithContext(ctx, "org.freedesktop.systemd1.Manager.StartUnit", 0, "sleeper.service", "replace").Store(&job); err != nil {
		t.Fatalf("StartUnit: %v\n%s", err, sb.Output())
	}
	for result := ""; result == ""; {
		select {
		case sig := <-sigs:
			if sig.Name == "org.freedesktop.systemd1.Manager.JobRemoved" && len(sig.Body) == 4 && sig.Body[1] == job {
				result, _ = sig.Body[3].(string)
			}
		case <-ctx.Done():
			t.Fatalf("no JobRemoved for %s: %v", job, ctx.Err())
		}
	}
	var pidv dbus.Variant
	if err := conn.Object("org.freedesktop.systemd1", "/org/freedesktop/systemd1/unit/sleeper_2eservice").CallWithContext(ctx,
		"org.freedesktop.DBus.Properties.Get", 0, "org.freedesktop.systemd1.Service", "MainPID").Store(&pidv); err != nil {
		t.Fatal(err)
	}
	if p, _ := pidv.Value().(uint32); p == 0 {
		t.Fatalf("sleeper.service has no main pid after its start job: %v", pidv)
	}
	conn.Close()
	if _, err := os.Stat(filepath.Join(cgroup, "system.slice/sleeper.service")); err != nil {
		var tree []string
		filepath.WalkDir(cgroup, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				tree = append(tree, p)
			}
			return nil
		})
		t.Fatalf("systemd did not manage the sandbox cgroup: %v\ntree: %v\noutput:\n%s", err, tree, sb.Output())
	}
	if out := sb.Output(); !strings.Contains(out, "sleeper.service") {
		t.Errorf("systemd's console output not captured (%d bytes)", len(out))
	}
	if err := sb.Close(); err != nil {
		t.Fatalf("Close: %v\n%s", err, sb.Output())
	}
	for _, p := range []string{workDir, cgroup} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left behind (%v)", p, err)
		}
	}
	if _, err := os.Stat(canary); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("canary %s left behind", canary)
	}
	if err := unixKill0(pid); err == nil {
		t.Errorf("sandbox pid %d still exists", pid)
	}
}

// TestSweepStale: leftovers of a sandbox whose owner died (work dir, empty
// cgroup with children, canary) are removed; those of a live owner are not.
func TestSweepStale(t *testing.T) {
	testenv.RequireRoot(t)
	v2, err := cgroup2Mount()
	if err != nil {
		t.Fatal(err)
	}
	make1 := func(ownerPID int, start string) (dir, cg, canary string) {
		t.Helper()
		dir, err := os.MkdirTemp("/tmp", "sft-systemd-sandbox-")
		if err != nil {
			t.Fatal(err)
		}
		f, err := os.CreateTemp("/tmp", "sft-sandbox-canary-")
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		canary = f.Name()
		for _, d := range []string{"root", "units"} {
			os.Mkdir(filepath.Join(dir, d), 0o700)
		}
		os.WriteFile(filepath.Join(dir, "units", "x.service"), nil, 0o644)
		os.WriteFile(filepath.Join(dir, "owner"), []byte(strconv.Itoa(ownerPID)+" "+start+" "+canary+"\n"), 0o600)
		cg = filepath.Join(v2, "sft-systemd-sandbox-"+filepath.Base(dir))
		if err := os.MkdirAll(filepath.Join(cg, "system.slice", "x.service"), 0o755); err != nil {
			t.Fatal(err)
		}
		return dir, cg, canary
	}
	// A dead owner: a child that has exited and been reaped.
	cmd := exec.Command("/bin/true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	deadDir, deadCg, deadCanary := make1(cmd.Process.Pid, "1")
	liveDir, liveCg, liveCanary := make1(os.Getpid(), procStart(os.Getpid()))
	t.Cleanup(func() {
		(&Sandbox{workDir: liveDir}).removeWorkDir()
		removeCgroup(liveCg)
		os.Remove(liveCanary)
	})

	sweepStale(slog.New(slog.DiscardHandler))

	for _, p := range []string{deadDir, deadCg, deadCanary} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("stale %s not removed (%v)", p, err)
		}
	}
	for _, p := range []string{liveDir, liveCg, liveCanary} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("live owner's %s removed: %v", p, err)
		}
	}
}
