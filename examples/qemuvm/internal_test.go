package qemuvm

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sftkit/sft/resource"
)

func TestQEMUArgs(t *testing.T) {
	c, err := decode(resource.Properties{
		"kernel": "/proc/self/exe", "append": "console=ttyS0", "memory": 64, "cpus": 2,
		"network": "user", "port_forwards": []any{"tcp:127.0.0.1:2222-:22"},
		"console": "socket:/tmp/a,b.sock", "console_log": "/tmp/con.log",
	}, "g/vm")
	require.NoError(t, err)
	args := strings.Join(qemuArgs(c, AccelTCG, "/q.sock", "/h.sock"), " ")
	for _, want := range []string{
		"-S -no-reboot", "-name g/vm", "-machine pc,accel=tcg", "-m 64", "-smp 2",
		"-kernel /proc/self/exe", "-append console=ttyS0",
		"-chardev socket,id=qmp,path=/q.sock -mon chardev=qmp,mode=control",
		"-chardev socket,id=con,path=/tmp/a,,b.sock,server=on,wait=off,logfile=/tmp/con.log,logappend=on -serial chardev:con",
		"-chardev socket,id=hb,path=/h.sock -serial chardev:hb",
		"-device pvpanic", "-netdev user,id=net0,hostfwd=tcp:127.0.0.1:2222-:22",
	} {
		require.Contains(t, args, want)
	}
	require.Equal(t, "g/vm", c.VMName, "vm_name defaults to the instance name")
}

func TestDecodeDefaultsAndErrors(t *testing.T) {
	c, err := decode(resource.Properties{"kernel": "/proc/self/exe"}, "x")
	require.NoError(t, err)
	require.Equal(t, AccelAuto, c.Accel)
	require.Equal(t, float64(DefaultMemoryMiB), c.Memory)
	require.Equal(t, DefaultShutdownGrace, c.ShutdownGrace.D())
	for _, tc := range []struct {
		name  string
		p     resource.Properties
		field string
	}{
		{"initrd without kernel", resource.Properties{"disk": "/proc/self/exe", "initrd": "/proc/self/exe"}, "initrd"},
		{"fractional memory", resource.Properties{"kernel": "/proc/self/exe", "memory": 12.5}, "memory"},
		{"forward without user net", resource.Properties{"kernel": "/proc/self/exe", "port_forwards": []any{"tcp::1-:2"}}, "port_forwards[0]"},
		{"port out of range", resource.Properties{"kernel": "/proc/self/exe", "network": "user", "port_forwards": []any{"tcp::70000-:22"}}, "port_forwards[0]"},
		{"bad console", resource.Properties{"kernel": "/proc/self/exe", "console": "file:x"}, "console"},
		{"console_log beside a log console", resource.Properties{"kernel": "/proc/self/exe", "console": "log:/a", "console_log": "/b"}, "console_log"},
		{"relative console_log", resource.Properties{"kernel": "/proc/self/exe", "console_log": "con.log"}, "console_log"},
		{"same sockets", resource.Properties{"kernel": "/proc/self/exe", "qmp_socket": "/a", "heartbeat_socket": "/a"}, "heartbeat_socket"},
		{"short heartbeat", resource.Properties{"kernel": "/proc/self/exe", "heartbeat_timeout": "1ms"}, "heartbeat_timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decode(tc.p, "x")
			var re *resource.Error
			require.ErrorAs(t, err, &re)
			require.Equal(t, tc.field, re.Field, "%v", err)
		})
	}
}

// TestQMPClient drives the client against a scripted QMP peer (a fake of
// QEMU's side of the socket): greeting, capabilities, an event, a reply and
// an error reply.
func TestQMPClient(t *testing.T) {
	ours, theirs := net.Pipe()
	defer theirs.Close()
	events := make(chan qmpEvent, 4)
	go func() {
		r := bufio.NewReader(theirs)
		w := func(s string) { _, _ = theirs.Write([]byte(s + "\n")) }
		w(`{"QMP": {"version": {}, "capabilities": []}}`)
		line, _ := r.ReadString('\n')
		if !strings.Contains(line, "qmp_capabilities") {
			w(`{"error": {"class": "GenericError", "desc": "want qmp_capabilities"}}`)
			return
		}
		w(`{"return": {}}`)
		w(`{"event": "STOP", "data": {}}`)
		_, _ = r.ReadString('\n')
		w(`{"return": {"status": "paused"}}`)
		_, _ = r.ReadString('\n')
		w(`{"error": {"class": "CommandNotFound", "desc": "nope"}}`)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	q, err := newQMP(ctx, ours, func(e qmpEvent) { events <- e }, nil)
	require.NoError(t, err)
	defer q.close()
	require.Equal(t, "STOP", (<-events).Name)
	ret, err := q.command(ctx, "query-status", nil)
	require.NoError(t, err)
	require.JSONEq(t, `{"status": "paused"}`, string(ret))
	_, err = q.command(ctx, "bogus", nil)
	require.ErrorContains(t, err, "CommandNotFound: nope")
}

// TestConsoleTail: errors of a failed boot end with the last KiB of the
// console file, quoted; without a file they add nothing.
func TestConsoleTail(t *testing.T) {
	require.Empty(t, consoleTail(""))
	require.Empty(t, consoleTail(filepath.Join(t.TempDir(), "missing")))
	path := filepath.Join(t.TempDir(), "console.log")
	text := strings.Repeat("boot noise\n", 200) + "Kernel panic - not syncing: IO-APIC + timer doesn't work!\n"
	require.NoError(t, os.WriteFile(path, []byte(text), 0o644))
	got := consoleTail(path)
	require.Contains(t, got, `Kernel panic - not syncing: IO-APIC + timer doesn't work!"`)
	require.Less(t, len(got), 1200)
	c, err := decode(resource.Properties{"kernel": "/proc/self/exe", "console": "log:" + path}, "x")
	require.NoError(t, err)
	require.Equal(t, path, c.consoleFile())
}

// TestSweepRunDirs: the private directories of dead plugin processes are
// removed, those of live ones (this process) and other names are kept.
func TestSweepRunDirs(t *testing.T) {
	dir := t.TempDir()
	dead := exec.Command("true")
	require.NoError(t, dead.Run())
	mk := func(name string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.MkdirAll(filepath.Join(p, "sub"), 0o700))
		return p
	}
	gone := mk(fmt.Sprintf("%s%d-123", runDirPrefix, dead.Process.Pid))
	live := mk(fmt.Sprintf("%s%d-456", runDirPrefix, os.Getpid()))
	other := mk(runDirPrefix + "x-1")
	sweepRunDirs(dir)
	require.NoDirExists(t, gone)
	require.DirExists(t, live)
	require.DirExists(t, other)
}
