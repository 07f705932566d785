package testenv

import (
	"os"
	"testing"
)

func TestRequireRoot(t *testing.T) {
	// As root RequireRoot must return and let the test go on; as another
	// user it must skip (or fail with the variable set), so reaching the
	// end of this test as non-root is a bug.
	RequireRoot(t)
	if os.Geteuid() != 0 {
		t.Fatal("RequireRoot returned for a non-root user")
	}
}
