package plugins

import (
	"context"
	"fmt"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/sftkit/sft/plugins/internal/proto/sftresourcev1"
	"github.com/sftkit/sft/resource"
)

// gen is one plugin process.
type gen struct {
	line      *lineage
	rpc       pb.ResourcePluginClient
	conn      *grpc.ClientConn // go-plugin's connection (nil in-process); benchmarks
	killGroup func()           // kill the process group now (race-free: see pluginRunner); no-op in-process
	stop      func()           // graceful stop and reap
	pid       int
	info      *pb.InfoResponse
	remote    bool // no plugin-side polling: Config.RemoteChecks, or the plugin lacks the capability
	started   time.Time
	ctx       context.Context // canceled with the death error when the process is gone
	cancel    context.CancelCauseFunc
	evCancel  context.CancelFunc // ends the Events and Calls streams
	calls     *callStream        // nil: the plugin has none (capability "calls")
	// cleared is closed once die has started the kill of the cgroups of
	// the instances it hosted (those that reported one, proxy.killTree).
	cleared chan struct{}

	mu      sync.Mutex
	dead    bool
	closing bool
	members map[uint64]*proxy
}

// callStream returns the process's call stream while it carries calls;
// nil: each call is an RPC of its own.
func (g *gen) callStream() *callStream {
	if g.calls == nil || !g.calls.usable() {
		return nil
	}
	return g.calls
}

func (g *gen) isDead() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.dead
}

// deathErr is the error calls through g fail with once it is dead.
func (g *gen) deathErr() error {
	if err := context.Cause(g.ctx); err != nil {
		return err
	}
	return ErrPluginExited
}

// add routes events of instance id to p; false when g is already dead.
func (g *gen) add(id uint64, p *proxy) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.dead {
		return false
	}
	g.members[id] = p
	return true
}

func (g *gen) remove(id uint64) {
	g.mu.Lock()
	delete(g.members, id)
	g.mu.Unlock()
}

func (g *gen) readEvents(stream pb.ResourcePlugin_EventsClient) {
	for {
		ev, err := stream.Recv()
		if err != nil {
			g.mu.Lock()
			closing := g.closing
			g.mu.Unlock()
			if !closing {
				g.die(fmt.Errorf("%w (pid %d): %v", ErrPluginExited, g.pid, err), nil)
			}
			return
		}
		g.mu.Lock()
		p := g.members[ev.GetInstance()]
		g.mu.Unlock()
		if p != nil {
			p.onEvent(g, ev)
		}
	}
}

// heartbeat pings the plugin until g dies; misses pings in a row without an
// answer within timeout get it killed. It is what notices a frozen plugin
// while no call is in flight (the plugin-side polling needs no calls). One
// miss alone (a GC pause, a VM stall) is logged and forgiven by the next
// answer.
func (g *gen) heartbeat(every, timeout time.Duration, misses int) {
	t := time.NewTicker(every)
	defer t.Stop()
	missed := 0
	for {
		select {
		case <-g.ctx.Done():
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(g.ctx, timeout)
		_, err := g.rpc.Ping(ctx, &pb.Empty{})
		cancel()
		if err == nil || status.Code(err) == codes.Unimplemented {
			missed = 0 // Unimplemented: a plugin without Ping answered, so it lives
			continue
		}
		if g.ctx.Err() != nil {
			return
		}
		g.mu.Lock()
		closing := g.closing
		g.mu.Unlock()
		if closing {
			return
		}
		missed++
		if missed < misses {
			g.line.h.logger.Warn("plugin missed a heartbeat", "pid", g.pid, "missed", missed, "kill_after", misses, "error", err)
			continue
		}
		g.kill(fmt.Sprintf("heartbeat: %d pings in a row not answered within %s: %v", missed, timeout, err), nil)
		return
	}
}

// die marks g dead, fails every instance it hosted at once, and kills what
// is left of its process group. When culprit is set, the process was killed
// for that instance: the others' failures are collateral
// (resource.Collateral), so they do not count against their own restart
// thresholds.
func (g *gen) die(err error, culprit *proxy) {
	g.mu.Lock()
	if g.dead {
		g.mu.Unlock()
		return
	}
	g.dead = true
	closing := g.closing
	members := make([]*proxy, 0, len(g.members))
	for _, p := range g.members {
		members = append(members, p)
	}
	g.mu.Unlock()
	g.cancel(err)
	g.killGroup()
	if !closing {
		for _, p := range members {
			if culprit != nil && p != culprit {
				p.procDied(g, resource.Collateral(err))
			} else {
				p.procDied(g, err)
			}
		}
		for _, p := range members {
			p.killTree(g)
		}
		close(g.cleared)
		g.line.h.logger.Error("plugin process exited", "pid", g.pid, "error", err, "instances", len(members))
		g.line.h.notify(ProcessEvent{Kind: ProcessExited, Pid: g.pid, Err: err})
		g.line.died(g)
	} else {
		close(g.cleared)
	}
	g.evCancel()
	g.line.h.bg.Go(g.stop) // reaps; the group is dead, so it does not block
}

// kill kills the process group at once (a deadlocked call, a frozen
// process) and fails the instances; culprit is the instance it is killed
// for, nil when the process as a whole is at fault.
func (g *gen) kill(reason string, culprit *proxy) {
	// die marks g dead with this reason before it kills the group, so the
	// broken connection that follows is not taken for the cause.
	g.die(fmt.Errorf("%w (pid %d): killed by the host: %s", ErrPluginExited, g.pid, reason), culprit)
}

// shutdown stops g gracefully within timeout, then kills its group.
func (g *gen) shutdown(timeout time.Duration) {
	g.mu.Lock()
	if g.dead {
		g.mu.Unlock()
		return
	}
	g.closing = true
	g.mu.Unlock()
	g.evCancel() // an open stream would hold up the plugin's graceful stop
	done := make(chan struct{})
	go func() {
		defer close(done)
		g.stop()
	}()
	t := time.NewTimer(timeout)
	select {
	case <-done:
		t.Stop()
	case <-t.C:
		g.line.h.logger.Warn("plugin did not stop in time, killing its process group", "pid", g.pid, "timeout", timeout)
	}
	g.killGroup()
	<-done
	g.die(errPoolClosed, nil)
}
