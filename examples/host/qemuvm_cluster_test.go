package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sftkit/sft/examples/host/internal/clusterlab"
	"github.com/sftkit/sft/examples/qemuvm/testguest"
	"github.com/sftkit/sft/internal/testenv"
	"github.com/sftkit/sft/resource"
)

// TestQEMUVMGroupInCluster: a VM group (the external qemuvm plugin, loaded
// from the config with its pin) in a cluster of two nodes and a witness,
// each a real sftd in its own network namespace. The VM comes online on
// the preferred node, moves by hand (sftd move) to the other one, and when
// that owner is killed comes up on the first again. A sampler checks
// every 20 ms that no two QEMUs of the VM ever run at once (the VM lock in
// a lock_dir all nodes share, as a cluster filesystem would be, and QEMU's
// image lock on the shared disk enforce it; the sampler sees it). Three
// TCG boots.
func TestQEMUVMGroupInCluster(t *testing.T) {
	testenv.RequireRoot(t)
	g := testguest.Require(t)
	host := buildHost(t)
	plugin := filepath.Join(filepath.Dir(host), "sft-qemuvm")
	if out, err := exec.Command("go", "build", "-o", plugin, "github.com/sftkit/sft/examples/qemuvm/cmd/sft-qemuvm").CombinedOutput(); err != nil {
		t.Fatalf("go build sft-qemuvm: %v: %s", err, out)
	}
	bin, err := os.ReadFile(plugin)
	require.NoError(t, err)
	sum := sha256.Sum256(bin)

	lab, err := clusterlab.New(clusterlab.Options{Binary: host, Nodes: []string{"a", "b", "w"}, Witness: "w", Log: t.Logf})
	require.NoError(t, err)
	mark := testguest.Marker()
	consoleLog := filepath.Join(lab.Dir, "console.log")
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range lab.Nodes {
				b, _ := os.ReadFile(n.LogFile)
				t.Logf("---- log of %s:\n%s", n.Name, tail(string(b), 80))
			}
		}
		lab.Close()
		require.Empty(t, lab.Leftovers(), "namespaces left behind")
		require.Empty(t, testguest.QEMUPids(mark), "QEMU outlived its node")
	})
	testguest.KeepConsole(t, consoleLog) // runs before lab.Close removes the file

	// The lab's config with the VM group instead of its web group.
	data, err := os.ReadFile(lab.Config)
	require.NoError(t, err)
	clusterPart, _, ok := strings.Cut(string(data), "groups:")
	require.True(t, ok, "the lab's config has no groups: %s", data)
	disk := filepath.Join(lab.Dir, "disk.img")
	require.NoError(t, os.WriteFile(disk, make([]byte, 1<<20), 0o644))
	cfg := clusterPart + fmt.Sprintf(`plugins:
  external:
    - {path: %s, sha256: %s}
groups:
  - name: vm
    placement: {preferred: [a, b]}
    failover: {threshold: 100}
    resources:
      - name: guest
        type: qemuvm
        properties:
          kernel: %s
          initrd: %s
          append: %q
          disk: %s
          memory: 128
          vm_name: lab-vm
          lock_dir: %s
          console: socket:%s
          console_log: %s
          boot_timeout: 2m
        restart: {delay: 100ms}
`, plugin, hex.EncodeToString(sum[:]), g.Kernel, g.Initrd, testguest.Append("", mark), disk,
		filepath.Join(lab.Dir, "locks"), filepath.Join(lab.Dir, "console.sock"), consoleLog)
	require.NoError(t, os.WriteFile(lab.Config, []byte(cfg), 0o600))

	// The sampler: how many QEMUs of the VM run, and whose.
	var mu sync.Mutex
	most, samples := 0, 0
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			n := len(testguest.QEMUPids(mark))
			mu.Lock()
			most, samples = max(most, n), samples+1
			mu.Unlock()
		}
	}()
	defer func() { close(stop); <-sampled }()
	noOverlap := func(when string) {
		t.Helper()
		mu.Lock()
		defer mu.Unlock()
		require.LessOrEqual(t, most, 1, "two QEMUs of the VM ran at once (%s)", when)
		require.NotZero(t, samples)
	}

	// onlineOn waits until node reports the group online, owns it, and
	// the one QEMU of the VM is its own.
	onlineOn := func(node, what string) time.Duration {
		t.Helper()
		t0 := time.Now()
		waitFor(t, 3*time.Minute, what, func() bool {
			if lab.Owner(node, "vm") != node {
				return false
			}
			st, err := lab.Status(node)
			if err != nil || len(st.Groups) != 1 || st.Groups[0].State != resource.StateOnline {
				return false
			}
			pids := testguest.QEMUPids(mark)
			return len(pids) == 1 && testguest.Descends(pids[0], lab.Pid(node))
		})
		return time.Since(t0)
	}

	t0 := time.Now()
	for _, n := range lab.Nodes {
		require.NoError(t, lab.Start(n.Name))
	}
	onlineOn("a", "the VM group online on a, its preferred node")
	t.Logf("cluster start to VM group online on a: %v", time.Since(t0).Round(time.Millisecond))
	noOverlap("start")

	t0 = time.Now()
	require.NoError(t, lab.Move("a", "vm", "b"))
	onlineOn("b", "the VM group moved to b")
	t.Logf("move a -> b (ACPI power-down on a, boot on b): %v", time.Since(t0).Round(time.Millisecond))
	noOverlap("move")

	t0 = time.Now()
	lab.Kill("b")
	onlineOn("a", "the VM group back on a after b was killed")
	t.Logf("owner b killed to VM group online on a: %v", time.Since(t0).Round(time.Millisecond))
	noOverlap("failover")
}
