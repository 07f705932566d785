package fdwatch

import (
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func pipe(t *testing.T) (r, w int) {
	t.Helper()
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	return p[0], p[1]
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// Level: called while data is unread, and for each write once read;
// oneshot: once, and removed before the call; Remove stops the calls;
// a reused descriptor number never reaches the old callback; the
// goroutine ends with the last descriptor.
func TestWatch(t *testing.T) {
	var w Set
	r1, w1 := pipe(t)
	r2, w2 := pipe(t)
	defer unix.Close(w1)
	defer unix.Close(w2)
	var lines, once atomic.Int32
	buf := make([]byte, 16)
	if err := w.Add(r1, Level, func() {
		if n, _ := unix.Read(r1, buf); n > 0 {
			lines.Add(1)
		}
	}); err != nil {
		t.Fatal(err)
	}
	if err := w.Add(r1, Level, func() {}); err == nil {
		t.Fatal("a watched descriptor added twice")
	}
	if err := w.Add(r2, Oneshot, func() { once.Add(1) }); err != nil {
		t.Fatal(err)
	}
	if w.Watched() != 2 || !w.Running() {
		t.Fatalf("watched %d, running %v", w.Watched(), w.Running())
	}
	for i := range 3 {
		if _, err := unix.Write(w1, []byte("x")); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the level callback", func() bool { return lines.Load() == int32(i+1) })
	}
	if _, err := unix.Write(w2, []byte("xy")); err != nil { // never read
		t.Fatal(err)
	}
	eventually(t, "the oneshot callback", func() bool { return once.Load() == 1 })
	eventually(t, "the oneshot removal", func() bool { return w.Watched() == 1 })
	time.Sleep(20 * time.Millisecond)
	if once.Load() != 1 {
		t.Fatalf("oneshot called %d times", once.Load())
	}
	if w.Remove(r2) {
		t.Fatal("Remove of a fired oneshot found it watched")
	}

	// Remove, close, and a new pipe likely on the same number.
	if !w.Remove(r1) {
		t.Fatal("Remove did not find r1")
	}
	_ = unix.Close(r1)
	r3, w3 := pipe(t)
	defer unix.Close(w3)
	var third atomic.Int32
	if err := w.Add(r3, Level, func() {
		if n, _ := unix.Read(r3, buf); n > 0 {
			third.Add(1)
		}
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := unix.Write(w3, []byte("z")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the new descriptor's callback", func() bool { return third.Load() == 1 })
	if lines.Load() != 3 {
		t.Fatalf("the removed callback ran again: %d", lines.Load())
	}
	w.Remove(r3)
	_ = unix.Close(r3)
	_ = unix.Close(r2)
	eventually(t, "the goroutine to end", func() bool { return !w.Running() })
	if w.Watched() != 0 {
		t.Fatalf("watched %d", w.Watched())
	}
}

// Hang-up is readiness: a callback learns of the writer's close.
func TestHangUp(t *testing.T) {
	var set Set
	r, w := pipe(t)
	eof := make(chan struct{})
	buf := make([]byte, 8)
	if err := set.Add(r, Level, func() {
		if n, err := unix.Read(r, buf); n == 0 && err == nil {
			set.Remove(r)
			close(eof)
		}
	}); err != nil {
		t.Fatal(err)
	}
	_ = unix.Close(w)
	select {
	case <-eof:
	case <-time.After(10 * time.Second):
		t.Fatal("no callback at EOF")
	}
	_ = unix.Close(r)
	eventually(t, "the goroutine to end", func() bool { return !set.Running() })
}

// A Set whose callback blocks (a log sink that does not drain) delays no
// other Set's callbacks.
func TestSetsIndependent(t *testing.T) {
	var slow, fast Set
	r1, w1 := pipe(t)
	r2, w2 := pipe(t)
	block, blocked := make(chan struct{}), make(chan struct{})
	if err := slow.Add(r1, Oneshot, func() { close(blocked); <-block }); err != nil {
		t.Fatal(err)
	}
	fired := make(chan struct{})
	if err := fast.Add(r2, Oneshot, func() { close(fired) }); err != nil {
		t.Fatal(err)
	}
	_, _ = unix.Write(w1, []byte("x"))
	<-blocked
	_, _ = unix.Write(w2, []byte("x"))
	select {
	case <-fired:
	case <-time.After(10 * time.Second):
		t.Fatal("a blocked callback of another set held this one up")
	}
	close(block)
	for _, fd := range []int{r1, w1, r2, w2} {
		_ = unix.Close(fd)
	}
	eventually(t, "both goroutines to end", func() bool { return !slow.Running() && !fast.Running() })
}
