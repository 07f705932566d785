package cgroup

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const hybrid = `22 1 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
34 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
38 30 0:35 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
39 30 0:36 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`

const unified = `25 21 0:22 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
99 25 0:22 / /mnt/other\040place rw - cgroup2 cgroup2 rw
`

const v1only = `31 30 0:28 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
32 30 0:29 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
`

func TestParseMountinfo(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		v2   string
		v1   map[string]string
	}{
		{"hybrid", hybrid, "/sys/fs/cgroup/unified", map[string]string{
			"cpu": "/sys/fs/cgroup/cpu", "memory": "/sys/fs/cgroup/memory", "pids": "/sys/fs/cgroup/pids"}},
		{"unified, first mount wins", unified, "/sys/fs/cgroup", map[string]string{}},
		{"v1 only", v1only, "", map[string]string{
			"cpu": "/sys/fs/cgroup/cpu,cpuacct", "cpuacct": "/sys/fs/cgroup/cpu,cpuacct", "memory": "/sys/fs/cgroup/memory"}},
		{"empty", "", "", map[string]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := ParseMountinfo(strings.NewReader(tt.in))
			require.NoError(t, err)
			require.Equal(t, tt.v2, l.V2)
			require.Equal(t, tt.v1, l.V1)
		})
	}
	_, err := ParseMountinfo(strings.NewReader("garbage line\n"))
	require.ErrorContains(t, err, "line 1")
}

func TestUnescapeMount(t *testing.T) {
	t.Parallel()
	require.Equal(t, "/mnt/a b", unescapeMount(`/mnt/a\040b`))
	require.Equal(t, `/mnt/a\09`, unescapeMount(`/mnt/a\09`))
	require.Equal(t, `/x\`, unescapeMount(`/x\`))
}

func TestParseOwnCgroups(t *testing.T) {
	t.Parallel()
	own, err := ParseOwnCgroups(strings.NewReader("4:memory:/a/b\n1:cpu,cpuacct:/\n9:name=systemd:/\n0::/c\n"))
	require.NoError(t, err)
	require.Equal(t, map[string]string{"memory": "/a/b", "cpu": "/", "cpuacct": "/", "name=systemd": "/", "": "/c"}, own)
	_, err = ParseOwnCgroups(strings.NewReader("nonsense\n"))
	require.Error(t, err)
}

func TestEscapeName(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"web":          "web",
		"node-1_a":     "node-1_a",
		"":             "%",
		"a/b":          "a%2Fb",
		"cgroup.procs": "cgroup%2Eprocs",
		"..":           "%2E%2E",
		"a b%":         "a%20b%25",
		"é":            "%C3%A9",
		"\x00\x0f\xff": "%00%0F%FF",
	}
	for in, want := range tests {
		require.Equal(t, want, EscapeName(in), "EscapeName(%q)", in)
	}
	require.NotEqual(t, EscapeName("a%2F"), EscapeName("a/"))
}

func TestLimitsSettings(t *testing.T) {
	t.Parallel()
	require.True(t, Limits{}.IsZero())
	s := Limits{MemoryBytes: 64 << 20, CPU: 0.5, Tasks: 32}.settings()
	require.Len(t, s, 3)
	require.Equal(t, setting{"memory", "memory", "memory.max", "67108864", "memory.limit_in_bytes", "67108864"}, s[0])
	require.Equal(t, setting{"cpu", "cpu", "cpu.max", "50000 100000", "cpu.cfs_quota_us", "50000"}, s[1])
	require.Equal(t, setting{"tasks", "pids", "pids.max", "32", "pids.max", "32"}, s[2])
	// The kernel refuses quotas under 1 ms.
	require.Equal(t, "1000 100000", Limits{CPU: 0.001}.settings()[0].v2Value)
}
