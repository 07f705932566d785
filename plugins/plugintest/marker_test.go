package plugintest_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/sftkit/sft/resource"
)

// markerType is the "marker" type: while online, a file exists at path. It
// is correct unless the property "break" names a weakness, which lets the
// suite's own tests prove that the suite catches that weakness in every
// mode (the test binary serves it as a plugin too).
//
//	path   (required)  absolute path of the marker file
//	wait   duration    Online waits this long before creating the file
//	break  string      a weakness: see the breaks below
type markerType struct{}

// The weaknesses a marker can have.
const (
	breakTerminateLeavesFile = "terminate-leaves-file"
	breakOnlineIgnoresCtx    = "online-ignores-deadline" // waits for Terminate only
	breakTerminateKeepsOn    = "terminate-keeps-online"  // Terminate does not cancel Online
	breakLooksAliveIgnoreCtx = "looksalive-ignores-ctx"  // sleeps 10 s
	breakLooksAliveSlow      = "looksalive-slow"         // 50 ms, honouring ctx
	breakRecreates           = "recreates"               // a goroutine recreates the file after Terminate
	breakValidateAccepts     = "validate-accepts"        // Validate checks nothing
)

type markerProps struct {
	Path  string            `json:"path"`
	Wait  resource.Duration `json:"wait"`
	Break string            `json:"break"`
}

func (markerType) Name() string { return "marker" }

func decodeMarker(p resource.Properties) (markerProps, error) {
	var c markerProps
	if err := p.Decode(&c); err != nil {
		return c, err
	}
	if c.Path == "" {
		return c, resource.ConfigError("path", nil, "required")
	}
	if !filepath.IsAbs(c.Path) {
		return c, resource.ConfigError("path", c.Path, "must be absolute")
	}
	return c, nil
}

func (markerType) Validate(_ context.Context, p resource.Properties) error {
	c, err := decodeMarker(p)
	if c.Break == breakValidateAccepts {
		return nil
	}
	return err
}

func (markerType) Open(_ context.Context, req resource.OpenRequest) (resource.Resource, error) {
	c, err := decodeMarker(req.Properties)
	if err != nil {
		return nil, err
	}
	return &marker{cfg: c, terminated: make(chan struct{})}, nil
}

type marker struct {
	cfg  markerProps
	life resource.Lifecycle
	on   bool // guarded by life

	mu         sync.Mutex
	terminated chan struct{} // closed by Terminate (for the broken Onlines)
}

func (m *marker) Online(ctx context.Context) error {
	callCtx, call := m.life.Begin(ctx)
	defer call.End()
	if m.cfg.Wait > 0 {
		wait := time.NewTimer(time.Duration(m.cfg.Wait))
		defer wait.Stop()
		m.mu.Lock()
		terminated := m.terminated
		m.mu.Unlock()
		var done <-chan struct{}
		switch m.cfg.Break {
		case breakOnlineIgnoresCtx:
			done = terminated
		case breakTerminateKeepsOn:
			done = ctx.Done()
		default:
			done = callCtx.Done()
		}
		select {
		case <-wait.C:
		case <-done:
			if err := ctx.Err(); err != nil {
				return err
			}
			return errors.New("terminated")
		}
	}
	if err := os.WriteFile(m.cfg.Path, nil, 0o600); err != nil {
		return err
	}
	if err := call.Commit(func() { m.on = true }); err != nil {
		os.Remove(m.cfg.Path)
		return err
	}
	if m.cfg.Break == breakRecreates {
		terminated := terminatedOf(m)
		go func() {
			<-terminated
			// Recreate it once the suite has seen it gone (Up marks
			// that), not after a fixed delay: on a loaded machine the
			// suite's first look can come later than any delay, and the
			// bug would be reported as "left behind", not "came back".
			for range 6000 {
				if _, err := os.Stat(seenDown(m.cfg.Path)); err == nil {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			_ = os.WriteFile(m.cfg.Path, nil, 0o600)
		}()
	}
	return nil
}

func terminatedOf(m *marker) <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.terminated
}

func (m *marker) Offline(context.Context) error {
	return m.life.Terminate(m.remove)
}

func (m *marker) Terminate(context.Context) error {
	if m.cfg.Break == breakRecreates {
		_ = os.Remove(seenDown(m.cfg.Path)) // before Terminate returns: see Online
	}
	m.mu.Lock()
	close(m.terminated)
	m.terminated = make(chan struct{})
	m.mu.Unlock()
	if m.cfg.Break == breakTerminateLeavesFile {
		return m.life.Terminate(func() error { m.on = false; return nil })
	}
	return m.life.Terminate(m.remove)
}

func (m *marker) remove() error {
	m.on = false
	if err := os.Remove(m.cfg.Path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

func (m *marker) LooksAlive(ctx context.Context) error {
	switch m.cfg.Break {
	case breakLooksAliveIgnoreCtx:
		time.Sleep(10 * time.Second)
	case breakLooksAliveSlow:
		select {
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return m.life.Locked(func() error {
		if !m.on {
			return errors.New("marker: offline")
		}
		return nil
	})
}

func (m *marker) IsAlive(ctx context.Context) error {
	if err := m.LooksAlive(ctx); err != nil {
		return err
	}
	if _, err := os.Stat(m.cfg.Path); err != nil {
		return err
	}
	return nil
}

// seenDown names the file Up writes when it finds the marker absent.
func seenDown(path string) string { return path + ".seen-down" }
