//go:build !linux

package procutil

import (
	"errors"
	"syscall"
)

// SysProcAttr returns nil: process groups with parent-death signals are
// implemented on Linux only.
func SysProcAttr() *syscall.SysProcAttr { return nil }

// KillGroup is not supported here.
func KillGroup(pid int) error { return errors.ErrUnsupported }

// Stat is what /proc/PID/stat says about a process (Linux only).
type Stat struct {
	PID   int
	State byte
	PPID  int
	PGID  int
}

// ReadStat is not supported here.
func ReadStat(pid int) (Stat, error) { return Stat{}, errors.ErrUnsupported }

// Alive is not supported here; it reports false.
func Alive(pid int) bool { return false }

// Children is not supported here.
func Children(pid int) ([]Stat, error) { return nil, errors.ErrUnsupported }

// Group is not supported here.
func Group(pgid int) ([]Stat, error) { return nil, errors.ErrUnsupported }
