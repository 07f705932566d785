package cli

import (
	"bytes"
	"flag"
	"io"
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
	st := api.Status{Node: "n1", Groups: []api.GroupStatus{
		{Owner: "n1", Autostart: true, GroupStatus: monitor.GroupStatus{
			Name: "web", State: resource.StateOnline, Target: resource.StateOnline,
			Resources: []monitor.ResourceStatus{
				{Name: "vip", Type: "ipaddress", State: resource.StateOnline},
				{Name: "app", Type: "genericapp", State: resource.StateOnline, Restarts: 2, LastFailure: "process 1 exited\nwith code 1", LastFailureTime: at},
			}}},
		{Owner: "n1", GroupStatus: monitor.GroupStatus{
			Name: "db", State: resource.StateFailed, Target: resource.StateOffline, Failed: true, Reason: "resource x: restart threshold reached",
			Resources: []monitor.ResourceStatus{{Name: "x", Type: "genericservice", State: resource.StateFailed, RestartPending: true}}}},
		{Owner: "n1", GroupStatus: monitor.GroupStatus{Name: "idle", State: resource.StateOffline, Target: resource.StateOffline,
			Resources: []monitor.ResourceStatus{{Name: "r", Type: "genericapp", State: resource.StateOffline}}}},
	}}
	var b bytes.Buffer
	PrintStatus(&b, st)
	want := `GROUP  OWNER  STATE             RESOURCE  TYPE            RESOURCE STATE            RESTARTS  LAST FAILURE
web    n1     Online            vip       ipaddress       Online                    0         -
                                app       genericapp      Online                    2         03:04:05 process 1 exited with code 1
db     n1     Failed            x         genericservice  Failed (restart pending)  0         -
idle   n1     Offline (manual)  r         genericapp      Offline                   0         -
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

func TestSimulateNeedsTheClusterLayer(t *testing.T) {
	var out, errb bytes.Buffer
	code := Main([]string{"simulate"}, Env{Stdout: &out, Stderr: &errb})
	require.Equal(t, 1, code)
	require.True(t, strings.HasPrefix(errb.String(), "simulate: not available until the cluster layer lands"))
}

func TestUsage(t *testing.T) {
	var out, errb bytes.Buffer
	require.Equal(t, 0, Main([]string{"help"}, Env{Stdout: &out, Stderr: &errb}))
	require.Contains(t, out.String(), "host move GROUP NODE")
	require.Equal(t, 2, Main([]string{"move", "g"}, Env{Stdout: &out, Stderr: &errb}))
	require.Contains(t, errb.String(), "move: want GROUP NODE")
}
