package resource

import "fmt"

// State is where a resource or group is in its life cycle, as a failover
// cluster shows it.
type State int

const (
	// StateOffline: not running here; the initial state.
	StateOffline State = iota
	// StateOnlinePending: Online is in progress.
	StateOnlinePending
	// StateOnline: Online succeeded and the health checks pass.
	StateOnline
	// StateOfflinePending: Offline is in progress.
	StateOfflinePending
	// StateFailed: a call failed or timed out, or a failure was reported;
	// the resource was terminated and awaits the restart policy.
	StateFailed
	// StateStopFailed: Offline failed and Terminate failed too (and, for a
	// ProcessKiller, killing the hosting process and terminating again did
	// not help): the
	// resource may still be running here, holding its address or lock.
	// Pacemaker's failed stop, which it fences. It is never reported
	// Offline until a later Terminate (or fence) succeeds.
	StateStopFailed
)

var stateNames = [...]string{"Offline", "OnlinePending", "Online", "OfflinePending", "Failed", "StopFailed"}

func (s State) String() string {
	if s >= 0 && int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// ParseState is the inverse of State.String.
func ParseState(s string) (State, error) {
	for i, n := range stateNames {
		if n == s {
			return State(i), nil
		}
	}
	return 0, fmt.Errorf("resource: unknown state %q", s)
}

// Pending reports whether s is OnlinePending or OfflinePending.
func (s State) Pending() bool { return s == StateOnlinePending || s == StateOfflinePending }

// MarshalText implements encoding.TextMarshaler (JSON shows the name).
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *State) UnmarshalText(b []byte) error {
	v, err := ParseState(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}
