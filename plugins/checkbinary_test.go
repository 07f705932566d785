package plugins

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sftkit/sft/resource"
)

// An explicit plugin binary that others could replace is refused before it
// runs, naming Path; so is one in a directory others may write.
func TestLaunchRefusesWritableBinary(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bin := filepath.Join(dir, "plugin")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := CheckBinary(bin); err != nil {
		t.Fatalf("CheckBinary(%s) = %v, want nil", bin, err)
	}
	for _, tc := range []struct {
		name      string
		file, dir os.FileMode
		want      string
	}{
		{name: "group-writable file", file: 0o775, dir: 0o700, want: "writable by group or others"},
		{name: "world-writable directory", file: 0o755, dir: 0o777, want: "directory"},
		{name: "not executable", file: 0o644, dir: 0o700, want: "not executable"},
	} {
		if err := os.Chmod(bin, tc.file); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, tc.dir); err != nil {
			t.Fatal(err)
		}
		_, err := Launch(t.Context(), Config{Path: bin})
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "Path") {
			t.Errorf("%s: Launch = %v, want a Path error saying %q", tc.name, err, tc.want)
		}
		if resource.ClassOf(err) != resource.ClassConfiguration {
			t.Errorf("%s: class %v, want configuration", tc.name, resource.ClassOf(err))
		}
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := CheckBinary("relative/plugin"); err == nil {
		t.Errorf("CheckBinary(relative) = nil, want an error")
	}
}
