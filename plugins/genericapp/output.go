package genericapp

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/sftkit/sft/internal/fdwatch"
)

// maxLine is the longest line logged whole; a longer one is logged in
// pieces of this size.
const maxLine = 64 << 10

// outPipe is the read end of a "log" output: its lines go to the
// instance's logger. It is read from the goroutine of outputs, one for
// every output of the process, when data is there (no goroutine and no 64 KiB buffer per pipe: a
// thousand programs with both outputs logged used to park two thousand
// reader goroutines, issue 15); a partial line waits in partial.
type outPipe struct {
	fd     int
	stream string
	log    *slog.Logger
	done   func() // called once when the pipe is closed after start

	mu      sync.Mutex
	pid     int
	partial []byte
	closed  bool
	started bool     // watched (or read by the fallback goroutine): done is due
	f       *os.File // the fallback reader's file, if any
}

// newOutPipe makes a pipe: the read end (non-blocking, kept) and the
// write end for the child (blocking).
func newOutPipe(stream string, log *slog.Logger, done func()) (*outPipe, *os.File, error) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return nil, nil, err
	}
	if err := unix.SetNonblock(p[0], true); err != nil {
		_ = unix.Close(p[0])
		_ = unix.Close(p[1])
		return nil, nil, err
	}
	return &outPipe{fd: p[0], stream: stream, log: log, done: done}, os.NewFile(uintptr(p[1]), "pipe"), nil
}

// start begins reading, once the child runs as pid; false if the pipe is
// closed already (done will not be called).
func (p *outPipe) start(pid int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.pid, p.started = pid, true
	if outputs.Add(p.fd, fdwatch.Level, p.readable) != nil {
		go p.readBlocking() // no epoll here (never seen): a goroutine
	}
	return true
}

// outputs watches the read ends of every "log" output of the process: a
// set of its own, so that logging that blocks (a slow log sink) never
// delays the report of a program's exit (proc's set).
var outputs fdwatch.Set

var readBufs = sync.Pool{New: func() any { b := make([]byte, maxLine); return &b }}

// readable reads what is there (fdwatch callback: never blocks).
func (p *outPipe) readable() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	n, err := p.readOnce()
	if errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EINTR) {
		return
	}
	if n <= 0 { // EOF, or a read error: the end of the output
		p.closeLocked()
	}
}

// readBlocking is the fallback reader on a goroutine of its own.
func (p *outPipe) readBlocking() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.f = os.NewFile(uintptr(p.fd), "pipe") // non-blocking: the runtime poller waits
	f := p.f
	p.mu.Unlock()
	buf := make([]byte, 4096)
	for {
		n, err := f.Read(buf)
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return
		}
		if n > 0 {
			p.consume(buf[:n])
		}
		if err != nil {
			p.closeLocked()
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
	}
}

// consume logs every complete line of b and keeps the rest.
func (p *outPipe) consume(b []byte) {
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			p.partial = append(p.partial, b...)
			for len(p.partial) >= maxLine {
				p.emit(p.partial[:maxLine])
				p.partial = append(p.partial[:0], p.partial[maxLine:]...)
			}
			return
		}
		line := b[:i]
		if len(p.partial) > 0 {
			line = append(p.partial, line...)
		}
		for len(line) > maxLine {
			p.emit(line[:maxLine])
			line = line[maxLine:]
		}
		p.emit(bytes.TrimSuffix(line, []byte{'\r'}))
		p.partial = p.partial[:0]
		if cap(p.partial) > 4096 {
			p.partial = nil // a long line is over: do not keep its buffer
		}
		b = b[i+1:]
	}
}

func (p *outPipe) emit(line []byte) {
	p.log.Info(string(line), "stream", p.stream, "pid", p.pid)
}

// close stops reading and closes the read end. What is in the pipe already
// is read and logged first (a program that wrote its last line and was
// stopped a moment later, while the reader had not yet come round to it);
// what a process that left the group writes later is not.
func (p *outPipe) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	if p.f == nil { // the fallback reader's goroutine reads its own file
		for range 16 { // at most 1 MiB: a writer that keeps writing is cut off
			if n, _ := p.readOnce(); n <= 0 {
				break
			}
		}
	}
	p.closeLocked()
}

// readOnce reads what is there, up to maxLine, and logs its complete lines
// (p.mu held, p.fd non-blocking).
func (p *outPipe) readOnce() (int, error) {
	bp := readBufs.Get().(*[]byte)
	defer readBufs.Put(bp)
	n, err := unix.Read(p.fd, *bp)
	if n > 0 {
		p.consume((*bp)[:n])
	}
	return n, err
}

// closeLocked logs a last partial line, closes the read end and reports
// the end once.
func (p *outPipe) closeLocked() {
	if len(p.partial) > 0 {
		p.emit(p.partial)
		p.partial = nil
	}
	p.closed = true
	if p.f != nil {
		_ = p.f.Close() // the fallback reader's file owns the descriptor
	} else {
		outputs.Remove(p.fd)
		_ = unix.Close(p.fd)
	}
	if p.started && p.done != nil {
		p.done()
	}
}
