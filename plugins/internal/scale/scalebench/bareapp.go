package main

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"sync"

	"github.com/sftkit/sft/monitor"
	"github.com/sftkit/sft/policy"
	"github.com/sftkit/sft/resource"
)

// bareApp is the smallest resource that runs the app: exec.Cmd Start in
// Online, a goroutine in Wait that pushes the exit, kill and wait in
// Terminate, checks answered from memory. The restart phase runs it
// beside genericapp to split the overhead: the monitor's own share of the
// crash-to-restart path, and what genericapp (its spawner, cgroup and
// supervision) and the plugin add.
type bareApp struct {
	argv []string

	mu       sync.Mutex
	handler  func(error)
	cmd      *exec.Cmd
	done     chan struct{} // closed when cmd has been reaped
	stopping bool
}

func (a *bareApp) SetFailureHandler(fn func(error)) {
	a.mu.Lock()
	a.handler = fn
	a.mu.Unlock()
}

func (a *bareApp) Online(context.Context) error {
	cmd := exec.Command(a.argv[0], a.argv[1:]...)
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	a.mu.Lock()
	a.cmd, a.done, a.stopping = cmd, done, false
	a.mu.Unlock()
	go func() {
		err := cmd.Wait()
		a.mu.Lock()
		h, asked := a.handler, a.stopping
		a.mu.Unlock()
		close(done)
		if !asked && h != nil {
			h(fmt.Errorf("exited: %v", err))
		}
	}()
	return nil
}

func (a *bareApp) stop(context.Context) error {
	a.mu.Lock()
	cmd, done := a.cmd, a.done
	a.stopping = true
	a.mu.Unlock()
	if cmd == nil {
		return nil
	}
	_ = cmd.Process.Kill() // fails once it has exited: fine
	<-done
	return nil
}

func (a *bareApp) Offline(ctx context.Context) error   { return a.stop(ctx) }
func (a *bareApp) Terminate(ctx context.Context) error { return a.stop(ctx) }

func (a *bareApp) LooksAlive(context.Context) error {
	a.mu.Lock()
	done := a.done
	a.mu.Unlock()
	select {
	case <-done:
		return errors.New("exited")
	default:
		return nil
	}
}

func (a *bareApp) IsAlive(ctx context.Context) error { return a.LooksAlive(ctx) }
func (a *bareApp) LooksAliveInstant() bool           { return true }
func (a *bareApp) IsAliveInstant() bool              { return true }

// bareEnv is a monitor running one bareApp of the bench's app, restart
// delay 0.
func (b *bench) bareEnv() (*env, error) {
	e := &env{b: b, g: 1, m: monitor.New(monitor.Config{})}
	var r resource.Resource = &bareApp{argv: []string{b.app, "/dev/null"}}
	err := e.m.AddGroup(monitor.GroupSpec{Name: "g0", Resources: []monitor.ResourceSpec{{
		Name: "r0", Type: "bare", Resource: r, Restart: policy.Restart{Delay: -1, Threshold: 1 << 20},
	}}})
	return e, err
}
