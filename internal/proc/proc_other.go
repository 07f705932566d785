//go:build !linux

package proc

import (
	"errors"
	"os/exec"
	"syscall"
	"time"
)

// The process-group control of this package is Linux only. Elsewhere these
// stand-ins let the packages that use it build: groups are not created and
// cannot be signalled, and processes start from any thread.

// Exit describes how a process ended.
type Exit struct {
	Code   int
	Signal syscall.Signal
}

func (e Exit) String() string { return "exited" }

// SysProcAttr returns nil here.
func SysProcAttr() *syscall.SysProcAttr { return nil }

// WaitExit is not supported here.
func WaitExit(pid int) (Exit, error) { return Exit{}, errors.ErrUnsupported }

// SignalGroup is not supported here.
func SignalGroup(pgid int, sig syscall.Signal) error { return errors.ErrUnsupported }

// Alive is not supported here; it reports false.
func Alive(pid int) bool { return false }

// Spawner starts processes.
type Spawner struct{}

// Acquire returns a spawner.
func Acquire() *Spawner { return &Spawner{} }

// Release does nothing here.
func (s *Spawner) Release() {}

// Start runs cmd.Start.
func (s *Spawner) Start(cmd *exec.Cmd) error { return cmd.Start() }

// Stat is what /proc/PID/stat says about a process (Linux only).
type Stat struct {
	PID   int
	State byte
	PPID  int
	PGID  int
}

// Zombie reports whether the process has exited and waits to be reaped.
func (s Stat) Zombie() bool { return s.State == 'Z' || s.State == 'X' }

// ReadStat is not supported here.
func ReadStat(pid int) (Stat, error) { return Stat{}, errors.ErrUnsupported }

// Child is a process started by StartProcess (Linux only).
type Child struct{ Pid int }

// StartProcess is not supported here.
func (s *Spawner) StartProcess(argv0 string, argv []string, attr *syscall.ProcAttr) (*Child, error) {
	return nil, errors.ErrUnsupported
}

// Wait is not supported here.
func (c *Child) Wait() (Exit, error) { return Exit{}, errors.ErrUnsupported }

// OnExit calls fn with ErrUnsupported here.
func (c *Child) OnExit(fn func(Exit, error)) { go fn(Exit{}, errors.ErrUnsupported) }

// Signal is not supported here.
func (c *Child) Signal(sig syscall.Signal) error { return errors.ErrUnsupported }

// Reap is not supported here.
func (c *Child) Reap() error { return errors.ErrUnsupported }

// SpawnStats is not supported here; it reports nothing.
func SpawnStats() (starts int64, cpu time.Duration) { return 0, 0 }
