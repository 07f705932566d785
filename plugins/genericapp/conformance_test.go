package genericapp

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/sftkit/sft/internal/proc"
	"github.com/sftkit/sft/plugins/plugintest"
	"github.com/sftkit/sft/resource"
	"github.com/sftkit/sft/resource/resourcetest"
)

// TestSuite runs the resource contract suite against real instances
// running a real program, in-process and through the gRPC shims (package
// plugins/bundled runs it in a plugin process). The program writes its pid
// to files; Up looks for any process group it started (a zombie counts).
// A readiness command that fails while a "hang" file exists makes Online
// hang.
func TestSuite(t *testing.T) {
	var mu sync.Mutex
	dirs := map[string]string{} // instance -> its directory
	dir := func(t *testing.T, name string) string {
		mu.Lock()
		defer mu.Unlock()
		if d, ok := dirs[name]; ok {
			return d
		}
		d := t.TempDir()
		dirs[name] = d
		return d
	}
	plugintest.Suite(t, New(), plugintest.Options{
		Options: resourcetest.Options{
			Properties: func(t *testing.T) resource.Properties {
				d := dir(t, t.Name())
				return resource.Properties{
					"argv":       []any{"/bin/sh", "-c", "echo $$ >> " + filepath.Join(d, "pids") + "; echo $$ > " + filepath.Join(d, "pid") + "; exec sleep 1000"},
					"stop_grace": "5s",
					"readiness": map[string]any{
						// Ready once this start's program is running.
						"command":  []any{"/bin/sh", "-c", "kill -0 \"$(cat " + filepath.Join(d, "pid") + ")\" 2>/dev/null && test ! -e " + filepath.Join(d, "hang")},
						"interval": "10ms",
					},
				}
			},
			Up: func(t *testing.T, in resourcetest.Instance) bool {
				b, _ := os.ReadFile(filepath.Join(dir(t, in.Name), "pids"))
				for _, f := range strings.Fields(string(b)) {
					if pid, err := strconv.Atoi(f); err == nil && proc.GroupExists(pid) {
						return true
					}
				}
				return false
			},
			Hang: func(t *testing.T, in resourcetest.Instance) <-chan struct{} {
				if err := os.WriteFile(filepath.Join(dir(t, in.Name), "hang"), nil, 0o600); err != nil {
					t.Fatal(err)
				}
				return nil
			},
			BadProperties: []resourcetest.BadProperties{
				{Name: "no argv", Properties: resource.Properties{"argv": []any{}}, Field: "argv"},
				{Name: "relative dir", Properties: resource.Properties{"argv": []any{"/bin/true"}, "dir": "tmp"}, Field: "dir"},
				{Name: "missing program", Properties: resource.Properties{"argv": []any{"/nonexistent/prog"}}, Field: "argv"},
				{Name: "bad env name", Properties: resource.Properties{"argv": []any{"/bin/true"}, "env": map[string]any{"A=B": "x"}}, Field: "env"},
				{Name: "negative stop_grace", Properties: resource.Properties{"argv": []any{"/bin/true"}, "stop_grace": "-1s"}, Field: "stop_grace"},
			},
		},
		Modes: []plugintest.Mode{plugintest.ModeInProcess, plugintest.ModeGRPC},
	})
}
