package cluster

import (
	"context"
	"errors"
	"strings"

	"github.com/sftkit/sft/monitor"
)

// Local is what a clustered node needs from the monitor that runs its
// groups; *monitor.Monitor implements it (create it with
// monitor.Config.Managed set: where a failed group goes is the cluster's
// decision). A host may wrap it to log or count calls.
//
// The node calls Online only for a group this node owns at the current
// epoch while it holds its lease; Offline when it no longer owns it or
// drains it for a move; Fence when the lease runs out (that call must
// finish within Timing.Drop: the budget is part of the safety inequality
// in the package doc); Probe once, before the first Online after the node
// started, of a group it still owned (what a previous run left running
// is adopted, not started twice). At start, a group this node does not
// own (or not with a lease within the adoption grace) is fenced instead.
type Local interface {
	Online(ctx context.Context, group string) error
	Offline(ctx context.Context, group string) error
	Fence(ctx context.Context, group string) (monitor.FenceResult, error)
	Probe(ctx context.Context, group string) (monitor.ProbeResult, error)
	Watch() *monitor.Watch
}

var _ Local = (*monitor.Monitor)(nil)

// ErrHeldElsewhere marks an Online that refused to start because another
// host still holds what the group needs (its address answers from another
// MAC). Resources may wrap it; see IsHeldElsewhere.
var ErrHeldElsewhere = errors.New("cluster: held by another host")

// IsHeldElsewhere is the default Config.HeldElsewhere: errors.Is with
// ErrHeldElsewhere, or the ipaddress type's refusal ("is held by another
// host"), which crosses the plugin boundary as text.
func IsHeldElsewhere(err error) bool {
	return err != nil && (errors.Is(err, ErrHeldElsewhere) || strings.Contains(err.Error(), "is held by another host"))
}
