package state

import (
	"io"
	"sync"

	"github.com/hashicorp/raft"
)

// FSM is the state as a raft.FSM. Raft calls Apply, Snapshot and Restore
// from one goroutine; readers call View from any goroutine.
type FSM struct {
	mu sync.RWMutex
	s  *State
}

var _ raft.FSM = (*FSM)(nil)

// NewFSM returns an FSM over an empty state.
func NewFSM() *FSM { return &FSM{s: New()} }

// Result is what Apply returns to the proposer through
// raft.ApplyFuture.Response: the error (nil when applied) and the group's
// epoch after a SetOwner.
type Result struct {
	Err   error
	Epoch uint64
}

// Apply implements raft.FSM. An entry that does not decode or apply leaves
// the state as it was; the proposer sees why in the Result. Every node
// reaches the same verdict, since Apply depends only on the state and the
// entry.
func (f *FSM) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand {
		return Result{}
	}
	e, err := Decode(l.Data)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.s.Index = l.Index
	if err != nil {
		return Result{Err: err}
	}
	if err := f.s.Apply(e); err != nil {
		return Result{Err: err}
	}
	var r Result
	if c, ok := e.Cmd.(SetOwner); ok {
		r.Epoch = f.s.Groups[c.Group].Epoch
	}
	return r
}

// View calls fn with the state under a read lock. fn must not keep it or
// change it.
func (f *FSM) View(fn func(*State)) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	fn(f.s)
}

// Snapshot implements raft.FSM: it saves the state now and writes it
// later, concurrently with further Applies.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	b, err := f.s.Snapshot()
	if err != nil {
		return nil, err
	}
	return fsmSnapshot(b), nil
}

// Restore implements raft.FSM: it replaces the whole state.
func (f *FSM) Restore(r io.ReadCloser) error {
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s, err := Restore(b)
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.s = s
	f.mu.Unlock()
	return nil
}

type fsmSnapshot []byte

func (s fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(s); err != nil {
		_ = sink.Cancel()
		return err
	}
	return sink.Close()
}

func (fsmSnapshot) Release() {}
