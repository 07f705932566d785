package systemdsandbox

// MaskedUnits are masked (linked to /dev/null in /run/systemd/system.control,
// the highest-priority unit directory) before systemd boots in the sandbox.
// They are the early-boot units that touch state shared with the host (files
// in /tmp, sysctls, the clock, the console, kernel modules, devices) plus
// timers and daemons a test never needs. The sandbox also boots only
// [TargetUnit], so most of them would not start anyway: the masks are the
// second line of defence.
var MaskedUnits = []string{
	// tmpfiles: wiped the machine's /tmp when systemd was booted loosely.
	"systemd-tmpfiles-setup.service",
	"systemd-tmpfiles-setup-dev.service",
	"systemd-tmpfiles-setup-dev-early.service",
	"systemd-tmpfiles-clean.service",
	"systemd-tmpfiles-clean.timer",
	// global kernel state
	"systemd-sysctl.service",
	"systemd-binfmt.service",
	"systemd-modules-load.service",
	"kmod-static-nodes.service",
	"proc-sys-fs-binfmt_misc.automount",
	"proc-sys-fs-binfmt_misc.mount",
	"sys-kernel-debug.mount",
	"sys-kernel-tracing.mount",
	"sys-kernel-config.mount",
	"sys-fs-fuse-connections.mount",
	"dev-hugepages.mount",
	"dev-mqueue.mount",
	"systemd-pstore.service",
	"systemd-random-seed.service",
	"systemd-timesyncd.service",
	"systemd-time-wait-sync.service",
	// file systems, users, first boot
	"systemd-remount-fs.service",
	"systemd-fsck-root.service",
	"systemd-sysusers.service",
	"systemd-firstboot.service",
	"systemd-machine-id-commit.service",
	"systemd-hwdb-update.service",
	"systemd-journal-catalog-update.service",
	"systemd-update-done.service",
	"systemd-update-utmp.service",
	"systemd-update-utmp-runlevel.service",
	"systemd-journal-flush.service",
	"systemd-boot-system-token.service",
	"systemd-repart.service",
	"ldconfig.service",
	"e2scrub_all.timer",
	"e2scrub_all.service",
	"e2scrub_reap.service",
	"fstrim.timer",
	"fstrim.service",
	// devices
	"systemd-udevd.service",
	"systemd-udevd-control.socket",
	"systemd-udevd-kernel.socket",
	"systemd-udev-trigger.service",
	"systemd-udev-settle.service",
	// consoles and logins
	"getty.target",
	"getty@.service",
	"serial-getty@.service",
	"console-getty.service",
	"container-getty@.service",
	"systemd-vconsole-setup.service",
	"keyboard-setup.service",
	"console-setup.service",
	"systemd-logind.service",
	// timers and daemons
	"apt-daily.timer",
	"apt-daily.service",
	"apt-daily-upgrade.timer",
	"apt-daily-upgrade.service",
	"man-db.timer",
	"dpkg-db-backup.timer",
	"logrotate.timer",
	"networking.service",
	"ifup@.service",
	"systemd-networkd.service",
	"systemd-resolved.service",
	"cron.service",
	"ssh.service",
	"rsyslog.service",
	"postgresql.service",
}

// TargetUnit is the unit the sandbox's systemd boots instead of
// default.target. It pulls in nothing: tests start their own units.
const TargetUnit = "sft-sandbox.target"

const targetUnitText = `[Unit]
Description=sft systemd sandbox
DefaultDependencies=no
AllowIsolate=no
`
