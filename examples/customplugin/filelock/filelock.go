// Package filelock is the example custom resource type "filelock": while
// online it holds an exclusive flock(2) on a file, so that at most one
// process on the machine (one sft host, or anything else using flock) owns
// it. It is a plain resource.Type: usable in-process, or served as a plugin
// by ../plugin.
//
// Properties:
//
//	path   (required)  absolute path of the lock file; created if missing
//	mode   0644        permission bits of a created file (a number)
package filelock

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"

	"github.com/sftkit/sft/resource"
)

// New returns the "filelock" type.
func New() resource.Type { return lockType{} }

type lockType struct{}

type props struct {
	Path string  `json:"path"`
	Mode float64 `json:"mode"`
}

func (lockType) Name() string { return "filelock" }

func (lockType) decode(p resource.Properties) (props, error) {
	c := props{Mode: 0o644}
	if err := p.Decode(&c); err != nil {
		return c, err
	}
	if c.Path == "" {
		return c, resource.ConfigError("path", nil, "required")
	}
	if !filepath.IsAbs(c.Path) {
		return c, resource.ConfigError("path", c.Path, "must be absolute")
	}
	if c.Mode < 0 || c.Mode > 0o777 || c.Mode != float64(int(c.Mode)) {
		return c, resource.ConfigError("mode", c.Mode, "want permission bits, 0 to 0777")
	}
	return c, nil
}

func (t lockType) Validate(_ context.Context, p resource.Properties) error {
	_, err := t.decode(p)
	return err
}

func (t lockType) Open(_ context.Context, req resource.OpenRequest) (resource.Resource, error) {
	c, err := t.decode(req.Properties)
	if err != nil {
		return nil, err
	}
	return &Lock{cfg: c, log: req.Log()}, nil
}

// Lock is one lock instance. Its resource.Lifecycle does the plumbing:
// Terminate cancels an Online in flight, and a lock taken by an Online that
// Terminate overtook is dropped instead of kept.
type Lock struct {
	cfg props
	log *slog.Logger

	life resource.Lifecycle
	f    *os.File // held lock, nil when offline; guarded by life
}

var _ resource.Resource = (*Lock)(nil)

// Path is the lock file.
func (l *Lock) Path() string { return l.cfg.Path }

// Online opens the file and takes the lock without blocking: a lock held
// by someone else is a transient error (try again later, or elsewhere).
func (l *Lock) Online(ctx context.Context) error {
	_, call := l.life.Begin(ctx) // Online never waits; Terminate still overtakes it
	defer call.End()
	if err := call.Err(); err != nil {
		return err
	}
	if l.holding() {
		return nil
	}
	f, err := os.OpenFile(l.cfg.Path, os.O_RDWR|os.O_CREATE, os.FileMode(l.cfg.Mode))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, os.ErrPermission) {
			return resource.ConfigError("path", l.cfg.Path, "%v", err)
		}
		return err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return resource.Transient(fmt.Errorf("%s is locked by another process", l.cfg.Path))
		}
		return fmt.Errorf("flock %s: %w", l.cfg.Path, err)
	}
	if err := call.Commit(func() { l.f = f }); err != nil {
		f.Close() // Terminate came first, or ctx ended: drop the lock
		return err
	}
	l.log.Info("lock taken", "path", l.cfg.Path)
	return nil
}

// Offline releases the lock.
func (l *Lock) Offline(context.Context) error { return l.Terminate(context.Background()) }

// Terminate releases the lock at once (closing the file drops it) and
// cancels an Online in flight. Idempotent.
func (l *Lock) Terminate(context.Context) error {
	return l.life.Terminate(func() error {
		if l.f == nil {
			return nil
		}
		err := l.f.Close()
		l.f = nil
		l.log.Info("lock released", "path", l.cfg.Path)
		return err
	})
}

func (l *Lock) holding() bool {
	return l.life.Locked(func() error {
		if l.f == nil {
			return errors.New("lock not held")
		}
		return nil
	}) == nil
}

// LooksAlive answers from memory: do we hold the lock?
func (l *Lock) LooksAlive(context.Context) error {
	if !l.holding() {
		return errors.New("lock not held")
	}
	return nil
}

// IsAlive also checks that the path still names the file we locked: a lock
// on a deleted or replaced file protects nothing.
func (l *Lock) IsAlive(context.Context) error {
	return l.life.Locked(func() error {
		if l.f == nil {
			return errors.New("lock not held")
		}
		held, err := l.f.Stat()
		if err != nil {
			return err
		}
		now, err := os.Stat(l.cfg.Path)
		if err != nil {
			return fmt.Errorf("lock file: %w", err)
		}
		if !os.SameFile(held, now) {
			return fmt.Errorf("%s was replaced: the lock protects nothing", l.cfg.Path)
		}
		return nil
	})
}
