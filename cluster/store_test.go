package cluster_test

import (
	"bufio"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"

	"github.com/sftkit/sft/cluster"
)

// The node keeps raft's log and stable store in raft-boltdb v2 (bbolt,
// fsync per commit). These tests check the contract raft relies on and
// that a SIGKILL at any moment leaves a store that opens with exactly the
// state of the last acknowledged write or of the one in flight.

func openStore(t *testing.T, path string) *raftboltdb.BoltStore {
	t.Helper()
	s, err := raftboltdb.New(raftboltdb.Options{Path: path})
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	return s
}

func mkLog(idx, gen uint64) *raft.Log {
	return &raft.Log{Index: idx, Term: gen, Type: raft.LogCommand,
		Data: fmt.Appendf(nil, "%d/%d", idx, gen), Extensions: []byte("x")}
}

func TestStoreContract(t *testing.T) {
	path := filepath.Join(t.TempDir(), "raft.db")
	s := openStore(t, path)
	if f, _ := s.FirstIndex(); f != 0 {
		t.Fatalf("empty FirstIndex = %d, want 0", f)
	}
	if l, _ := s.LastIndex(); l != 0 {
		t.Fatalf("empty LastIndex = %d, want 0", l)
	}
	var got raft.Log
	if err := s.GetLog(1, &got); !errors.Is(err, raft.ErrLogNotFound) {
		t.Fatalf("GetLog on empty store: %v, want ErrLogNotFound", err)
	}
	if _, err := s.Get([]byte("CurrentTerm")); err == nil || err.Error() != "not found" {
		t.Fatalf("Get of a missing key: %v, want \"not found\"", err)
	}
	if _, err := s.GetUint64([]byte("LastVoteTerm")); err == nil || err.Error() != "not found" {
		t.Fatalf("GetUint64 of a missing key: %v, want \"not found\"", err)
	}
	var logs []*raft.Log
	for i := uint64(1); i <= 10; i++ {
		logs = append(logs, mkLog(i, 1))
	}
	if err := s.StoreLogs(logs); err != nil {
		t.Fatal(err)
	}
	if err := s.StoreLog(mkLog(11, 2)); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteRange(1, 3); err != nil { // compaction after a snapshot
		t.Fatal(err)
	}
	if err := s.DeleteRange(9, 11); err != nil { // a conflicting suffix
		t.Fatal(err)
	}
	if err := s.Set([]byte("LastVoteCand"), []byte("n2")); err != nil {
		t.Fatal(err)
	}
	if err := s.SetUint64([]byte("CurrentTerm"), 7); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openStore(t, path) // reopen keeps the data
	defer s.Close()
	if f, _ := s.FirstIndex(); f != 4 {
		t.Errorf("FirstIndex after reopen = %d, want 4", f)
	}
	if l, _ := s.LastIndex(); l != 8 {
		t.Errorf("LastIndex after reopen = %d, want 8", l)
	}
	for _, i := range []uint64{1, 3, 9, 11} {
		if err := s.GetLog(i, &got); !errors.Is(err, raft.ErrLogNotFound) {
			t.Errorf("GetLog(%d) after delete: %v, want ErrLogNotFound", i, err)
		}
	}
	for i := uint64(4); i <= 8; i++ {
		if err := s.GetLog(i, &got); err != nil {
			t.Fatalf("GetLog(%d): %v", i, err)
		}
		want := mkLog(i, 1)
		if got.Index != i || got.Term != 1 || got.Type != raft.LogCommand ||
			string(got.Data) != string(want.Data) || string(got.Extensions) != "x" {
			t.Errorf("GetLog(%d) = %+v, want %+v", i, got, *want)
		}
	}
	if v, err := s.Get([]byte("LastVoteCand")); err != nil || string(v) != "n2" {
		t.Errorf("Get(LastVoteCand) = %q, %v; want n2", v, err)
	}
	if v, err := s.GetUint64([]byte("CurrentTerm")); err != nil || v != 7 {
		t.Errorf("GetUint64(CurrentTerm) = %d, %v; want 7", v, err)
	}
}

// storeModel is the log a crash child has written: index -> gen of the
// write that stored it, plus the stable "gen" key.
type storeModel struct {
	logs  map[uint64]uint64
	first uint64
	last  uint64
	gen   uint64
}

func (m storeModel) clone() storeModel {
	c := m
	c.logs = make(map[uint64]uint64, len(m.logs))
	for k, v := range m.logs {
		c.logs[k] = v
	}
	return c
}

// apply runs one operation line ("append FROM TO GEN", "delete FROM TO
// GEN") on the model.
func (m *storeModel) apply(op string) error {
	var kind string
	var from, to, gen uint64
	if _, err := fmt.Sscanf(op, "%s %d %d %d", &kind, &from, &to, &gen); err != nil {
		return fmt.Errorf("bad op %q: %v", op, err)
	}
	m.gen = gen
	switch kind {
	case "append":
		for i := from; i <= to; i++ {
			m.logs[i] = gen
		}
	case "delete":
		for i := from; i <= to; i++ {
			delete(m.logs, i)
		}
	default:
		return fmt.Errorf("bad op %q", op)
	}
	m.first, m.last = 0, 0
	for i := range m.logs {
		if m.first == 0 || i < m.first {
			m.first = i
		}
		if i > m.last {
			m.last = i
		}
	}
	return nil
}

// check reports how the store differs from the model ("" when equal).
func (m storeModel) check(s *raftboltdb.BoltStore) string {
	f, _ := s.FirstIndex()
	l, _ := s.LastIndex()
	if f != m.first || l != m.last {
		return fmt.Sprintf("range %d..%d, want %d..%d", f, l, m.first, m.last)
	}
	var got raft.Log
	for i := range m.logs {
		if err := s.GetLog(i, &got); err != nil {
			return fmt.Sprintf("GetLog(%d): %v", i, err)
		}
		if want := mkLog(i, m.logs[i]); string(got.Data) != string(want.Data) || got.Term != want.Term {
			return fmt.Sprintf("log %d = %q term %d, want %q term %d", i, got.Data, got.Term, want.Data, want.Term)
		}
	}
	if m.gen > 0 {
		if g, err := s.GetUint64([]byte("gen")); err != nil || g != m.gen {
			return fmt.Sprintf("stable gen = %d, %v; want %d", g, err, m.gen)
		}
	}
	return ""
}

// TestStoreCrashChild is the child of TestStoreCrash: it writes in a loop
// and prints each operation before ("op ...") and after ("ok") it.
func TestStoreCrashChild(t *testing.T) {
	path := os.Getenv("SFT_STORE_CRASH_CHILD")
	if path == "" {
		t.Skip("child of TestStoreCrash")
	}
	s, err := raftboltdb.New(raftboltdb.Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	first, _ := s.FirstIndex()
	last, _ := s.LastIndex()
	gen, _ := s.GetUint64([]byte("gen"))
	w := bufio.NewWriter(os.Stdout)
	say := func(line string) { fmt.Fprintln(w, line); w.Flush() }
	rng := rand.New(rand.NewPCG(uint64(os.Getpid()), gen))
	for {
		gen++
		var op string
		switch r := rng.IntN(10); {
		case r < 2 && last > first+8: // raft clears a conflicting suffix
			from := last - uint64(rng.IntN(8))
			op = fmt.Sprintf("delete %d %d %d", from, last, gen)
			say("op " + op)
			if err := s.SetUint64([]byte("gen"), gen); err != nil {
				t.Fatal(err)
			}
			if err := s.DeleteRange(from, last); err != nil {
				t.Fatal(err)
			}
			last = from - 1
		case r < 3 && last > first+64: // compaction after a snapshot
			to := first + uint64(rng.IntN(32))
			op = fmt.Sprintf("delete %d %d %d", first, to, gen)
			say("op " + op)
			if err := s.SetUint64([]byte("gen"), gen); err != nil {
				t.Fatal(err)
			}
			if err := s.DeleteRange(first, to); err != nil {
				t.Fatal(err)
			}
			first = to + 1
		default:
			n := 1 + rng.IntN(32)
			var logs []*raft.Log
			for i := last + 1; i <= last+uint64(n); i++ {
				logs = append(logs, mkLog(i, gen))
			}
			op = fmt.Sprintf("append %d %d %d", last+1, last+uint64(n), gen)
			say("op " + op)
			if err := s.SetUint64([]byte("gen"), gen); err != nil {
				t.Fatal(err)
			}
			if err := s.StoreLogs(logs); err != nil {
				t.Fatal(err)
			}
			if first == 0 {
				first = 1
			}
			last += uint64(n)
		}
		say("ok")
	}
}

// TestStoreCrash SIGKILLs a writing child at random moments; after each
// kill the store must open and hold exactly the acknowledged state or the
// state after the operation in flight (the stable key and the log are two
// commits: the key may be one operation ahead of the log).
func TestStoreCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("re-executes the test binary 20 times")
	}
	path := filepath.Join(t.TempDir(), "raft.db")
	acked := storeModel{logs: map[uint64]uint64{}}
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 20 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestStoreCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), "SFT_STORE_CRASH_CHILD="+path)
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		kill := 1 + rng.IntN(100) // acknowledged operations before the kill
		var pending string
		acks := 0
		for acks < kill && sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "op "):
				pending = strings.TrimPrefix(line, "op ")
			case line == "ok":
				if err := acked.apply(pending); err != nil {
					t.Fatal(err)
				}
				pending = ""
				acks++
			}
		}
		// Kill while the child may be in its next operation.
		_ = cmd.Process.Signal(syscall.SIGKILL)
		for sc.Scan() { // the lines written before the kill
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "op "):
				pending = strings.TrimPrefix(line, "op ")
			case line == "ok":
				if err := acked.apply(pending); err != nil {
					t.Fatal(err)
				}
				pending = ""
			}
		}
		_ = cmd.Wait()
		if acks < kill {
			t.Fatalf("round %d: child ended after %d operations (want %d)", round, acks, kill)
		}

		s := openStore(t, path)
		// States the store may hold: the acknowledged one, the one with
		// only the stable key of the pending operation written, the one
		// with the pending operation done.
		cands := []storeModel{acked}
		if pending != "" {
			keyOnly := acked.clone()
			var kind string
			var from, to, gen uint64
			fmt.Sscanf(pending, "%s %d %d %d", &kind, &from, &to, &gen)
			keyOnly.gen = gen
			done := acked.clone()
			if err := done.apply(pending); err != nil {
				t.Fatal(err)
			}
			cands = append(cands, keyOnly, done)
		}
		var diffs []string
		match := -1
		for i, c := range cands {
			d := c.check(s)
			if d == "" {
				match = i
				break
			}
			diffs = append(diffs, d)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if match < 0 {
			t.Fatalf("round %d: store after SIGKILL matches no allowed state (pending %q): %s",
				round, pending, strings.Join(diffs, "; "))
		}
		if match == 2 {
			if err := acked.apply(pending); err != nil {
				t.Fatal(err)
			}
		} else if match == 1 {
			acked = cands[1]
		}
		t.Logf("round %d: %d ops acknowledged, log %d..%d, state %s", round, acks, acked.first, acked.last,
			[]string{"acknowledged", "key of pending op", "pending op done"}[match])
	}
}

// A DataDir still holding raft-wal's raft/ directory (an older version) is
// refused with an error naming data_dir, not opened as an empty log.
func TestStartRefusesRaftWALDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "raft"), 0o700); err != nil {
		t.Fatal(err)
	}
	ip := "127.0.0.1"
	w := cluster.NodeSpec{Name: "w", Raft: freePort(t, "tcp", ip), Heartbeat: []string{freePort(t, "udp", ip)}, Witness: true}
	n, err := cluster.Start(cluster.Config{Name: "w", Nodes: []cluster.NodeSpec{w}, Key: testKey, DataDir: dir})
	if err == nil {
		_ = n.Close(t.Context())
		t.Fatal("Start with a raft-wal raft/ directory succeeded")
	}
	if !strings.Contains(err.Error(), "data_dir") || !strings.Contains(err.Error(), "raft-wal") {
		t.Fatalf("error %q does not name data_dir and raft-wal", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "raft.db")); !os.IsNotExist(err) {
		t.Fatalf("raft.db created next to the raft-wal log (stat: %v)", err)
	}
}
