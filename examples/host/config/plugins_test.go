package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sftkit/sft/examples/host/config"
)

// TestExternalPluginChecks: plugins.external entries are refused, each
// error naming the entry's field, when the binary could be replaced by
// someone other than its owner, is not an executable file, or the pin is
// not a SHA-256.
func TestExternalPluginChecks(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	mk := func(name string, dirMode, fileMode os.FileMode) string {
		d := filepath.Join(dir, name)
		require.NoError(t, os.Mkdir(d, 0o755))
		p := filepath.Join(d, "plugin")
		require.NoError(t, os.WriteFile(p, []byte("#!/bin/true\n"), 0o700))
		require.NoError(t, os.Chmod(p, fileMode))
		require.NoError(t, os.Chmod(d, dirMode))
		return p
	}
	good := mk("good", 0o755, 0o755)
	sum := strings.Repeat("ab", 32)
	for _, tc := range []struct {
		name, path, sha, field, msg string
	}{
		{"relative", "plugin", "", "plugins.external[0].path", "must be an absolute path"},
		{"missing", filepath.Join(dir, "nope"), "", "plugins.external[0].path", "no such file"},
		{"directory", dir, "", "plugins.external[0].path", "not a regular file"},
		{"not executable", mk("noexec", 0o755, 0o644), "", "plugins.external[0].path", "not executable"},
		{"file writable by others", mk("wfile", 0o755, 0o757), "", "plugins.external[0].path", "writable by group or others"},
		{"file writable by group", mk("gfile", 0o755, 0o775), "", "plugins.external[0].path", "writable by group or others"},
		{"directory writable by others", mk("wdir", 0o777, 0o755), "", "plugins.external[0].path", "its directory"},
		{"sticky world-writable directory", mk("tmpdir", 0o1777, 0o755), "", "plugins.external[0].path", "its directory"},
		{"short pin", good, "abc", "plugins.external[0].sha256", "64 hex digits"},
		{"pin not hex", good, strings.Repeat("zz", 32), "plugins.external[0].sha256", "64 hex digits"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := load(t, "plugins:\n  external:\n    - path: "+tc.path+"\n      sha256: \""+tc.sha+"\"\n")
			var es config.Errors
			require.ErrorAs(t, err, &es)
			require.Len(t, es, 1, "%v", err)
			require.Equal(t, tc.field, es[0].Path)
			require.Contains(t, es[0].Msg, tc.msg)
			require.NotZero(t, es[0].Pos.Line, "the error is placed in the file")
		})
	}
	t.Run("good", func(t *testing.T) {
		cfg, err := load(t, "plugins:\n  external:\n    - path: "+good+"\n      sha256: "+sum+"\n")
		require.NoError(t, err)
		require.Equal(t, []config.ExternalPlugin{{Path: good, SHA256: sum}}, cfg.Plugins.External)
	})
	t.Run("duplicate", func(t *testing.T) {
		_, err := load(t, "plugins:\n  external:\n    - path: "+good+"\n    - path: "+good+"\n")
		require.ErrorContains(t, err, "plugins.external[1].path")
		require.ErrorContains(t, err, "already listed as plugins.external[0]")
	})
}
