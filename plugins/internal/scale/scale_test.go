package scale

import (
	"context"
	"fmt"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sftkit/sft/monitor"
	"github.com/sftkit/sft/plugins"
	"github.com/sftkit/sft/plugins/plugintest"
	"github.com/sftkit/sft/resource"
)

// noop is the cheapest honest resource: state in memory.
type noop struct{}

func (noop) Name() string                                        { return "noop" }
func (noop) Validate(context.Context, resource.Properties) error { return nil }
func (noop) Open(context.Context, resource.OpenRequest) (resource.Resource, error) {
	return &noopRes{}, nil
}

type noopRes struct{ up atomic.Bool }

func (r *noopRes) Online(context.Context) error  { r.up.Store(true); return nil }
func (r *noopRes) Offline(context.Context) error { r.up.Store(false); return nil }
func (r *noopRes) Terminate(context.Context) error {
	r.up.Store(false)
	return nil
}
func (r *noopRes) LooksAlive(context.Context) error { return r.check() }
func (r *noopRes) IsAlive(context.Context) error    { return r.check() }
func (r *noopRes) check() error {
	if !r.up.Load() {
		return fmt.Errorf("offline")
	}
	return nil
}

func TestMain(m *testing.M) { plugintest.Main(m, noop{}) }

const clkTck = 100 // USER_HZ on Linux

// cpuTicks returns utime+stime of pid in clock ticks.
func cpuTicks(t *testing.T, pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	require.NoError(t, err)
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	u, err := strconv.ParseInt(f[11], 10, 64)
	require.NoError(t, err)
	st, err := strconv.ParseInt(f[12], 10, 64)
	require.NoError(t, err)
	return u + st
}

// rssMB returns VmRSS of pid in MB.
func rssMB(t *testing.T, pid int) float64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	require.NoError(t, err)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			require.NoError(t, err)
			return kb / 1024
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

func TestScale(t *testing.T) {
	if os.Getenv("SFT_PLUGINS_SCALE") != "1" {
		t.Skip("set SFT_PLUGINS_SCALE=1 to run the 60 s scale measurement")
	}
	window := 60 * time.Second
	if d := os.Getenv("SFT_PLUGINS_SCALE_DURATION"); d != "" {
		var err error
		window, err = time.ParseDuration(d)
		require.NoError(t, err)
	}
	const groups, perGroup = 100, 10
	mode := os.Getenv("SFT_PLUGINS_SCALE_MODE")
	h := plugintest.Launch(t, plugins.Config{RemoteChecks: mode == "rpc"})
	var typ resource.Type = noop{} // in-process baseline: the monitor's own cost
	if mode != "inprocess" {
		typ, _ = h.Type("noop")
	}

	var looks, isAlive, failedCalls atomic.Int64
	m := monitor.New(monitor.Config{Observer: func(ci monitor.CallInfo) {
		switch ci.Method {
		case monitor.MethodLooksAlive:
			looks.Add(1)
		case monitor.MethodIsAlive:
			isAlive.Add(1)
		}
		if ci.Err != nil {
			failedCalls.Add(1)
		}
	}})
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	for g := range groups {
		spec := monitor.GroupSpec{Name: "g" + strconv.Itoa(g)}
		for i := range perGroup {
			name := fmt.Sprintf("g%d/r%d", g, i)
			r, err := typ.Open(t.Context(), resource.OpenRequest{Name: name})
			require.NoError(t, err)
			spec.Resources = append(spec.Resources, monitor.ResourceSpec{Name: "r" + strconv.Itoa(i), Type: "noop", Resource: r})
		}
		require.NoError(t, m.AddGroup(spec))
	}
	for g := range groups {
		require.NoError(t, m.Online(t.Context(), "g"+strconv.Itoa(g)))
	}
	time.Sleep(5 * time.Second) // settle: first polls, GC

	self, plug := os.Getpid(), h.Pid()
	l0, i0 := looks.Load(), isAlive.Load()
	h0, p0 := cpuTicks(t, self), cpuTicks(t, plug)
	start := time.Now()
	if path := os.Getenv("SFT_PLUGINS_SCALE_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		require.NoError(t, err)
		require.NoError(t, pprof.StartCPUProfile(f))
		defer f.Close()
	}
	time.Sleep(window)
	pprof.StopCPUProfile()
	wall := time.Since(start).Seconds()
	h1, p1 := cpuTicks(t, self), cpuTicks(t, plug)
	hostCPU := float64(h1-h0) / clkTck / wall * 100
	plugCPU := float64(p1-p0) / clkTck / wall * 100
	hostRSS, plugRSS := rssMB(t, self), rssMB(t, plug)
	switch mode {
	case "rpc":
		mode = "LooksAlive as gRPC call"
	case "inprocess":
		mode = "in-process resources (monitor baseline, idle plugin)"
	default:
		mode = "plugin-side LooksAlive sweep (default)"
	}
	report := fmt.Sprintf("scale: %d resources, %s, %.0fs: LooksAlive %.0f/s, IsAlive %.0f/s; CPU host %.2f%% + plugin %.2f%% = %.2f%% of one core; RSS host %.1f MB + plugin %.1f MB = %.1f MB",
		groups*perGroup, mode, wall, float64(looks.Load()-l0)/wall, float64(isAlive.Load()-i0)/wall,
		hostCPU, plugCPU, hostCPU+plugCPU, hostRSS, plugRSS, hostRSS+plugRSS)
	t.Log(report)
	fmt.Println(report)
	require.Zero(t, failedCalls.Load(), "no call failed")
	require.Greater(t, float64(looks.Load()-l0)/wall, 900.0, "the monitor really polled about 1,000 LooksAlive a second")
}
