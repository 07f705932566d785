package procutil

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// SysProcAttr returns attributes for a child that leads a process group of
// its own (so KillGroup reaches its descendants) and is sent SIGKILL when its
// parent dies (Pdeathsig, so it never outlives the host).
func SysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// KillGroup sends SIGKILL to the process group led by pid. A group that is
// already gone is not an error.
func KillGroup(pid int) error {
	if pid <= 1 {
		return fmt.Errorf("procutil: refusing to kill process group %d", pid)
	}
	if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("procutil: kill process group %d: %w", pid, err)
	}
	return nil
}

// Stat is what /proc/PID/stat says about a process.
type Stat struct {
	PID   int
	State byte // 'R', 'S', 'Z', ...
	PPID  int
	PGID  int
}

// ReadStat reads /proc/pid/stat.
func ReadStat(pid int) (Stat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return Stat{}, err
	}
	return parseStat(string(b))
}

func parseStat(s string) (Stat, error) {
	// pid (comm) state ppid pgrp ...; comm may contain spaces and parens.
	i := strings.LastIndexByte(s, ')')
	j := strings.IndexByte(s, ' ')
	if i < 0 || j < 0 {
		return Stat{}, fmt.Errorf("procutil: bad stat %q", s)
	}
	pid, err := strconv.Atoi(s[:j])
	if err != nil {
		return Stat{}, fmt.Errorf("procutil: bad stat %q", s)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 3 {
		return Stat{}, fmt.Errorf("procutil: bad stat %q", s)
	}
	ppid, err1 := strconv.Atoi(f[1])
	pgid, err2 := strconv.Atoi(f[2])
	if err1 != nil || err2 != nil || len(f[0]) != 1 {
		return Stat{}, fmt.Errorf("procutil: bad stat %q", s)
	}
	return Stat{PID: pid, State: f[0][0], PPID: ppid, PGID: pgid}, nil
}

// Alive reports whether pid exists and is not a zombie.
func Alive(pid int) bool {
	st, err := ReadStat(pid)
	return err == nil && st.State != 'Z' && st.State != 'X'
}

// Children lists the processes whose parent is pid (zombies included).
func Children(pid int) ([]Stat, error) {
	return scan(func(s Stat) bool { return s.PPID == pid })
}

// Group lists the live processes in process group pgid.
func Group(pgid int) ([]Stat, error) {
	return scan(func(s Stat) bool { return s.PGID == pgid && s.State != 'Z' && s.State != 'X' })
}

func scan(keep func(Stat) bool) ([]Stat, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var out []Stat
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := ReadStat(pid)
		if err != nil {
			continue // gone meanwhile
		}
		if keep(st) {
			out = append(out, st)
		}
	}
	return out, nil
}
