// Package testenv holds helpers that tests across sft share.
package testenv

import (
	"os"
	"testing"
)

// RequireRootEnv is the environment variable that turns RequireRoot's skip
// into a failure: with SFT_REQUIRE_ROOT_TESTS=1 a root-only test that cannot
// run fails instead of silently skipping (CI runs as root and sets it).
const RequireRootEnv = "SFT_REQUIRE_ROOT_TESTS"

// RequireRoot skips t unless the process runs as root (effective uid 0).
// When the environment variable SFT_REQUIRE_ROOT_TESTS is "1", it fails t
// instead of skipping it.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv(RequireRootEnv) == "1" {
		t.Fatalf("test needs root (euid %d) and %s=1 forbids skipping it", os.Geteuid(), RequireRootEnv)
	}
	t.Skipf("test needs root (euid %d); set %s=1 to make this a failure", os.Geteuid(), RequireRootEnv)
}
