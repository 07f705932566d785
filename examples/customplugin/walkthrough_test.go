// Package customplugin_test runs the README's walkthrough: every file and
// command on the page, in a fresh module outside this one.
package customplugin_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// snippet is one fenced block of a markdown page and what its annotation
// (the HTML comment before it) says to do with it.
type snippet struct {
	line   int
	lang   string
	action string // "file", "run" or "setup"
	arg    string // the file's path for "file"
	body   string
}

var annotationRE = regexp.MustCompile(`^<!-- (file|run|setup)(?::\s*(.*?))?\s*-->$`)

// snippets extracts the fenced blocks of a markdown file; a block without an
// annotation is an error, so no snippet escapes the test.
func snippets(t *testing.T, path string) []snippet {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []snippet
	var pending *snippet
	var cur *snippet
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case cur != nil && line == "```":
			out = append(out, *cur)
			cur = nil
		case cur != nil:
			cur.body += line + "\n"
		case strings.HasPrefix(line, "```"):
			if pending == nil {
				t.Fatalf("%s:%d: a code block without a <!-- file: PATH -->, <!-- run --> or <!-- setup: why --> annotation: the walkthrough test would not check it", path, n)
			}
			cur = pending
			cur.line, cur.lang = n, strings.TrimPrefix(line, "```")
			pending = nil
		case annotationRE.MatchString(line):
			m := annotationRE.FindStringSubmatch(line)
			pending = &snippet{action: m[1], arg: m[2]}
		case strings.TrimSpace(line) != "" && pending != nil:
			t.Fatalf("%s:%d: an annotation not followed by a code block", path, n)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestReadmeSnippetsAnnotated: every code block of the pages about writing
// a plugin is checked by TestWalkthrough (or says why not).
func TestReadmeSnippetsAnnotated(t *testing.T) {
	for _, page := range []string{"README.md", "../../plugins/README.md"} {
		for _, s := range snippets(t, page) {
			if s.action == "setup" && s.arg == "" {
				t.Errorf("%s:%d: a setup block must say why the test does not run it", page, s.line)
			}
		}
	}
}

// TestWalkthrough follows README.md from an empty module to the stock
// example host running the plugin from its config: it writes each file
// into a fresh module (with a replace directive to this checkout instead
// of the setup block's go get), builds the stock host as `host`, and runs
// each command block with bash. Paths the page uses are mapped into the
// test's directory: /opt/sft-plugins and /tmp/marker-demo, sudo dropped;
// the pin in host.yaml is filled in once the plugin is installed.
func TestWalkthrough(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a module and the host, and runs the suite: not in -short")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	mod, bin, opt, demo := filepath.Join(tmp, "marker"), filepath.Join(tmp, "bin"), filepath.Join(tmp, "opt"), filepath.Join(tmp, "demo")
	for _, d := range []string{mod, bin, demo} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	mapPaths := strings.NewReplacer("/opt/sft-plugins", opt, "/tmp/marker-demo", demo, "sudo ", "")

	gomod := fmt.Sprintf("module example.com/marker\n\ngo 1.26\n\nrequire github.com/sftkit/sft v0.0.0\n\nreplace github.com/sftkit/sft => %s\n", root)
	write(t, filepath.Join(mod, "go.mod"), gomod)
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(mod, "go.sum"), string(sum))

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	env := append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "GOFLAGS=-mod=mod", "GOPROXY=off", "GOSUMDB=off")
	build := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(bin, "host"), "./examples/host")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the stock host: %v\n%s", err, out)
	}

	var outputs []string
	for _, s := range snippets(t, "README.md") {
		switch s.action {
		case "setup":
			continue
		case "file":
			write(t, filepath.Join(mod, s.arg), mapPaths.Replace(s.body))
			continue
		}
		pin(t, filepath.Join(mod, "host.yaml"), filepath.Join(opt, "marker"))
		out := runBlock(t, ctx, mod, env, mapPaths.Replace(s.body))
		t.Logf("README.md:%d:\n%s", s.line, out)
		outputs = append(outputs, out)
	}
	all := strings.Join(outputs, "\n")
	for _, want := range []string{
		"ok  \texample.com/marker",                      // the suite passed
		`properties.path "flag": want an absolute path`, // validated by the plugin
		"the marker is there",
		"and gone after the graceful stop",
		"online: <nil> alive: <nil>",
		"terminate: <nil>",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("the walkthrough's output lacks %q", want)
		}
	}
}

func write(t *testing.T, path, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// pin puts the installed plugin's SHA-256 in place of host.yaml's
// placeholder, once the plugin is installed (what the page asks the reader
// to do by hand).
func pin(t *testing.T, yaml, plugin string) {
	t.Helper()
	b, err := os.ReadFile(plugin)
	if err != nil {
		return // not installed yet
	}
	sum := sha256.Sum256(b)
	y, err := os.ReadFile(yaml)
	if err != nil {
		t.Fatal(err)
	}
	write(t, yaml, strings.Replace(string(y), strings.Repeat("0", 64), hex.EncodeToString(sum[:]), 1))
}

// runBlock runs a command block with bash -e in its own process group,
// killed when the test ends, and returns its output.
func runBlock(t *testing.T, ctx context.Context, dir string, env []string, script string) string {
	t.Helper()
	cmd := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", script)
	cmd.Dir, cmd.Env = dir, env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	out, err := cmd.CombinedOutput()
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // a background job left behind
	}
	if err != nil {
		t.Fatalf("%v\n%s\noutput:\n%s", err, script, out)
	}
	return string(out)
}
