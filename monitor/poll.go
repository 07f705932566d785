package monitor

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// poll runs the health checks of an online resource until ctx ends or a
// failure is found: LooksAlive at once and then every LooksAliveInterval,
// IsAlive every IsAliveInterval, IsAlive at once when LooksAlive fails, and
// a pushed failure ends it immediately.
func (g *group) poll(ctx context.Context, x *res, epoch int) {
	fail := func(err error, pushed bool) {
		if ctx.Err() == nil {
			g.send(groupEvent{kind: evPollFailed, x: x, epoch: epoch, err: err, pushed: pushed})
		}
	}
	// check returns false when polling must stop.
	check := func(deep bool) bool {
		if !deep {
			err := g.invoke(ctx, x, MethodLooksAlive, x.r.LooksAlive)
			if err == nil {
				return true
			}
			if ctx.Err() != nil {
				return false
			}
			if errors.Is(err, ErrDeadlocked) {
				fail(err, false)
				return false
			}
			g.m.log.Info("LooksAlive failed, confirming with IsAlive", "group", g.name, "resource", x.spec.Name, "err", err)
		}
		err := g.invoke(ctx, x, MethodIsAlive, x.r.IsAlive)
		if err == nil {
			return true
		}
		fail(err, false)
		return false
	}
	if !check(false) {
		return
	}
	looks := time.NewTicker(x.timing.LooksAliveInterval)
	defer looks.Stop()
	is := time.NewTicker(x.timing.IsAliveInterval)
	defer is.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case err := <-x.push:
			fail(fmt.Errorf("failure reported by the resource: %w", err), true)
			return
		case <-looks.C:
			if !check(false) {
				return
			}
		case <-is.C:
			if !check(true) {
				return
			}
		}
	}
}
