// Package qemuvm is the resource type "qemuvm": a QEMU virtual machine as a
// cluster resource (WSFC's "Virtual Machine" type, Pacemaker's
// VirtualDomain), for host clustering: the cluster watches the guest
// operating system and restarts or moves it; what runs inside the guest is
// the guest's own business unless it reports through the heartbeat.
//
// It is written as an outside author would write a plugin, with only the
// public SDK (resource, plugins.Serve, plugintest), and served by the
// plugin binary in cmd/sft-qemuvm, which the stock example host loads from
// its config (plugins.external). See README.md for the config and figures.
//
// # Properties
//
//	kernel            absolute path of the guest kernel (or give disk)
//	initrd            absolute path of its initramfs (needs kernel)
//	append            kernel command line (needs kernel)
//	disk              absolute path of a disk image (virtio); the boot disk
//	                  when there is no kernel
//	disk_format       raw (default) | qcow2
//	memory            MiB, whole, >= 16; refused above the host's MemTotal. Default 256
//	cpus              1..255. Default 1
//	accel             auto (default: KVM when /dev/kvm is usable, else TCG) | kvm | tcg
//	network           none (default) | user | tap | bridge
//	network_device    the tap device or bridge name (tap, bridge)
//	port_forwards     ["tcp:127.0.0.1:2222-:22", ...] (network user)
//	console           "" (discarded) | log:/abs/file | socket:/abs/sock (a
//	                  serial console anyone with access to the socket can use)
//	console_log       /abs/file: also append the console's output to this
//	                  file (with console "" or socket:...), for a record of
//	                  the boots and panics
//	qmp_socket        where QEMU connects for QMP. Default: a private
//	                  directory (os.MkdirTemp, 0700) made for each start,
//	                  named after the plugin's pid; a start removes those
//	                  of plugin processes that are gone (SIGKILLed)
//	heartbeat_socket  where QEMU connects the guest's second serial port
//	                  (ttyS1). Default: the private directory
//	heartbeat_timeout guest silence that counts as a hang. Default 10s (a TCG
//	                  guest on a loaded host can stall for seconds)
//	boot_timeout      start to first heartbeat. Default 5m
//	shutdown_grace    Offline: ACPI power-down to QMP quit. Default 30s
//	vm_name           the VM's identity for the lock. Default: the instance name
//	lock_dir          directory of the VM locks. Default /run/sft-qemuvm
//	qemu              QEMU binary. Default qemu-system-x86_64 (from PATH)
//	pvpanic           add -device pvpanic (GUEST_PANICKED). Default true
//	migration         reserved for live migration; refused for now
//
// Durations are Go duration strings ("500ms") or numbers of seconds.
//
// # The guest heartbeat
//
// The guest writes lines to its second serial port (ttyS1; the 8250 driver
// is built into common kernels, so no module is needed). A line starting
// with "panic" reports a guest panic; every other non-empty line is a
// heartbeat. Online returns at the first heartbeat; after it, silence
// longer than heartbeat_timeout is a failure. Package testguest builds a
// guest whose init does this with busybox.
//
// # Lifecycle
//
// Online takes the VM lock, starts QEMU paused (-S) in a process group of
// its own with Pdeathsig SIGKILL, from an OS thread locked for QEMU's
// lifetime (so QEMU never outlives the plugin), accepts QEMU's QMP
// connection, negotiates capabilities, lets the guest run ("cont") and
// waits for the first heartbeat, calling resource.ReportProgress every
// second (which extends the monitor's pending timeout) with the time spent
// and the accelerator. The accelerator and why it was chosen are logged
// ("qemu started", "guest up": accel=tcg accel_reason="TCG emulation, slow:
// /dev/kvm is not usable (...)") and returned by VM.Accelerator.
//
// Offline sends QMP system_powerdown (an ACPI power-button press), waits
// shutdown_grace for QEMU to exit, then sends quit, then kills the process
// group. Terminate sends quit and kills after 500 ms at most.
//
// LooksAlive answers from a view fed by QMP events and the process waiter,
// without any call (resource.InstantChecker). IsAlive also wants a
// heartbeat younger than heartbeat_timeout. These are pushed at once as
// failures (resource.FailureReporter): GUEST_PANICKED (pvpanic: a kernel
// panic), a "panic" line on the heartbeat port, STOP, SHUTDOWN (a guest
// that powered off or reset by itself; QEMU runs with -no-reboot), a silent
// heartbeat, the loss of the QMP connection and the exit of QEMU. A failure
// while Offline or Terminate runs is expected and not pushed.
//
// # Image locking
//
// A VM must run at most once. Two locks guard it:
//
//   - The VM lock: an flock(2) on lock_dir/<vm_name>.lock, taken before
//     QEMU starts and inherited by QEMU, so it lives exactly as long as the
//     QEMU process. A second Online of the same vm_name, by this or another
//     host process, is refused with a transient error naming the holder's
//     pid ("in use by another QEMU"). This covers kernel+initrd boots,
//     whose files are shared read-only between VMs.
//   - QEMU's own image locking (on by default) on a disk image: a second
//     QEMU opening the same image for writing exits at once, and Online
//     reports it as the same transient error.
//
// On shared storage both map onto the cluster filesystem's locks: put
// lock_dir and the disk images on a filesystem whose flock/OFD locks are
// cluster-wide (GFS2, OCFS2, NFSv4 with lockd), and a second node's Online
// is refused while the owner runs the VM. A node that dies releases its
// locks only when the filesystem's lock recovery (or fencing) says so,
// which is what a failover must wait for anyway. On a block device without
// a cluster filesystem (iSCSI, FC LUN), use a cluster-wide lock of your own
// (sanlock, a SCSI reservation) and fence the old owner first; this type
// does not do that.
//
// # Live migration (designed, not implemented)
//
// A planned move would migrate the running guest instead of stopping it
// (WSFC "live migration" vs "quick migration"). The design: a property
//
//	migration: {listen: "tcp:0.0.0.0:4444", tls_creds: "..."}
//
// and an optional interface the cluster layer calls on a planned move:
// the target node's instance starts QEMU with -incoming defer and the same
// devices, holds the VM lock only from the switch-over (the lock file then
// names both pids during the move), and reports its address; the source
// sends QMP migrate-set-capabilities and migrate {uri}, polls
// query-migrate (reporting progress), and on "completed" the target's
// Online returns at the first heartbeat after RESUME while the source's
// QEMU ends with its Offline. A failed migration leaves the source running.
// Until that exists the property is refused, and a move is a quick
// migration: Offline here, Online there. README.md sketches the property
// and the hook's interface (PrepareIncoming, MigrateTo, FinishIncoming).
package qemuvm
