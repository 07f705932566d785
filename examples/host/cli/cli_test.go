package cli

import (
	"bytes"
	"flag"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sftkit/sft/examples/host/api"
	"github.com/sftkit/sft/monitor"
	"github.com/sftkit/sft/resource"
)

func TestPrintStatus(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.Local)
	res := func(r monitor.ResourceStatus, inPeriod, total int) api.ResourceStatus {
		return api.ResourceStatus{ResourceStatus: r, RestartsInPeriod: inPeriod, RestartPeriod: "15m0s", RestartsTotal: total}
	}
	st := api.Status{Node: "n1", Groups: []api.GroupStatus{
		{Owner: "n1", Autostart: true, GroupStatus: monitor.GroupStatus{
			Name: "web", State: resource.StateOnline, Target: resource.StateOnline},
			Resources: []api.ResourceStatus{
				res(monitor.ResourceStatus{Name: "vip", Type: "ipaddress", State: resource.StateOnline}, 0, 0),
				res(monitor.ResourceStatus{Name: "app", Type: "genericapp", State: resource.StateOnline, Restarts: 2, LastFailure: "process 1 exited\nwith code 1", LastFailureTime: at}, 2, 7),
			}},
		{Owner: "n1", GroupStatus: monitor.GroupStatus{
			Name: "db", State: resource.StateFailed, Target: resource.StateOffline, Failed: true, Reason: "resource x: restart threshold reached"},
			Resources: []api.ResourceStatus{res(monitor.ResourceStatus{Name: "x", Type: "genericservice", State: resource.StateFailed, RestartPending: true}, 0, 0)}},
		{Owner: "n1", GroupStatus: monitor.GroupStatus{Name: "idle", State: resource.StateOffline, Target: resource.StateOffline},
			Resources: []api.ResourceStatus{res(monitor.ResourceStatus{Name: "r", Type: "genericapp", State: resource.StateOffline}, 0, 0)}},
	}}
	var b bytes.Buffer
	PrintStatus(&b, st)
	want := `GROUP  OWNER  STATE             RESOURCE  TYPE            RESOURCE STATE            RESTARTS IN PERIOD  TOTAL RESTARTS  LAST FAILURE
web    n1     Online            vip       ipaddress       Online                    0 in 15m            0               -
                                app       genericapp      Online                    2 in 15m            7               03:04:05 process 1 exited with code 1
db     n1     Failed            x         genericservice  Failed (restart pending)  0 in 15m            0               -
idle   n1     Offline (manual)  r         genericapp      Offline                   0 in 15m            0               -
group db failed: resource x: restart threshold reached
`
	require.Equal(t, want, b.String())
}

func TestParseInterleaved(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	sock := fs.String("socket", "", "")
	j := fs.Bool("json", false, "")
	pos, err := parse(fs, []string{"g1", "-socket", "/s", "n2", "-json"})
	require.NoError(t, err)
	require.Equal(t, []string{"g1", "n2"}, pos)
	require.Equal(t, "/s", *sock)
	require.True(t, *j)
}

func TestDemoHTTPLoopbackOnly(t *testing.T) {
	var errb bytes.Buffer
	code := demoHTTP([]string{"--listen", "0.0.0.0:8080"}, io.Discard, &errb)
	require.Equal(t, 2, code)
	require.Equal(t, "demo-http: --listen \"0.0.0.0:8080\": want a loopback address like 127.0.0.1:8380\n", errb.String())
}

func TestSimulateNeedsAConfig(t *testing.T) {
	var out, errb bytes.Buffer
	code := Main([]string{"simulate"}, Env{Stdout: &out, Stderr: &errb})
	require.Equal(t, 2, code)
	require.True(t, strings.HasPrefix(errb.String(), "simulate: want -config FILE"))
}

// simConfig writes a three-node cluster config with a key file.
func simConfig(t *testing.T, placement string) string {
	dir := t.TempDir()
	key := filepath.Join(dir, "key")
	require.NoError(t, os.WriteFile(key, []byte("0123456789abcdef0123\n"), 0o600))
	cfg := filepath.Join(dir, "c.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(`cluster:
  key_file: `+key+`
  nodes:
    - {name: a, raft: "10.0.0.1:7400", interconnect: ["10.0.0.1:7401"]}
    - {name: b, raft: "10.0.0.2:7400", interconnect: ["10.0.0.2:7401"]}
    - {name: c, raft: "10.0.0.3:7400", interconnect: ["10.0.0.3:7401"]}
groups:
  - name: web
    failover: {threshold: 1, period: 1h}
    placement: {`+placement+`}
    resources:
      - {name: app, type: genericapp, properties: {argv: [/bin/sleep, "1000"]}}
`), 0o600))
	return cfg
}

func TestSimulate(t *testing.T) {
	cfg := simConfig(t, "preferred: [a, b, c]")
	var out, errb bytes.Buffer
	code := Main([]string{"simulate", "-config", cfg}, Env{Stdout: &out, Stderr: &errb,
		Stdin: strings.NewReader("# the owner dies\ndown a\nfail web\n")})
	require.Equal(t, 0, code, errb.String())
	o := out.String()
	require.Contains(t, o, "web: move to a: not placed yet")
	require.Contains(t, o, "down a\n  web: failover to b: owner a is down")
	// The second failover passes the threshold (1 within 1h).
	require.Contains(t, o, "failover threshold reached")
	require.Contains(t, o, "final:\n  web: offline (")
	require.Contains(t, o, "nodes: a down, b up, c up")

	// A script file; a bad step names its line.
	script := filepath.Join(t.TempDir(), "s.txt")
	require.NoError(t, os.WriteFile(script, []byte("down a\nexplode b\n"), 0o600))
	out.Reset()
	errb.Reset()
	require.Equal(t, 1, Main([]string{"simulate", "-config", cfg, script}, Env{Stdout: &out, Stderr: &errb}))
	require.Contains(t, errb.String(), "line 2:")
	require.Contains(t, errb.String(), "unknown step")

	// An unknown node fails at its step, after the steps before it.
	out.Reset()
	errb.Reset()
	require.Equal(t, 1, Main([]string{"simulate", "-config", cfg, "-"}, Env{Stdout: &out, Stderr: &errb, Stdin: strings.NewReader("down b\nmove web zz\n")}))
	require.Contains(t, out.String(), "down b")
	require.Contains(t, errb.String(), "step 2 (move web zz)")
}

func TestSimulateWithoutCluster(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "c.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte("groups:\n  - name: web\n    resources:\n      - {name: app, type: genericapp, properties: {argv: [/bin/true]}}\n"), 0o600))
	var out, errb bytes.Buffer
	require.Equal(t, 1, Main([]string{"simulate", "-config", cfg}, Env{Stdout: &out, Stderr: &errb, Stdin: strings.NewReader("")}))
	require.Contains(t, errb.String(), "has no cluster section")
}

func TestUsage(t *testing.T) {
	var out, errb bytes.Buffer
	require.Equal(t, 0, Main([]string{"help"}, Env{Stdout: &out, Stderr: &errb}))
	require.Contains(t, out.String(), "sftd move GROUP NODE")
	require.Contains(t, out.String(), "sftd validate [FILE]")
	require.Equal(t, 2, Main([]string{"move", "g"}, Env{Stdout: &out, Stderr: &errb}))
	require.Contains(t, errb.String(), "move: want GROUP NODE")
}

// TestCommandHelp: every command's -h (and `help CMD`) prints its
// arguments, a sentence and an example to standard output and exits 0; a
// bad flag exits 2 with the short usage on standard error.
func TestCommandHelp(t *testing.T) {
	for _, c := range commands {
		for _, args := range [][]string{{c.name, "-h"}, {c.name, "--help"}, {"help", c.name}} {
			var out, errb bytes.Buffer
			require.Equal(t, 0, Main(args, Env{Stdout: &out, Stderr: &errb}), "%v", args)
			require.Empty(t, errb.String(), "%v", args)
			h := out.String()
			require.True(t, strings.HasPrefix(h, "Usage: sftd "+c.name+" "+c.args+"\n\n"+c.summary), "%v: %q", args, h)
			require.Contains(t, h, "\nExample:\n  sftd "+c.example+"\n", "%v", args)
		}
		if c.name == "help" {
			continue
		}
		var out, errb bytes.Buffer
		require.Equal(t, 2, Main([]string{c.name, "-no-such-flag"}, Env{Stdout: &out, Stderr: &errb}), c.name)
		require.Contains(t, errb.String(), "flag provided but not defined: -no-such-flag\nUsage: sftd "+c.name)
	}
	var out, errb bytes.Buffer
	require.Equal(t, 0, Main([]string{"help", "run"}, Env{Stdout: &out, Stderr: &errb}))
	require.Contains(t, out.String(), "-allow-empty")
	require.Equal(t, 2, Main([]string{"help", "nosuch"}, Env{Stdout: &out, Stderr: &errb}))
	require.Contains(t, errb.String(), `help: unknown command "nosuch"`)
}

func TestVersion(t *testing.T) {
	var out, errb bytes.Buffer
	require.Equal(t, 0, Main([]string{"version"}, Env{Stdout: &out, Stderr: &errb}))
	require.Regexp(t, `^sftd \S+ \S+ \((commit [0-9a-f]+|commit unknown).*\) go1\.\d+`, out.String())
	require.Contains(t, out.String(), runtime.Version())
}

// TestValidateCountsAndWarnings: plurals are right, and a config with
// nothing to run validates with a warning while run refuses it.
func TestValidateCountsAndWarnings(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(text), 0o600))
		return p
	}
	two := write("two.yaml", "groups:\n  - {name: a, resources: [{name: r, type: genericapp, properties: {argv: [/bin/sleep, '1000']}}, {name: s, type: genericapp, properties: {argv: [/bin/sleep, '1000']}}]}\n  - {name: b, resources: [{name: r, type: genericapp, properties: {argv: [/bin/sleep, '1000']}}]}\n")
	var out, errb bytes.Buffer
	require.Equal(t, 0, Main([]string{"validate", two}, Env{Stdout: &out, Stderr: &errb}))
	require.Equal(t, two+": ok (2 groups, 3 resources)\n", out.String())
	out.Reset()
	require.Equal(t, 0, Main([]string{"validate"}, Env{Stdout: &out, Stderr: &errb}))
	require.Equal(t, "quickstart.yaml (built in): ok (1 group, 1 resource)\n", out.String())

	for _, text := range []string{"", "# nothing\n", "groups: []\n"} {
		empty := write("empty.yaml", text)
		out.Reset()
		errb.Reset()
		require.Equal(t, 0, Main([]string{"validate", empty}, Env{Stdout: &out, Stderr: &errb}))
		require.Equal(t, empty+": ok with 1 warning (0 groups, 0 resources)\n", out.String())
		require.Regexp(t, "^warning: "+regexp.QuoteMeta(empty)+":(1:1:)? groups: no resources: this node would run nothing", errb.String())
		errb.Reset()
		require.Equal(t, 1, Main([]string{"run", "-config", empty}, Env{Stdout: &out, Stderr: &errb}))
		require.Equal(t, "run: "+empty+" has no resources: this node would manage nothing (-allow-empty runs it anyway)\n", errb.String())
	}
}

// TestStatusWithoutNodeHints: with nothing listening, a client command
// says so and how to start a node.
func TestStatusWithoutNodeHints(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "none.sock")
	var out, errb bytes.Buffer
	require.Equal(t, 1, Main([]string{"status", "-socket", sock}, Env{Stdout: &out, Stderr: &errb}))
	require.Contains(t, errb.String(), "status: cannot reach the sft host at "+sock)
	require.Contains(t, errb.String(), "status: no node is running there: start one with `sftd run` (or `go run ./examples/host`)")
}
