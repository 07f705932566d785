package genericapp

import (
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"
)

// A forced close (the drain timeout: a process that left the group holds
// the write end) still logs what is in the pipe already: the last lines a
// program wrote just before it was stopped are not lost because the reader
// had not come round to them.
func TestOutPipeCloseDrains(t *testing.T) {
	sink := &logSink{}
	closed := 0
	p, w, err := newOutPipe("stdout", slog.New(sink), func() { closed++ })
	require.NoError(t, err)
	defer w.Close() // held open: no EOF, as with an escaped process
	_, err = w.WriteString("first\nsecond\nlast, unterminated")
	require.NoError(t, err)
	p.started = true // as after start, without the watch: nothing read yet
	p.close()
	require.Equal(t, []string{
		"first stream=stdout pid=0", "second stream=stdout pid=0", "last, unterminated stream=stdout pid=0",
	}, sink.records())
	require.Equal(t, 1, closed, "the end is reported once")
	p.close()
	require.Equal(t, 1, closed)
}
