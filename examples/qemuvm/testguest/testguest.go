// Package testguest builds the tiny guest the qemuvm tests boot: Debian's
// cloud kernel (fetched with `apt-get download`, unpacked with `dpkg-deb
// -x`, no package scripts run) and a busybox-static initramfs (packed with
// cpio) whose /init speaks the qemuvm heartbeat protocol. Nothing is
// downloaded from anywhere but the machine's apt sources.
//
// The guest's /init:
//
//   - writes "sft-heartbeat N" to /dev/ttyS1 (the qemuvm heartbeat port)
//     every 100 ms;
//   - powers off (poweroff -f) on the ACPI power button, that is on QMP
//     system_powerdown (it loads the kernel's button and evdev modules and
//     waits for an event from the "Power Button" input device);
//   - loads pvpanic, so that a kernel panic raises QMP GUEST_PANICKED;
//   - reads commands on its console, /dev/ttyS0: "panic" (a kernel panic,
//     echo c > /proc/sysrq-trigger), "report-panic" (writes a "panic" line
//     on the heartbeat port), "hang" (stops the heartbeats).
//
// Kernel command line "sft.mode=hang" makes it never send a heartbeat (an
// Online that never finishes); "sft.mode=noacpi" makes it ignore the power
// button (a stubborn guest).
//
// The cache (see CacheDir) keeps the kernel and its four modules, about
// 9 MB, and the initramfs; the .deb is removed after unpacking.
package testguest

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// CacheEnv overrides the cache directory.
const CacheEnv = "SFT_QEMUVM_CACHE"

// RequireEnv turns Require's skip into a failure when it is "1" (the
// variable sft's CI sets for tests that need root and system packages).
const RequireEnv = "SFT_REQUIRE_ROOT_TESTS"

// KernelPackage is the metapackage whose dependency names the kernel.
const KernelPackage = "linux-image-cloud-amd64"

// Guest is a built test guest.
type Guest struct {
	Kernel string // vmlinuz
	Initrd string // gzip-compressed newc cpio
	QEMU   string // qemu-system-x86_64 found in PATH
}

// Append is the kernel command line for mode ("" or "normal", "hang",
// "noacpi"), plus extra words.
//
//   - no_timer_check: the kernel's IO-APIC timer check counts timer ticks
//     during a fixed delay; a TCG vCPU starved by a loaded host misses
//     them, and the kernel panics at boot ("IO-APIC + timer doesn't
//     work!"), before any heartbeat. That was the boot flake of the loaded
//     runs (seen in 2 of 5 boots at load 27). Guests under TCG need it.
//   - panic=-1: a panic reboots at once, and QEMU's -no-reboot turns that
//     into an exit, so a panic before pvpanic is loaded ends Online with
//     an error instead of a silent wait for boot_timeout.
//   - console=ttyS0,115200 loglevel=1: while the kernel boots, its
//     emergencies (a boot panic) go to the serial console, the console_log
//     the tests keep. The init then silences the kernel's console
//     (console_loglevel 0): a panic raises the level to print its stack
//     dump, and the emulated 8250 under TCG on a loaded host takes seconds
//     for it, all before the kernel tells pvpanic; at level 0 it stays
//     silent.
//   - the rest skips work a throwaway guest does not need (CPU mitigations,
//     crypto self-tests, zeroing of allocations, audit, the PS/2 ports):
//     about a third less CPU per TCG boot.
func Append(mode string, extra ...string) string {
	words := []string{
		"console=ttyS0,115200", "quiet", "loglevel=1", "no_timer_check", "panic=-1",
		"mitigations=off", "cryptomgr.notests", "init_on_alloc=0", "audit=0",
		"i8042.noaux", "i8042.nokbd", "tsc=reliable", "random.trust_cpu=on",
	}
	if mode != "" {
		words = append(words, "sft.mode="+mode)
	}
	return strings.Join(append(words, extra...), " ")
}

// KeepConsole prints the last lines of the guest console log at path (the
// qemuvm property console_log) when t has failed, at the end of t: what
// the guest said is often the reason.
func KeepConsole(t testing.TB, path string) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Logf("guest console %s: %v", path, err)
			return
		}
		lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
		lines = lines[max(0, len(lines)-40):]
		t.Logf("guest console %s, last %d lines:\n%s", path, len(lines), strings.Join(lines, "\n"))
	})
}

// Marker returns a unique kernel command line word ("sft.test=<hex>") for
// a test's guest: QEMUPids finds the QEMU processes by it, a probe from
// outside the resource.
func Marker() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return "sft.test=" + hex.EncodeToString(b)
}

// QEMUPids lists the live (not zombie) QEMU processes whose command line
// holds mark.
func QEMUPids(mark string) []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmd, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || !bytes.Contains(cmd, []byte(mark)) || !bytes.Contains(cmd, []byte("qemu")) {
			continue
		}
		if st := procStat(pid); len(st) > 0 && st[0] == "Z" {
			continue // dead: only its reaping is pending
		}
		pids = append(pids, pid)
	}
	return pids
}

// Descends reports whether process pid descends from ancestor.
func Descends(pid, ancestor int) bool {
	for pid > 1 {
		if pid == ancestor {
			return true
		}
		st := procStat(pid)
		if len(st) < 2 {
			return false
		}
		pid, _ = strconv.Atoi(st[1])
	}
	return false
}

// procStat is /proc/pid/stat's fields after the command name: state,
// ppid, ...; nil when the process is gone.
func procStat(pid int) []string {
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	return strings.Fields(string(st[bytes.LastIndexByte(st, ')')+1:]))
}

// CacheDir is $SFT_QEMUVM_CACHE, else os.UserCacheDir()/sft-qemuvm
// ($XDG_CACHE_HOME/sft-qemuvm or ~/.cache/sft-qemuvm).
func CacheDir() (string, error) {
	if d := os.Getenv(CacheEnv); d != "" {
		return d, nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, "sft-qemuvm"), nil
}

// Require builds (or finds in the cache) the guest and finds QEMU. When it
// cannot, it skips t, or fails it when SFT_REQUIRE_ROOT_TESTS=1 (as in
// .ci/run, which installs what the guest needs). With go test -short the
// guest tests skip (each boots a TCG guest, seconds of CPU), unless
// SFT_REQUIRE_ROOT_TESTS=1.
func Require(t testing.TB) Guest {
	t.Helper()
	required := os.Getenv(RequireEnv) == "1"
	if testing.Short() && !required {
		t.Skip("qemuvm guest tests boot TCG guests; skipped with -short")
	}
	g, err := Build()
	if err != nil {
		if required {
			t.Fatalf("qemuvm test guest: %v (and %s=1 forbids skipping)", err, RequireEnv)
		}
		t.Skipf("qemuvm test guest unavailable: %v; apt-get install qemu-system-x86 busybox-static cpio (set %s=1 to make this a failure)", err, RequireEnv)
	}
	return g
}

// Build returns the guest from the cache, building what is missing.
func Build() (Guest, error) {
	var g Guest
	var err error
	if g.QEMU, err = exec.LookPath("qemu-system-x86_64"); err != nil {
		return g, fmt.Errorf("qemu-system-x86_64: %w", err)
	}
	dir, err := CacheDir()
	if err != nil {
		return g, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return g, err
	}
	lock, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return g, err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil { // parallel test binaries
		return g, err
	}
	kdir, err := kernel(dir)
	if err != nil {
		return g, err
	}
	g.Kernel = filepath.Join(kdir, "vmlinuz")
	g.Initrd, err = initrd(dir, kdir)
	return g, err
}

var dependsRE = regexp.MustCompile(`Depends: (linux-image-\S+)`)

// modules are the kernel modules the init loads, by path in the package.
var modules = []string{
	"kernel/drivers/acpi/button.ko",
	"kernel/drivers/input/evdev.ko",
	"kernel/drivers/misc/pvpanic/pvpanic.ko",
	"kernel/drivers/misc/pvpanic/pvpanic-mmio.ko",
}

// kernel returns the cache's kernel directory (vmlinuz and the modules),
// downloading and unpacking the package when missing.
func kernel(dir string) (string, error) {
	out, err := exec.Command("apt-cache", "depends", KernelPackage).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("apt-cache depends %s: %v: %s", KernelPackage, err, out)
	}
	m := dependsRE.FindSubmatch(out)
	if m == nil {
		return "", fmt.Errorf("apt-cache depends %s: no linux-image dependency in %q", KernelPackage, out)
	}
	pkg := string(m[1])
	kdir := filepath.Join(dir, pkg)
	if _, err := os.Stat(filepath.Join(kdir, "vmlinuz")); err == nil {
		return kdir, nil
	}
	tmp, err := os.MkdirTemp(dir, "download-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	dl := exec.Command("apt-get", "download", pkg)
	dl.Dir = tmp
	if out, err := dl.CombinedOutput(); err != nil {
		return "", fmt.Errorf("apt-get download %s: %v: %s", pkg, err, out)
	}
	debs, _ := filepath.Glob(filepath.Join(tmp, "*.deb"))
	if len(debs) != 1 {
		return "", fmt.Errorf("apt-get download %s: want one .deb, got %v", pkg, debs)
	}
	x := filepath.Join(tmp, "x")
	if out, err := exec.Command("dpkg-deb", "-x", debs[0], x).CombinedOutput(); err != nil {
		return "", fmt.Errorf("dpkg-deb -x %s: %v: %s", debs[0], err, out)
	}
	stage := filepath.Join(tmp, "stage")
	if err := os.MkdirAll(stage, 0o755); err != nil {
		return "", err
	}
	vmlinuz, _ := filepath.Glob(filepath.Join(x, "boot", "vmlinuz-*"))
	mods, _ := filepath.Glob(filepath.Join(x, "lib", "modules", "*"))
	if len(vmlinuz) != 1 || len(mods) != 1 {
		return "", fmt.Errorf("%s: want one boot/vmlinuz-* and one lib/modules/*, got %v %v", debs[0], vmlinuz, mods)
	}
	if err := os.Rename(vmlinuz[0], filepath.Join(stage, "vmlinuz")); err != nil {
		return "", err
	}
	for _, m := range modules {
		if err := os.Rename(filepath.Join(mods[0], m), filepath.Join(stage, filepath.Base(m))); err != nil {
			return "", fmt.Errorf("%s: %w", pkg, err)
		}
	}
	if err := os.Rename(stage, kdir); err != nil {
		return "", err
	}
	return kdir, nil
}

// staticBusybox finds a statically linked busybox (busybox-static).
func staticBusybox() (string, error) {
	for _, p := range []string{"/bin/busybox", "/usr/bin/busybox"} {
		f, err := elf.Open(p)
		if err != nil {
			continue
		}
		interp := false
		for _, prog := range f.Progs {
			if prog.Type == elf.PT_INTERP {
				interp = true
			}
		}
		f.Close()
		if !interp {
			return p, nil
		}
	}
	return "", errors.New("no statically linked busybox (install busybox-static)")
}

// initrd builds the initramfs into the cache (named after a hash of its
// inputs) unless it is there.
func initrd(dir, kdir string) (string, error) {
	bb, err := staticBusybox()
	if err != nil {
		return "", err
	}
	if _, err := exec.LookPath("cpio"); err != nil {
		return "", fmt.Errorf("cpio: %w (install cpio)", err)
	}
	bbBytes, err := os.ReadFile(bb)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	h.Write(bbBytes)
	h.Write([]byte(initScript))
	h.Write([]byte(kdir))
	path := filepath.Join(dir, "initrd-"+hex.EncodeToString(h.Sum(nil))[:16]+".gz")
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	root, err := os.MkdirTemp(dir, "root-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(root)
	for _, d := range []string{"bin", "proc", "sys", "dev", "lib", "tmp"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return "", err
		}
	}
	if err := os.WriteFile(filepath.Join(root, "bin", "busybox"), bbBytes, 0o755); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(root, "init"), []byte(initScript), 0o755); err != nil {
		return "", err
	}
	for _, m := range modules {
		b, err := os.ReadFile(filepath.Join(kdir, filepath.Base(m)))
		if err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(root, "lib", filepath.Base(m)), b, 0o644); err != nil {
			return "", err
		}
	}
	var files bytes.Buffer
	_ = filepath.Walk(root, func(p string, _ os.FileInfo, err error) error {
		if err == nil && p != root {
			rel, _ := filepath.Rel(root, p)
			files.WriteString(rel + "\n")
		}
		return err
	})
	cmd := exec.Command("cpio", "-o", "-H", "newc", "--quiet")
	cmd.Dir = root
	cmd.Stdin = &files
	var archive, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &archive, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("cpio: %v: %s", err, stderr.String())
	}
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
	zw.Write(archive.Bytes())
	if err := zw.Close(); err != nil {
		return "", err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, gz.Bytes(), 0o644); err != nil {
		return "", err
	}
	return path, os.Rename(tmp, path)
}

const initScript = `#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
# Kernel messages off the console from here on (see Append): a panic
# must reach pvpanic at once, not after a slow serial stack dump.
echo 0 >/proc/sys/kernel/printk
# nap sleeps without a fork (read times out on a FIFO nobody writes):
# under TCG a fork costs milliseconds of CPU, and the loops below nap
# ten times a second for the guest's whole life.
mkfifo /tmp/.nap
exec 9<>/tmp/.nap
nap() { read -t "$1" _ <&9; }
mode=normal
for a in $(cat /proc/cmdline); do case "$a" in sft.mode=*) mode=${a#sft.mode=};; esac; done
for m in button evdev pvpanic pvpanic-mmio; do insmod /lib/$m.ko 2>/dev/null; done
stty -F /dev/ttyS1 raw -echo 2>/dev/null
stty -F /dev/ttyS0 -echo 2>/dev/null
echo "sft-guest: init, mode $mode" >/dev/ttyS0
# Each watcher opens its device before it says it is ready, and the first
# heartbeat waits for them: an event sent right after Online is not lost.
want=1
if [ "$mode" != noacpi ]; then
  for e in /sys/class/input/event*; do
    [ "$(cat $e/device/name 2>/dev/null)" = "Power Button" ] || continue
    want=$((want+1))
    ev=${e##*/}
    # devtmpfs makes the node a moment after the device appears.
    (while [ ! -e /dev/input/$ev ]; do nap 0.01; done
     exec 3</dev/input/$ev; : >/tmp/ready.$ev; dd bs=24 count=1 <&3 >/dev/null 2>&1; poweroff -f) &
  done
fi
(exec </dev/ttyS0; : >/tmp/ready.console; while read -r cmd; do case "$cmd" in
  panic) echo c >/proc/sysrq-trigger;;
  report-panic) echo "panic: reported by the guest" >/dev/ttyS1;;
  hang) : >/tmp/hang;;
  esac; done) &
ready() { n=0; for f in /tmp/ready.*; do [ -e "$f" ] && n=$((n+1)); done; }
i=0
ready
while [ $n -lt $want ] && [ $i -lt 500 ]; do nap 0.01; i=$((i+1)); ready; done
echo "sft-guest: $n of $want watchers ready, heartbeats start" >/dev/ttyS0
exec 8>/dev/ttyS1
n=0
while :; do
  [ "$mode" = hang ] || [ -e /tmp/hang ] || echo "sft-heartbeat $n" >&8
  n=$((n+1))
  nap 0.1
done
`
