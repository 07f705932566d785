package detector_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sftkit/sft/cluster/detector"
)

var key = []byte("0123456789abcdef-test-key")

func TestWireRoundTrip(t *testing.T) {
	t.Parallel()
	for _, hb := range []detector.Heartbeat{
		{From: "a", To: "b", Incarnation: 1 << 60, Seq: 42, EchoIncarnation: 7, Echo: 41, Suspects: []string{"c", "d"}},
		{From: "node-with-a-long-name", To: "x"},
	} {
		b, err := detector.Marshal(hb, key)
		require.NoError(t, err)
		got, err := detector.Unmarshal(b, key)
		require.NoError(t, err)
		require.Equal(t, hb, got)
	}
}

func TestWireRefuses(t *testing.T) {
	t.Parallel()
	good, err := detector.Marshal(detector.Heartbeat{From: "a", To: "b", Seq: 1, Suspects: []string{"c"}}, key)
	require.NoError(t, err)
	flip := func(i int) []byte {
		b := append([]byte{}, good...)
		b[i] ^= 1
		return b
	}
	version := append([]byte{}, good...)
	version[4] = 9
	for _, tc := range []struct {
		name string
		in   []byte
		key  []byte
		want string
	}{
		{"wrong key", good, []byte("another-cluster-key!"), "wrong MAC"},
		{"tampered seq", flip(20), key, "wrong MAC"},
		{"tampered MAC", flip(len(good) - 1), key, "wrong MAC"},
		{"not ours", []byte("GET / HTTP/1.1\r\n\r\n" + strings.Repeat("x", 60)), key, "not a heartbeat"},
		{"too short", good[:20], key, "not a heartbeat"},
		{"newer version", version, key, "version 9 (this node speaks 1)"},
		{"truncated body, signed", detector.SignForTest(good[:len(good)-16-3], key), key, "malformed body"},
		{"trailing bytes, signed", detector.SignForTest(append(good[:len(good)-16:len(good)-16], 0), key), key, "malformed body"},
	} {
		_, err := detector.Unmarshal(tc.in, tc.key)
		require.ErrorIs(t, err, detector.ErrBadDatagram, tc.name)
		require.ErrorContains(t, err, tc.want, tc.name)
	}

	long := strings.Repeat("n", 256)
	_, err = detector.Marshal(detector.Heartbeat{From: long}, key)
	require.ErrorContains(t, err, "is 256 bytes (at most 255)")
	_, err = detector.Marshal(detector.Heartbeat{To: long}, key)
	require.ErrorContains(t, err, "at most 255")
	_, err = detector.Marshal(detector.Heartbeat{Suspects: []string{long}}, key)
	require.ErrorContains(t, err, "at most 255")
	_, err = detector.Marshal(detector.Heartbeat{Suspects: make([]string, 256)}, key)
	require.ErrorContains(t, err, "256 suspects")
}

// FuzzUnmarshal: any bytes (signed with the key, so the parser is reached)
// either decode to a heartbeat that encodes back to the same bytes, or are
// refused; nothing panics.
func FuzzUnmarshal(f *testing.F) {
	good, _ := detector.Marshal(detector.Heartbeat{From: "a", To: "b", Seq: 1, Suspects: []string{"c"}}, key)
	f.Add(good[:len(good)-16])
	f.Add([]byte("sfhb\x01"))
	f.Fuzz(func(t *testing.T, body []byte) {
		b := detector.SignForTest(body, key)
		hb, err := detector.Unmarshal(b, key)
		if err != nil {
			require.ErrorIs(t, err, detector.ErrBadDatagram)
			return
		}
		again, err := detector.Marshal(hb, key)
		require.NoError(t, err)
		require.Equal(t, b, again)
	})
}
