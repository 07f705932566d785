package logbridge

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"
)

func TestPluginHandlerWritesWhatGoPluginParses(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(NewPluginHandler(&buf, slog.LevelDebug))
	l.Warn("disk almost full", "free", 3, slog.Group("g", "k", "v"))
	var m map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &m))
	require.Equal(t, "warn", m["@level"])
	require.Equal(t, "disk almost full", m["@message"])
	_, err := time.Parse(timestampLayout, m["@timestamp"].(string))
	require.NoError(t, err, "go-plugin parses exactly this layout")
	require.InDelta(t, 3, m["free"], 0)
	require.Equal(t, map[string]any{"k": "v"}, m["g"])
	require.Equal(t, hclog.Warn, hclog.LevelFromString(m["@level"].(string)))

	buf.Reset()
	slog.New(NewPluginHandler(&buf, slog.LevelInfo)).Debug("hidden")
	require.Empty(t, buf.String(), "below the level")
}

type rec struct{ recs []slog.Record }

func (r *rec) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelDebug }
func (r *rec) Handle(_ context.Context, x slog.Record) error {
	r.recs = append(r.recs, x.Clone())
	return nil
}
func (r *rec) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *rec) WithGroup(string) slog.Handler      { return r }

func TestHCLogAdapterKeepsLevelsAndNames(t *testing.T) {
	r := &rec{}
	h := HCLog(slog.New(r)).Named("host").Named("plugin-x").With("pid", 7)
	h.Warn("careful", "n", 1)
	h.Error("odd", 99) // odd argument count
	h.Trace("dropped: below debug")
	require.Equal(t, hclog.Debug, h.GetLevel())
	require.True(t, h.IsDebug())
	require.False(t, h.IsTrace())
	require.Len(t, r.recs, 2)
	require.Equal(t, slog.LevelWarn, r.recs[0].Level)
	attrs := map[string]any{}
	r.recs[0].Attrs(func(a slog.Attr) bool { attrs[a.Key] = a.Value.Any(); return true })
	require.Equal(t, map[string]any{"plugin": "host.plugin-x", "pid": int64(7), "n": int64(1)}, attrs)
	require.Equal(t, slog.LevelError, r.recs[1].Level)
}

func TestLineWriter(t *testing.T) {
	r := &rec{}
	w := LineWriter(slog.New(r), slog.LevelWarn, "stdout")
	_, _ = w.Write([]byte("hello wo"))
	_, _ = w.Write([]byte("rld\r\nsecond\nthi"))
	require.Len(t, r.recs, 2)
	require.Equal(t, "hello world", r.recs[0].Message)
	require.Equal(t, "second", r.recs[1].Message)
	require.Equal(t, slog.LevelWarn, r.recs[0].Level)
}
