package peer

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/sftkit/sft/internal/testenv"
)

// As root the raw ICMP socket opens (both families); as an unprivileged
// user (this test binary re-run as uid 65534) the error says what is
// missing.
func TestCheckICMP(t *testing.T) {
	if os.Getenv("SFT_PEER_CHECKICMP_CHILD") == "1" {
		if err := CheckICMP(false); err != nil {
			os.Stdout.WriteString(err.Error())
		}
		return
	}
	testenv.RequireRoot(t)
	if err := CheckICMP(true); err != nil {
		t.Fatalf("as root: %v", err)
	}
	// The go tool's build directory is private: run a copy from a
	// directory the other user may enter.
	dir, err := os.MkdirTemp("", "peer-checkicmp-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "peer.test")
	data, err := os.ReadFile(os.Args[0])
	if err == nil {
		err = os.WriteFile(bin, data, 0o755)
	}
	if err == nil {
		err = os.Chmod(dir, 0o755)
	}
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run=^TestCheckICMP$")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "SFT_PEER_CHECKICMP_CHILD=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v: %s", err, out)
	}
	if !strings.Contains(string(out), "run as root or with CAP_NET_RAW") {
		t.Fatalf("as uid 65534: %q, want the missing privilege named", out)
	}
}
