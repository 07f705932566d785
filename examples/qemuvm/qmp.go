package qemuvm

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
)

// qmpEvent is one asynchronous QMP event.
type qmpEvent struct {
	Name string          `json:"event"`
	Data json.RawMessage `json:"data"`
}

// qmpReply is one line QEMU sends: a greeting, a reply or an event.
type qmpReply struct {
	QMP    json.RawMessage `json:"QMP"`
	Return json.RawMessage `json:"return"`
	Error  *struct {
		Class string `json:"class"`
		Desc  string `json:"desc"`
	} `json:"error"`
	Event string          `json:"event"`
	Data  json.RawMessage `json:"data"`
	ID    json.RawMessage `json:"id"`
}

// qmpConn is a minimal QMP client: JSON objects one per line, one command
// in flight at a time, events handed to onEvent from the reader goroutine.
type qmpConn struct {
	conn    net.Conn
	onEvent func(qmpEvent)
	onClose func(error)

	cmdMu   sync.Mutex // one command in flight
	replies chan qmpReply
	done    chan struct{} // closed when the reader ends
	err     error         // why the reader ended; read after done
}

// newQMP reads the greeting on conn, negotiates capabilities and starts the
// reader. It closes conn when ctx ends first or negotiation fails.
func newQMP(ctx context.Context, conn net.Conn, onEvent func(qmpEvent), onClose func(error)) (*qmpConn, error) {
	q := &qmpConn{conn: conn, onEvent: onEvent, onClose: onClose, replies: make(chan qmpReply, 1), done: make(chan struct{})}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	r := bufio.NewReader(conn)
	var greet qmpReply
	if err := readLine(r, &greet); err != nil {
		conn.Close()
		return nil, fmt.Errorf("qmp greeting: %w", ctxErr(ctx, err))
	}
	if greet.QMP == nil {
		conn.Close()
		return nil, fmt.Errorf("qmp: no greeting, got %+v", greet)
	}
	go q.read(r)
	if _, err := q.command(ctx, "qmp_capabilities", nil); err != nil {
		conn.Close()
		<-q.done
		return nil, fmt.Errorf("qmp_capabilities: %w", ctxErr(ctx, err))
	}
	return q, nil
}

func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	return err
}

func readLine(r *bufio.Reader, v *qmpReply) error {
	line, err := r.ReadBytes('\n')
	if err != nil {
		return err
	}
	return json.Unmarshal(line, v)
}

func (q *qmpConn) read(r *bufio.Reader) {
	var err error
	for {
		var m qmpReply
		if err = readLine(r, &m); err != nil {
			break
		}
		if m.Event != "" {
			q.onEvent(qmpEvent{Name: m.Event, Data: m.Data})
			continue
		}
		select {
		case q.replies <- m:
		default: // nobody asked (a command that gave up): drop it
		}
	}
	q.err = err
	close(q.done)
	if q.onClose != nil {
		q.onClose(err)
	}
}

// command runs one QMP command and returns its "return" value.
func (q *qmpConn) command(ctx context.Context, name string, args any) (json.RawMessage, error) {
	q.cmdMu.Lock()
	defer q.cmdMu.Unlock()
	msg := map[string]any{"execute": name}
	if args != nil {
		msg["arguments"] = args
	}
	b, err := json.Marshal(msg)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = q.conn.SetWriteDeadline(dl)
	}
	if _, err := q.conn.Write(append(b, '\n')); err != nil {
		// A partial line may have gone out: nothing after it would parse.
		q.conn.Close()
		if errors.Is(err, os.ErrDeadlineExceeded) {
			// The write deadline is ctx's: say so as ctx would (its own
			// timer may not have fired yet).
			err = fmt.Errorf("%w: %w", context.DeadlineExceeded, err)
		}
		return nil, fmt.Errorf("qmp %s: %w", name, err)
	}
	select {
	case m := <-q.replies:
		if m.Error != nil {
			return nil, fmt.Errorf("qmp %s: %s: %s", name, m.Error.Class, m.Error.Desc)
		}
		return m.Return, nil
	case <-q.done:
		return nil, fmt.Errorf("qmp %s: connection closed: %w", name, q.err)
	case <-ctx.Done():
		// Close the connection so that a late reply cannot be taken
		// for the next command's.
		q.conn.Close()
		return nil, fmt.Errorf("qmp %s: %w", name, ctx.Err())
	}
}

// close closes the connection and waits for the reader.
func (q *qmpConn) close() {
	q.conn.Close()
	<-q.done
}
