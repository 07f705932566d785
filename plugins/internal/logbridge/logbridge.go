// Package logbridge joins log/slog to go-plugin's hclog on both sides of the
// plugin boundary.
//
// Plugin side: NewPluginHandler writes hclog JSON lines (@level, @message,
// @timestamp in the exact layout go-plugin parses) so that the host re-emits
// each line at its level. Host side: HCLog adapts a *slog.Logger to the
// hclog.Logger go-plugin wants.
package logbridge

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"strings"
	"sync"

	"github.com/hashicorp/go-hclog"
)

// timestampLayout is the layout go-plugin's parseJSON accepts for @timestamp;
// any other layout makes it log the whole line at debug level.
const timestampLayout = "2006-01-02T15:04:05.000000Z07:00"

// NewPluginHandler returns a slog handler writing hclog-compatible JSON lines
// to w (the plugin's stderr, captured before plugin.Serve replaces it).
func NewPluginHandler(w io.Writer, level slog.Leveler) slog.Handler {
	return slog.NewJSONHandler(w, &slog.HandlerOptions{
		Level: level,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) > 0 {
				return a
			}
			switch a.Key {
			case slog.TimeKey:
				return slog.String("@timestamp", a.Value.Time().Format(timestampLayout))
			case slog.LevelKey:
				return slog.String("@level", LevelName(a.Value.Any().(slog.Level)))
			case slog.MessageKey:
				return slog.String("@message", a.Value.String())
			}
			return a
		},
	})
}

// LevelName maps a slog level to hclog's name for it.
func LevelName(l slog.Level) string {
	switch {
	case l < slog.LevelDebug:
		return "trace"
	case l < slog.LevelInfo:
		return "debug"
	case l < slog.LevelWarn:
		return "info"
	case l < slog.LevelError:
		return "warn"
	}
	return "error"
}

func toSlog(l hclog.Level) slog.Level {
	switch l {
	case hclog.Trace:
		return slog.LevelDebug - 4
	case hclog.Debug:
		return slog.LevelDebug
	case hclog.Info, hclog.NoLevel:
		return slog.LevelInfo
	case hclog.Warn:
		return slog.LevelWarn
	}
	return slog.LevelError
}

// HCLog returns an hclog.Logger that forwards to l. Names become a "plugin"
// attribute ("host.myplugin"), arguments become slog attributes.
func HCLog(l *slog.Logger) hclog.Logger {
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	return &adapter{l: l}
}

type adapter struct {
	l       *slog.Logger
	name    string
	implied []any
}

var _ hclog.Logger = (*adapter)(nil)

func (a *adapter) Log(level hclog.Level, msg string, args ...any) {
	lv := toSlog(level)
	ctx := context.Background()
	if !a.l.Enabled(ctx, lv) {
		return
	}
	attrs := make([]any, 0, len(args)+len(a.implied)+2)
	if a.name != "" {
		attrs = append(attrs, slog.String("plugin", a.name))
	}
	attrs = append(attrs, a.implied...)
	attrs = append(attrs, fixArgs(args)...)
	a.l.Log(ctx, lv, msg, attrs...)
}

// fixArgs makes hclog's key/value list palatable to slog: keys must be
// strings, an odd trailing value gets a key.
func fixArgs(args []any) []any {
	out := make([]any, 0, len(args))
	for i := 0; i < len(args); i += 2 {
		if i+1 == len(args) {
			out = append(out, slog.Any("EXTRA_VALUE", args[i]))
			break
		}
		k, ok := args[i].(string)
		if !ok {
			k = fmt.Sprint(args[i])
		}
		out = append(out, slog.Any(k, args[i+1]))
	}
	return out
}

func (a *adapter) Trace(msg string, args ...any) { a.Log(hclog.Trace, msg, args...) }
func (a *adapter) Debug(msg string, args ...any) { a.Log(hclog.Debug, msg, args...) }
func (a *adapter) Info(msg string, args ...any)  { a.Log(hclog.Info, msg, args...) }
func (a *adapter) Warn(msg string, args ...any)  { a.Log(hclog.Warn, msg, args...) }
func (a *adapter) Error(msg string, args ...any) { a.Log(hclog.Error, msg, args...) }

func (a *adapter) enabled(l hclog.Level) bool { return a.l.Enabled(context.Background(), toSlog(l)) }
func (a *adapter) IsTrace() bool              { return a.enabled(hclog.Trace) }
func (a *adapter) IsDebug() bool              { return a.enabled(hclog.Debug) }
func (a *adapter) IsInfo() bool               { return a.enabled(hclog.Info) }
func (a *adapter) IsWarn() bool               { return a.enabled(hclog.Warn) }
func (a *adapter) IsError() bool              { return a.enabled(hclog.Error) }
func (a *adapter) ImpliedArgs() []any         { return a.implied }

func (a *adapter) With(args ...any) hclog.Logger {
	b := *a
	b.implied = append(append([]any(nil), a.implied...), fixArgs(args)...)
	return &b
}

func (a *adapter) Name() string { return a.name }

func (a *adapter) Named(name string) hclog.Logger {
	b := *a
	if b.name != "" {
		b.name += "." + name
	} else {
		b.name = name
	}
	return &b
}

func (a *adapter) ResetNamed(name string) hclog.Logger {
	b := *a
	b.name = name
	return &b
}

// SetLevel is ignored: the slog handler decides.
func (a *adapter) SetLevel(hclog.Level) {}

// GetLevel reports the most verbose level the slog handler accepts.
func (a *adapter) GetLevel() hclog.Level {
	for _, l := range []hclog.Level{hclog.Trace, hclog.Debug, hclog.Info, hclog.Warn} {
		if a.enabled(l) {
			return l
		}
	}
	return hclog.Error
}

func (a *adapter) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(a.StandardWriter(opts), "", 0)
}

func (a *adapter) StandardWriter(*hclog.StandardLoggerOptions) io.Writer {
	return writerFunc(func(p []byte) (int, error) {
		a.Info(strings.TrimRight(string(p), "\n"))
		return len(p), nil
	})
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// LineWriter returns a writer that logs each line written to it at level
// with attribute stream=stream (a plugin's stdout and stderr after Serve).
// A line longer than 64 KiB is logged in pieces.
func LineWriter(l *slog.Logger, level slog.Level, stream string) io.Writer {
	return &lineWriter{l: l, level: level, stream: stream}
}

type lineWriter struct {
	l      *slog.Logger
	level  slog.Level
	stream string
	mu     sync.Mutex
	buf    []byte
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			if len(w.buf) >= 64<<10 {
				w.emit(w.buf)
				w.buf = w.buf[:0]
			}
			return len(p), nil
		}
		w.emit(w.buf[:i])
		w.buf = w.buf[i+1:]
	}
}

func (w *lineWriter) emit(line []byte) {
	w.l.Log(context.Background(), w.level, string(bytes.TrimRight(line, "\r")), "stream", w.stream)
}
