package proc

import (
	"bytes"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Info is one process as /proc/<pid>/stat shows it.
type Info struct {
	Pid, PPid, Pgid, Sid int
	State                byte // 'R', 'S', 'Z', ...
}

// Scan lists every process in /proc (zombies included). Processes that
// vanish during the scan are skipped.
func Scan() ([]Info, error) {
	d, err := os.Open("/proc")
	if err != nil {
		return nil, err
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	out := make([]Info, 0, len(names))
	for _, n := range names {
		pid, err := strconv.Atoi(n)
		if err != nil {
			continue
		}
		if in, ok := readInfo(pid); ok {
			out = append(out, in)
		}
	}
	return out, nil
}

func readInfo(pid int) (Info, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return Info{}, false
	}
	// pid (comm) state ppid pgrp session ...; comm may hold spaces and ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return Info{}, false
	}
	f := strings.Fields(string(b[i+2:]))
	if len(f) < 4 {
		return Info{}, false
	}
	in := Info{Pid: pid, State: f[0][0]}
	in.PPid, _ = strconv.Atoi(f[1])
	in.Pgid, _ = strconv.Atoi(f[2])
	in.Sid, _ = strconv.Atoi(f[3])
	return in, true
}

// HasEnv reports whether pid's initial environment (as it was at exec)
// holds the entry kv ("KEY=value"). Zombies and other users' processes
// without permission report false.
func HasEnv(pid int, kv string) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		return false
	}
	for e := range bytes.SplitSeq(b, []byte{0}) {
		if string(e) == kv {
			return true
		}
	}
	return false
}

// SetChildSubreaper makes the calling process a child subreaper
// (PR_SET_CHILD_SUBREAPER): orphaned descendants are reparented to it
// instead of to init, so they stay in its view and it must reap them.
func SetChildSubreaper() error {
	return unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
}

// ReapZombie reaps pid if it is a zombie child of this process, without
// blocking; it reports whether it did.
func ReapZombie(pid int) bool {
	var ws unix.WaitStatus
	n, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil)
	return err == nil && n == pid
}
