package plugins

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"github.com/sftkit/sft/resource"
)

// scriptedType is the resource type the test plugin process serves. Its
// behaviour is scripted through properties and files, so that tests can
// drive an instance living in another process.
type scriptedType struct{}

type scriptedProps struct {
	// Bad: any value is a configuration error naming it.
	Bad any `json:"bad"`
	// Progress: Online reports this many progress messages.
	Progress int `json:"progress"`
	// BlockOnline: Online blocks until its ctx ends (honouring it).
	BlockOnline bool `json:"block_online"`
	// HangFile: while this file exists, Online ignores ctx and hangs forever.
	HangFile string `json:"hang_file"`
	// SpawnPidFile: Online starts a grandchild (sleep) and writes its pid here.
	SpawnPidFile string `json:"spawn_pid_file"`
	// FailLooksFile: LooksAlive fails while this file exists.
	FailLooksFile string `json:"fail_looks_file"`
	// IsAliveMark: IsAlive creates this file once it has its answer (a
	// test waits for the plugin-side IsAlive a start runs at once).
	IsAliveMark string `json:"is_alive_mark"`
	// Print: Online writes this line to stdout.
	Print string `json:"print"`
	// PushAfter: after Online, push a node-local failure after this delay.
	PushAfter resource.Duration `json:"push_after"`
	// TerminateLog: Terminate appends a line to this file.
	TerminateLog string `json:"terminate_log"`
	// FailTerminateFile: Terminate fails while this file exists.
	FailTerminateFile string `json:"fail_terminate_file"`
	// GCPercentFile: Online writes the process's GC percent here.
	GCPercentFile string `json:"gc_percent_file"`
	// FailOnline: Online fails with a configuration error naming
	// fail_online and this value.
	FailOnline string `json:"fail_online"`
	// CtxFile: Online writes what its ctx carries here ("deadline in NS"
	// or "no deadline") and, when a blocked Online ends, "ended: CAUSE".
	CtxFile string `json:"ctx_file"`
}

func (scriptedType) Name() string { return "scripted" }

func (scriptedType) DefaultTiming() resource.Timing {
	return resource.Timing{PendingTimeout: 42 * time.Second}
}

func (scriptedType) decode(props resource.Properties) (scriptedProps, error) {
	var p scriptedProps
	if err := props.Decode(&p); err != nil {
		return p, err
	}
	if p.Bad != nil {
		return p, resource.ConfigError("bad", p.Bad, "is always wrong")
	}
	return p, nil
}

func (t scriptedType) Validate(_ context.Context, props resource.Properties) error {
	_, err := t.decode(props)
	return err
}

func (t scriptedType) Open(_ context.Context, req resource.OpenRequest) (resource.Resource, error) {
	p, err := t.decode(req.Properties)
	if err != nil {
		return nil, err
	}
	return &scripted{p: p, log: req.Log()}, nil
}

type scripted struct {
	p   scriptedProps
	log interface {
		Warn(string, ...any)
	}

	mu      sync.Mutex
	up      bool
	handler func(error)
	stop    chan struct{}
	child   *exec.Cmd
}

func exists(path string) bool {
	if path == "" {
		return false
	}
	_, err := os.Stat(path)
	return err == nil
}

func (s *scripted) Online(ctx context.Context) error {
	s.log.Warn("scripted online", "progress", s.p.Progress)
	if s.p.Print != "" {
		fmt.Println(s.p.Print)
	}
	if s.p.GCPercentFile != "" {
		gc := debug.SetGCPercent(100)
		debug.SetGCPercent(gc)
		if err := os.WriteFile(s.p.GCPercentFile, []byte(strconv.Itoa(gc)), 0o600); err != nil {
			return err
		}
	}
	if s.p.CtxFile != "" {
		what := "no deadline"
		if dl, ok := ctx.Deadline(); ok {
			what = fmt.Sprintf("deadline in %d", time.Until(dl))
		}
		if err := os.WriteFile(s.p.CtxFile, []byte(what+"\n"), 0o600); err != nil {
			return err
		}
	}
	if s.p.FailOnline != "" {
		return resource.ConfigError("fail_online", s.p.FailOnline, "asked to fail")
	}
	for i := range s.p.Progress {
		resource.ReportProgress(ctx, fmt.Sprintf("step %d", i+1))
	}
	if s.p.SpawnPidFile != "" {
		cmd := exec.Command("sleep", "1000")
		if err := cmd.Start(); err != nil {
			return err
		}
		s.mu.Lock()
		s.child = cmd
		s.mu.Unlock()
		if err := os.WriteFile(s.p.SpawnPidFile, []byte(strconv.Itoa(cmd.Process.Pid)), 0o600); err != nil {
			return err
		}
	}
	if exists(s.p.HangFile) {
		select {} // a deadlock that ignores ctx and Terminate
	}
	if s.p.BlockOnline {
		<-ctx.Done()
		if s.p.CtxFile != "" {
			f, err := os.OpenFile(s.p.CtxFile, os.O_APPEND|os.O_WRONLY, 0o600)
			if err == nil {
				_, _ = fmt.Fprintf(f, "ended: %v\n", context.Cause(ctx))
				_ = f.Close()
			}
		}
		return fmt.Errorf("online blocked: %w", context.Cause(ctx))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.up = true
	if s.p.PushAfter > 0 {
		stop := make(chan struct{})
		s.stop = stop
		h := s.handler
		go func() {
			select {
			case <-time.After(s.p.PushAfter.D()):
				if h != nil {
					h(resource.NodeLocal(errors.New("pushed by scripted")))
				}
			case <-stop:
			}
		}()
	}
	return nil
}

func (s *scripted) down() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.up = false
	if s.stop != nil {
		close(s.stop)
		s.stop = nil
	}
	if s.child != nil {
		_ = s.child.Process.Kill()
		_ = s.child.Wait()
		s.child = nil
	}
}

func (s *scripted) Offline(context.Context) error { s.down(); return nil }

func (s *scripted) Terminate(context.Context) error {
	if s.p.TerminateLog != "" {
		f, err := os.OpenFile(s.p.TerminateLog, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
		if err != nil {
			return err
		}
		_, _ = f.WriteString("terminate\n")
		_ = f.Close()
	}
	if exists(s.p.FailTerminateFile) {
		return resource.Transient(errors.New("fail_terminate_file exists"))
	}
	s.down()
	return nil
}

func (s *scripted) LooksAlive(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.up {
		return errors.New("not online")
	}
	if exists(s.p.FailLooksFile) {
		return resource.Transient(errors.New("fail_looks_file exists"))
	}
	return nil
}

func (s *scripted) IsAlive(ctx context.Context) error {
	err := s.LooksAlive(ctx)
	if s.p.IsAliveMark != "" {
		_ = os.WriteFile(s.p.IsAliveMark, nil, 0o600)
	}
	return err
}

func (s *scripted) SetFailureHandler(fn func(error)) {
	s.mu.Lock()
	s.handler = fn
	s.mu.Unlock()
}
