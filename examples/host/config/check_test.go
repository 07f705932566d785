package config_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sftkit/sft/examples/host/config"
	"github.com/sftkit/sft/policy"
)

// check runs Parse, then Check (warnings) and Validate (what run uses).
func check(t *testing.T, yaml string) (warnings config.Errors, checkErr, validateErr error) {
	t.Helper()
	cfg, pos, err := config.Parse("t.yaml", []byte(yaml))
	require.NoError(t, err)
	warnings, checkErr = cfg.Check(context.Background(), "t.yaml", pos, registry(t), "/bin/true")
	validateErr = cfg.Validate(context.Background(), "t.yaml", pos, registry(t), "/bin/true")
	return warnings, checkErr, validateErr
}

// TestNothingToRunWarns: an empty file, a comment-only file, `groups: []`
// and groups without resources validate with a warning (run refuses them
// unless told otherwise, see the cli).
func TestNothingToRunWarns(t *testing.T) {
	t.Parallel()
	for _, y := range []string{"", "# just a comment\n", "groups: []\n", "node: {name: n}\n"} {
		warns, cerr, verr := check(t, y)
		require.NoError(t, cerr, "%q", y)
		require.NoError(t, verr, "%q", y)
		require.Len(t, warns, 1, "%q", y)
		require.Contains(t, warns[0].Error(), "groups: no resources: this node would run nothing")
		cfg, _, err := config.Parse("t.yaml", []byte(y))
		require.NoError(t, err)
		require.True(t, cfg.Empty())
	}
	warns, _, _ := check(t, "groups: [{name: g, resources: [{name: r, type: fake}]}]\n")
	require.Empty(t, warns)
}

// TestMachineStateIsAWarningInCheck: a network namespace that does not
// exist yet is a warning for `validate` (Check) and an error for run
// (Validate); so is a token file readable by others. Both name the file,
// line, column, path and value.
func TestMachineStateIsAWarningInCheck(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "no-such-netns")
	y := "groups: [{name: g, resources: [{name: r, type: fake, properties: {netns: " + missing + "}}]}]\n"
	warns, cerr, verr := check(t, y)
	require.NoError(t, cerr)
	require.Len(t, warns, 1)
	require.Equal(t, `t.yaml:1:67: groups[0].resources[0].properties.netns "`+missing+`": cannot open network namespace: stat `+missing+`: no such file or directory (an error at run)`, warns[0].Error())
	require.EqualError(t, verr, `t.yaml:1:67: groups[0].resources[0].properties.netns "`+missing+`": cannot open network namespace: stat `+missing+`: no such file or directory`)

	sock := filepath.Join(t.TempDir(), "missing", "h.sock")
	warns, cerr, verr = check(t, "api: {socket: "+sock+"}\ngroups: [{name: g, resources: [{name: r, type: fake}]}]\n")
	require.NoError(t, cerr)
	require.Len(t, warns, 1)
	require.Contains(t, warns[0].Error(), `t.yaml:1:7: api.socket "`+sock+`": directory `+filepath.Dir(sock)+`: no such file or directory (an error at run)`)
	require.ErrorContains(t, verr, "directory "+filepath.Dir(sock)+": no such file or directory")

	dir := t.TempDir()
	tok := filepath.Join(dir, "token")
	require.NoError(t, os.WriteFile(tok, []byte("0123456789abcdef0123\n"), 0o644))
	y = "api: {tcp: 127.0.0.1:7070, token_file: " + tok + "}\ngroups: [{name: g, resources: [{name: r, type: fake}]}]\n"
	warns, cerr, verr = check(t, y)
	require.NoError(t, cerr)
	require.Len(t, warns, 1)
	require.Contains(t, warns[0].Error(), `t.yaml:1:28: api.token_file "`+tok+`": readable or writable by others (mode 0644): chmod 600 it (an error at run)`)
	require.ErrorContains(t, verr, "readable or writable by others (mode 0644)")

	require.NoError(t, os.Chmod(tok, 0o600))
	warns, cerr, verr = check(t, y)
	require.NoError(t, cerr)
	require.NoError(t, verr)
	require.Empty(t, warns)

	require.NoError(t, os.WriteFile(tok, []byte("short\n"), 0o600))
	_, _, verr = check(t, y)
	require.ErrorContains(t, verr, "token too short (5 characters, at least 16)")
	require.NoError(t, os.Remove(tok))
	_, _, verr = check(t, y)
	require.ErrorContains(t, verr, `api.token_file "`+tok+`": no such file or directory`)
}

// TestEveryPropertyErrorIsReported: a type that reports several bad
// properties at once (errors.Join) gets every one of them reported.
func TestEveryPropertyErrorIsReported(t *testing.T) {
	t.Parallel()
	_, cerr, _ := check(t, "groups: [{name: g, resources: [{name: r, type: fake, properties: {two: x}}]}]\n")
	require.Error(t, cerr)
	require.Equal(t, 2, strings.Count(cerr.Error(), "\n")+1, cerr.Error())
	require.Contains(t, cerr.Error(), "properties.two.a 1: bad a")
	require.Contains(t, cerr.Error(), "properties.two.b 2: bad b")
}

// TestRestartDelay: unset is the default (500ms), 0 restarts at once.
func TestRestartDelay(t *testing.T) {
	t.Parallel()
	delay := func(y string) time.Duration {
		c, err := load(t, "groups: [{name: g, resources: [{name: r, type: fake, restart: {"+y+"}}]}]\n")
		require.NoError(t, err)
		d := c.Groups[0].Resources[0].Restart.PolicyRestart().Decide(time.Now(), policy.History{}, errors.New("boom"))
		require.Equal(t, policy.ActionRestart, d.Action)
		return d.Delay
	}
	require.Equal(t, policy.DefaultRestartDelay, delay(""))
	require.Equal(t, policy.DefaultRestartDelay, delay("delay: null"))
	require.Equal(t, time.Duration(0), delay("delay: 0s"))
	require.Equal(t, 2*time.Second, delay("delay: 2s"))
}
