package main_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sftkit/sft/examples/qemuvm/testguest"
)

// build builds a package of this module into dir/name.
func build(t *testing.T, pkg, out string) {
	t.Helper()
	cmd := exec.Command("go", "build", "-o", out, pkg)
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, "go build %s: %s", pkg, b)
}

// node is one stock example host process.
type node struct {
	name, cfg, bin string
	cmd            *exec.Cmd
	log            *bytes.Buffer
	done           chan error
}

func (n *node) cli(args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	a := append([]string{args[0], "-config", n.cfg}, args[1:]...)
	return exec.CommandContext(ctx, n.bin, a...).CombinedOutput()
}

type status struct {
	Groups []struct {
		Name      string `json:"name"`
		State     string `json:"state"`
		Resources []struct {
			State       string `json:"state"`
			Restarts    int    `json:"restarts"`
			LastFailure string `json:"last_failure"`
		} `json:"resources"`
	} `json:"groups"`
}

func (n *node) status(t *testing.T) (state string, restarts int, lastFailure string) {
	t.Helper()
	out, err := n.cli("status", "-json")
	if err != nil {
		return "", 0, ""
	}
	var s status
	require.NoError(t, json.Unmarshal(out, &s), "%s", out)
	require.Len(t, s.Groups, 1)
	g := s.Groups[0]
	return g.State, g.Resources[0].Restarts, g.Resources[0].LastFailure
}

// waitFor polls cond every 100 ms for up to 3 minutes (a guard, not a
// speed requirement: TCG boots take seconds on a loaded machine).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

var (
	qemuPIDs = testguest.QEMUPids
	descends = testguest.Descends
)

// TestVMGroupInStockHost: the stock example host loads this plugin from
// its config (plugins.external, pinned by SHA-256) and runs a VM group;
// the guest panics and the group is restarted; then the group moves by
// hand to a second host process (offline here, online there), and while
// the first runs it the second is refused by the VM lock.
func TestVMGroupInStockHost(t *testing.T) {
	g := testguest.Require(t)
	dir, err := os.MkdirTemp("", "qvmhost")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	plugdir := filepath.Join(dir, "plugins")
	require.NoError(t, os.Mkdir(plugdir, 0o755))
	plugin := filepath.Join(plugdir, "sft-qemuvm")
	build(t, ".", plugin)
	host := filepath.Join(dir, "host")
	build(t, "github.com/sftkit/sft/examples/host", host)
	bin, err := os.ReadFile(plugin)
	require.NoError(t, err)
	sum := sha256.Sum256(bin)

	mark := testguest.Marker()
	console := filepath.Join(dir, "console.sock")
	consoleLog := filepath.Join(dir, "console.log") // both nodes append to it
	testguest.KeepConsole(t, consoleLog)
	lockDir := filepath.Join(dir, "locks") // shared by both nodes, as a cluster filesystem would be
	config := func(name string, autostart bool) string {
		return fmt.Sprintf(`node:
  name: %[1]s
api:
  socket: %[2]s/%[1]s.sock
plugins:
  external:
    - path: %[3]s
      sha256: %[4]s
groups:
  - name: vm
    autostart: %[5]v
    resources:
      - name: guest
        type: qemuvm
        properties:
          kernel: %[6]s
          initrd: %[7]s
          append: %[8]q
          memory: 128
          vm_name: demo-vm
          lock_dir: %[9]s
          console: socket:%[10]s
          console_log: %[11]s
          shutdown_grace: 10s
        restart:
          delay: 100ms
`, name, dir, plugin, hex.EncodeToString(sum[:]), autostart, g.Kernel, g.Initrd, testguest.Append("", mark), lockDir, console, consoleLog)
	}
	start := func(name string, autostart bool) *node {
		n := &node{name: name, cfg: filepath.Join(dir, name+".yaml"), bin: host, log: &bytes.Buffer{}, done: make(chan error, 1)}
		require.NoError(t, os.WriteFile(n.cfg, []byte(config(name, autostart)), 0o644))
		out, err := n.cli("validate")
		require.NoError(t, err, "host validate: %s", out)
		n.cmd = exec.Command(host, "run", "-config", n.cfg)
		n.cmd.Stdout, n.cmd.Stderr = n.log, n.log
		n.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		require.NoError(t, n.cmd.Start())
		go func() { n.done <- n.cmd.Wait() }()
		t.Cleanup(func() {
			_ = n.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-n.done:
			case <-time.After(time.Minute):
				_ = n.cmd.Process.Kill()
				<-n.done
			}
			if t.Failed() {
				t.Logf("%s log:\n%s", name, n.log.String())
			}
		})
		return n
	}

	// The README's config example validates, given real files.
	readme, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	_, example, ok := strings.Cut(string(readme), "```yaml\n")
	require.True(t, ok, "README.md has no yaml block")
	example, _, _ = strings.Cut(example, "```")
	example = strings.NewReplacer(
		"/opt/sft-plugins/sft-qemuvm", plugin,
		strings.Repeat("0", 64), hex.EncodeToString(sum[:]),
		"/var/lib/vms/demo/vmlinuz", g.Kernel,
		"/var/lib/vms/demo/initrd.gz", g.Initrd,
		"/run/sft/node1.sock", filepath.Join(dir, "readme.sock"),
	).Replace(example)
	readmeCfg := filepath.Join(dir, "readme.yaml")
	require.NoError(t, os.WriteFile(readmeCfg, []byte(example), 0o644))
	out, err := exec.Command(host, "validate", readmeCfg).CombinedOutput()
	require.NoError(t, err, "host validate of README.md's example: %s", out)

	n1 := start("node1", true)
	t0 := time.Now()
	waitFor(t, "node1: group vm online", func() bool { s, _, _ := n1.status(t); return strings.EqualFold(s, "online") })
	t.Logf("host start to VM group online: %v", time.Since(t0).Round(time.Millisecond))
	pids := qemuPIDs(mark)
	require.Len(t, pids, 1)
	require.True(t, descends(pids[0], n1.cmd.Process.Pid), "QEMU is not node1's")

	// The guest panics: the failure is pushed and the monitor restarts it.
	c, err := net.Dial("unix", console)
	require.NoError(t, err)
	_, err = c.Write([]byte("panic\n"))
	require.NoError(t, err)
	t0 = time.Now()
	var last string
	waitFor(t, "node1: the VM restarted after the guest panic", func() bool {
		s, restarts, lf := n1.status(t)
		last = lf
		p := qemuPIDs(mark)
		return strings.EqualFold(s, "online") && restarts >= 1 && len(p) == 1 && p[0] != pids[0]
	})
	c.Close()
	t.Logf("guest panic to group online again: %v (last failure: %s)", time.Since(t0).Round(time.Millisecond), last)
	require.Contains(t, last, "GUEST_PANICKED")

	// A second node cannot start the same VM while node1 runs it.
	n2 := start("node2", false)
	waitFor(t, "node2 answers", func() bool { s, _, _ := n2.status(t); return s != "" })
	out, err = n2.cli("online", "vm")
	require.Error(t, err, "node2 started the VM node1 runs: %s", out)
	_, _, lf := n2.status(t)
	require.Contains(t, lf, "in use by another QEMU")
	require.Len(t, qemuPIDs(mark), 1)

	// Move by hand: offline on node1, online on node2.
	t0 = time.Now()
	out, err = n1.cli("offline", "vm")
	require.NoError(t, err, "%s", out)
	t.Logf("node1 offline (ACPI power-down): %v", time.Since(t0).Round(time.Millisecond))
	require.Empty(t, qemuPIDs(mark))
	t0 = time.Now()
	out, err = n2.cli("online", "vm")
	require.NoError(t, err, "%s", out)
	t.Logf("node2 online: %v", time.Since(t0).Round(time.Millisecond))
	pids = qemuPIDs(mark)
	require.Len(t, pids, 1)
	require.True(t, descends(pids[0], n2.cmd.Process.Pid), "QEMU is not node2's")

	// Stopping node2 takes the VM down with it.
	require.NoError(t, n2.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-n2.done:
		n2.done <- err
		require.NoError(t, err)
	case <-time.After(time.Minute):
		t.Fatal("node2 did not stop")
	}
	require.Empty(t, qemuPIDs(mark))
}
