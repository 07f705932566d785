package cluster

import (
	"context"

	"github.com/sftkit/sft/resource"
)

// Local is what a clustered node needs from the monitor that runs its
// groups. The cluster calls it; the node runtime will bind it to
// monitor.Monitor once the monitor's cluster API has landed (nothing here
// implements it yet).
type Local interface {
	// Online brings a group online on this node. The cluster calls it only
	// when the cluster state names this node the owner (with the epoch it
	// acts for) and while this node holds its lease.
	Online(ctx context.Context, group string, epoch uint64) error
	// Offline takes a group offline in order: a move, a failback, a drain.
	Offline(ctx context.Context, group string) error
	// Fence takes the groups down at once, without grace, because the
	// lease ran out. It must finish within Timing.Drop: that budget is part
	// of the safety inequality (see the package doc).
	Fence(ctx context.Context, groups []string) error
	// Failures reports groups that failed on this node and stopped trying
	// here (restart threshold reached, or a node-local or configuration
	// failure), with the class that decides the ban.
	Failures() <-chan Failure
}

// Failure is a group that failed on this node and stopped.
type Failure struct {
	Group string
	Class resource.Class
	Err   error
}
