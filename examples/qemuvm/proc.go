package qemuvm

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// proc is a started QEMU process.
type proc struct {
	pid    int
	exited chan struct{} // closed once the process was reaped
	err    error         // Wait's error; read after exited
	stderr *tailBuffer
}

// spawn starts cmd in a process group of its own with Pdeathsig SIGKILL,
// from a goroutine locked to its OS thread until the process is reaped:
// the kernel sends Pdeathsig when the thread that forked the child exits,
// not the process, and the Go runtime may end idle threads. So QEMU cannot
// outlive the plugin, even when the plugin is SIGKILLed.
func spawn(cmd *exec.Cmd) (*proc, error) {
	p := &proc{exited: make(chan struct{}), stderr: &tailBuffer{max: 8 << 10}}
	cmd.Stderr = p.stderr
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		p.pid = cmd.Process.Pid
		started <- nil
		p.err = cmd.Wait()
		close(p.exited)
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return p, nil
}

// kill SIGKILLs the process group unless the process was already reaped
// (then its pid, and the group id, may belong to someone else).
func (p *proc) kill() {
	select {
	case <-p.exited:
	default:
		_ = syscall.Kill(-p.pid, syscall.SIGKILL)
	}
}

// exitError describes how the process ended, with the tail of its stderr.
func (p *proc) exitError() error {
	msg := strings.TrimSpace(p.stderr.String())
	if msg != "" {
		return fmt.Errorf("qemu (pid %d) exited: %v: %s", p.pid, p.err, msg)
	}
	if p.err == nil {
		return fmt.Errorf("qemu (pid %d) exited", p.pid)
	}
	return fmt.Errorf("qemu (pid %d) exited: %v", p.pid, p.err)
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   bytes.Buffer
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b.Write(p)
	if over := t.b.Len() - t.max; over > 0 {
		t.b.Next(over)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.b.String()
}

// errLocked is the error of a VM lock that someone else holds.
var errLocked = errors.New("in use by another QEMU")

// lockVM takes the exclusive flock(2) of the VM named name in dir, without
// blocking. The file holds the pid of the QEMU that holds it (see
// writePID); QEMU inherits the open file, so the lock lives exactly as
// long as the QEMU process once the caller closes its own copy.
func lockVM(dir, name string) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("lock_dir: %w", err)
	}
	path := filepath.Join(dir, url.PathEscape(name)+".lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("vm lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			holder, _ := os.ReadFile(path)
			return nil, fmt.Errorf("vm %q is %w (pid %s, lock %s)", name, errLocked, strings.TrimSpace(string(holder)), path)
		}
		return nil, fmt.Errorf("vm lock %s: %w", path, err)
	}
	return f, nil
}

// writePID records pid in the lock file, for the error of the next taker.
func writePID(f *os.File, pid int) {
	if f.Truncate(0) == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(pid)+"\n"), 0)
	}
}

// runDirPrefix starts the name of a run's private directory in the temp
// directory: runDirPrefix<plugin pid>-<random>.
const runDirPrefix = "sft-qemuvm-"

// sweepRunDirs removes the private directories (sockets only) that runs
// of plugin processes no longer alive left in dir: a plugin killed with
// SIGKILL (its node killed) cannot remove its own. A live process with
// the same pid keeps them: a leak at worst, never a live run's sockets.
func sweepRunDirs(dir string) {
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), runDirPrefix)
		if !ok || !e.IsDir() {
			continue
		}
		pidStr, _, ok := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidStr)
		if !ok || err != nil || pid <= 0 {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			os.RemoveAll(filepath.Join(dir, e.Name()))
		}
	}
}
