package filelock_test

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sftkit/sft/examples/customplugin/filelock"
	"github.com/sftkit/sft/plugins/plugintest"
	"github.com/sftkit/sft/resource"
	"github.com/sftkit/sft/resource/resourcetest"
)

// lockedBySomeone reports whether another open file description holds the
// lock on path.
func lockedBySomeone(t *testing.T, path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return true
	}
	require.NoError(t, syscall.Flock(int(f.Fd()), syscall.LOCK_UN))
	return false
}

func props(t *testing.T) resource.Properties {
	return resource.Properties{"path": filepath.Join(t.TempDir(), "x.lock")}
}

func up(t *testing.T, r resource.Resource) bool {
	return lockedBySomeone(t, r.(*filelock.Lock).Path())
}

func TestConformance(t *testing.T) {
	resourcetest.ConformanceWith(t, resourcetest.Options{
		New: func(t *testing.T) resource.Resource {
			r, err := filelock.New().Open(t.Context(), resource.OpenRequest{Name: t.Name(), Properties: props(t)})
			require.NoError(t, err)
			return r
		},
		Up: up,
	})
}

func TestConformanceThroughGRPC(t *testing.T) {
	var paths = map[string]string{}
	plugintest.Conformance(t, filelock.New(), plugintest.Options{
		PropertiesFor: func(t *testing.T) resource.Properties {
			p := props(t)
			paths[t.Name()] = p["path"].(string)
			return p
		},
		Up: func(t *testing.T, _ resource.Resource) bool { return lockedBySomeone(t, paths[t.Name()]) },
	})
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		props resource.Properties
		field string
	}{
		{"missing path", resource.Properties{}, "path"},
		{"relative path", resource.Properties{"path": "x.lock"}, "path"},
		{"bad mode", resource.Properties{"path": "/tmp/x", "mode": 4096}, "mode"},
		{"unknown", resource.Properties{"path": "/tmp/x", "color": "red"}, "color"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := filelock.New().Validate(t.Context(), tc.props)
			require.ErrorIs(t, err, resource.ErrConfiguration)
			var re *resource.Error
			require.ErrorAs(t, err, &re)
			require.Equal(t, tc.field, re.Field)
		})
	}
}

func TestReplacedFileFailsIsAlive(t *testing.T) {
	p := props(t)
	r, err := filelock.New().Open(t.Context(), resource.OpenRequest{Name: "x", Properties: p})
	require.NoError(t, err)
	require.NoError(t, r.Online(t.Context()))
	require.NoError(t, r.IsAlive(t.Context()))
	require.NoError(t, os.Remove(p["path"].(string)))
	require.Error(t, r.IsAlive(t.Context()))
	require.NoError(t, r.Terminate(t.Context()))
}
