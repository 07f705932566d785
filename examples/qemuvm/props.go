package qemuvm

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/sftkit/sft/resource"
)

// Accelerators.
const (
	AccelAuto = "auto" // KVM when /dev/kvm is usable, else TCG
	AccelKVM  = "kvm"
	AccelTCG  = "tcg"
)

// Network modes.
const (
	NetNone   = "none"
	NetUser   = "user"
	NetTap    = "tap"
	NetBridge = "bridge"
)

// Defaults of the properties.
const (
	DefaultMemoryMiB        = 256
	DefaultCPUs             = 1
	DefaultHeartbeatTimeout = 10 * time.Second
	DefaultBootTimeout      = 5 * time.Minute
	DefaultShutdownGrace    = 30 * time.Second
	DefaultQEMU             = "qemu-system-x86_64"
	DefaultLockDir          = "/run/sft-qemuvm"
)

// config is the decoded, validated properties. See the package doc.
type config struct {
	Kernel   string   `json:"kernel"`
	Initrd   string   `json:"initrd"`
	Append   string   `json:"append"`
	Disk     string   `json:"disk"`
	Format   string   `json:"disk_format"`
	Memory   float64  `json:"memory"`
	CPUs     float64  `json:"cpus"`
	Accel    string   `json:"accel"`
	Network  string   `json:"network"`
	NetDev   string   `json:"network_device"`
	Forwards []string `json:"port_forwards"`
	Console  string   `json:"console"`
	ConsLog  string   `json:"console_log"`
	QMP      string   `json:"qmp_socket"`
	HBSocket string   `json:"heartbeat_socket"`
	VMName   string   `json:"vm_name"`
	LockDir  string   `json:"lock_dir"`
	QEMU     string   `json:"qemu"`
	PVPanic  *bool    `json:"pvpanic"`

	HeartbeatTimeout resource.Duration `json:"heartbeat_timeout"`
	BootTimeout      resource.Duration `json:"boot_timeout"`
	ShutdownGrace    resource.Duration `json:"shutdown_grace"`

	// Migration is reserved for live migration (see the package doc):
	// refused for now, so that a config written for a later version does
	// not silently run without it.
	Migration any `json:"migration"`
}

// hostMemTotal reads MemTotal from /proc/meminfo, in MiB.
var hostMemTotal = func() (int64, error) {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[0] == "MemTotal:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("/proc/meminfo: %q: %w", sc.Text(), err)
			}
			return kb / 1024, nil
		}
	}
	return 0, fmt.Errorf("/proc/meminfo: no MemTotal line")
}

var (
	forwardRE = regexp.MustCompile(`^(tcp|udp):([0-9.]*):([0-9]{1,5})-([0-9.]*):([0-9]{1,5})$`)
	vmNameRE  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._/-]{0,200}$`)
	ifnameRE  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,14}$`)
)

// decode decodes and validates props. instance is the instance name, the
// default of vm_name ("" in Validate: then vm_name is not defaulted).
func decode(p resource.Properties, instance string) (config, error) {
	c := config{
		Memory:           DefaultMemoryMiB,
		CPUs:             DefaultCPUs,
		Accel:            AccelAuto,
		Network:          NetNone,
		Format:           "raw",
		QEMU:             DefaultQEMU,
		LockDir:          DefaultLockDir,
		HeartbeatTimeout: resource.Duration(DefaultHeartbeatTimeout),
		BootTimeout:      resource.Duration(DefaultBootTimeout),
		ShutdownGrace:    resource.Duration(DefaultShutdownGrace),
	}
	if err := p.Decode(&c); err != nil {
		return c, err
	}
	if c.Migration != nil {
		return c, resource.ConfigError("migration", c.Migration, "live migration is not implemented yet (see the package doc)")
	}
	absFile := func(field, path string, required bool) error {
		if path == "" {
			if required {
				return resource.ConfigError(field, nil, "required")
			}
			return nil
		}
		if !filepath.IsAbs(path) {
			return resource.ConfigError(field, path, "want an absolute path")
		}
		st, err := os.Stat(path)
		if err != nil {
			return resource.ConfigError(field, path, "%v", err)
		}
		if !st.Mode().IsRegular() && st.Mode()&os.ModeDevice == 0 {
			return resource.ConfigError(field, path, "not a regular file or block device")
		}
		return nil
	}
	if c.Kernel == "" && c.Disk == "" {
		return c, resource.ConfigError("kernel", nil, "required: give kernel (and initrd), or a bootable disk")
	}
	if err := absFile("kernel", c.Kernel, false); err != nil {
		return c, err
	}
	if err := absFile("initrd", c.Initrd, false); err != nil {
		return c, err
	}
	if err := absFile("disk", c.Disk, false); err != nil {
		return c, err
	}
	if c.Kernel == "" && c.Initrd != "" {
		return c, resource.ConfigError("initrd", c.Initrd, "needs kernel")
	}
	if c.Kernel == "" && c.Append != "" {
		return c, resource.ConfigError("append", c.Append, "needs kernel")
	}
	if c.Format != "raw" && c.Format != "qcow2" {
		return c, resource.ConfigError("disk_format", c.Format, "want raw or qcow2")
	}
	if c.Memory < 16 || c.Memory != float64(int64(c.Memory)) {
		return c, resource.ConfigError("memory", c.Memory, "want a whole number of MiB, at least 16")
	}
	total, err := hostMemTotal()
	if err != nil {
		return c, resource.NodeLocal(fmt.Errorf("memory: cannot read the host's memory: %w", err))
	}
	if int64(c.Memory) > total {
		return c, resource.ConfigError("memory", c.Memory, "above this host's MemTotal (%d MiB)", total)
	}
	if c.CPUs < 1 || c.CPUs > 255 || c.CPUs != float64(int(c.CPUs)) {
		return c, resource.ConfigError("cpus", c.CPUs, "want a whole number from 1 to 255")
	}
	switch c.Accel {
	case AccelAuto, AccelKVM, AccelTCG:
	default:
		return c, resource.ConfigError("accel", c.Accel, "want auto, kvm or tcg")
	}
	switch c.Network {
	case NetNone, NetUser:
		if c.NetDev != "" {
			return c, resource.ConfigError("network_device", c.NetDev, "only with network tap or bridge")
		}
	case NetTap, NetBridge:
		if !ifnameRE.MatchString(c.NetDev) {
			return c, resource.ConfigError("network_device", c.NetDev, "want an interface name (network %s)", c.Network)
		}
	default:
		return c, resource.ConfigError("network", c.Network, "want none, user, tap or bridge")
	}
	for i, f := range c.Forwards {
		field := fmt.Sprintf("port_forwards[%d]", i)
		if c.Network != NetUser {
			return c, resource.ConfigError(field, f, "port forwards need network user")
		}
		m := forwardRE.FindStringSubmatch(f)
		if m == nil {
			return c, resource.ConfigError(field, f, "want proto:[hostaddr]:hostport-[guestaddr]:guestport, e.g. tcp:127.0.0.1:2222-:22")
		}
		for _, port := range []string{m[3], m[5]} {
			if n, _ := strconv.Atoi(port); n < 1 || n > 65535 {
				return c, resource.ConfigError(field, f, "port %s out of range", port)
			}
		}
	}
	if c.Console != "" {
		kind, path, ok := strings.Cut(c.Console, ":")
		if !ok || (kind != "log" && kind != "socket") || !filepath.IsAbs(path) {
			return c, resource.ConfigError("console", c.Console, "want log:/abs/path or socket:/abs/path")
		}
	}
	if c.ConsLog != "" && strings.HasPrefix(c.Console, "log:") {
		return c, resource.ConfigError("console_log", c.ConsLog, "console %q already writes the console to a file", c.Console)
	}
	for _, s := range []struct{ field, path string }{{"qmp_socket", c.QMP}, {"heartbeat_socket", c.HBSocket}, {"lock_dir", c.LockDir}, {"console_log", c.ConsLog}} {
		if s.path != "" && !filepath.IsAbs(s.path) {
			return c, resource.ConfigError(s.field, s.path, "want an absolute path")
		}
	}
	if c.QMP != "" && c.QMP == c.HBSocket {
		return c, resource.ConfigError("heartbeat_socket", c.HBSocket, "same path as qmp_socket")
	}
	if c.LockDir == "" {
		return c, resource.ConfigError("lock_dir", c.LockDir, "want an absolute path")
	}
	if c.VMName == "" {
		c.VMName = instance
	}
	if c.VMName != "" && !vmNameRE.MatchString(c.VMName) {
		return c, resource.ConfigError("vm_name", c.VMName, "want letters, digits and ._/- (at most 201)")
	}
	if c.QEMU == "" || strings.ContainsAny(c.QEMU, " \t\n") {
		return c, resource.ConfigError("qemu", c.QEMU, "want a program name or path")
	}
	for _, d := range []struct {
		field string
		d     resource.Duration
		min   time.Duration
	}{{"heartbeat_timeout", c.HeartbeatTimeout, 100 * time.Millisecond}, {"boot_timeout", c.BootTimeout, time.Second}, {"shutdown_grace", c.ShutdownGrace, 0}} {
		if d.d.D() < d.min {
			return c, resource.ConfigError(d.field, d.d.D().String(), "want at least %v", d.min)
		}
	}
	return c, nil
}

// consoleFile is the file the guest's console is written to, or "".
func (c config) consoleFile() string {
	if path, ok := strings.CutPrefix(c.Console, "log:"); ok {
		return path
	}
	return c.ConsLog
}

// pvpanic reports whether to add the pvpanic device (default true).
func (c config) pvpanic() bool { return c.PVPanic == nil || *c.PVPanic }
