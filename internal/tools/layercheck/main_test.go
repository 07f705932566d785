package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const mod = "example.com/m"

func TestCheck(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		pkg     string
		imports []string
		rule    string // substring of the broken rule, "" for none
	}{
		{"resource stdlib", "resource", []string{"context", "encoding/json"}, ""},
		{"resource third party", "resource", []string{"github.com/x/y"}, "resource imports the standard library only"},
		{"resource imports policy", "resource", []string{mod + "/policy"}, "resource imports the standard library only"},
		{"resourcetest imports resource", "resource/resourcetest", []string{mod + "/resource", "testing"}, ""},
		{"policy imports resource", "policy", []string{mod + "/resource", "time"}, ""},
		{"policy imports monitor", "policy", []string{mod + "/monitor"}, "policy imports the standard library and resource at most"},
		{"policy imports resourcetest", "policy", []string{mod + "/resource/resourcetest"}, "policy imports"},
		{"monitor imports policy", "monitor", []string{mod + "/policy", mod + "/resource"}, ""},
		{"monitor imports plugins", "monitor", []string{mod + "/plugins"}, "monitor knows resources only"},
		{"monitor imports cluster", "monitor/sub", []string{mod + "/cluster"}, "monitor knows resources only"},
		{"monitor imports examples", "monitor", []string{mod + "/examples/host/config"}, "nothing outside examples"},
		{"cluster imports examples", "cluster", []string{mod + "/examples/host"}, "nothing outside examples"},
		{"examples import each other", "examples/host", []string{mod + "/examples/host/cli"}, ""},
		{"bundled type imports SDK", "plugins/genericapp", []string{mod + "/plugins"}, "a bundled type"},
		{"bundled type imports plugintest", "plugins/ipaddress", []string{mod + "/plugins/plugintest"}, "a bundled type"},
		{"bundled type imports internal", "plugins/genericapp", []string{mod + "/internal/proc", mod + "/resource"}, ""},
		{"glue imports SDK", "plugins/bundled", []string{mod + "/plugins", mod + "/plugins/genericapp"}, ""},
		{"plugin subpackage imports SDK", "plugins/genericapp/plugin", []string{mod + "/plugins"}, ""},
		{"SDK imports its internals", "plugins", []string{mod + "/plugins/internal/logbridge"}, ""},
		{"outside module", "other", []string{mod + "/examples/host"}, "nothing outside examples"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			vs := Check(mod, []Package{{Path: mod + "/" + tc.pkg, Imports: tc.imports}})
			if tc.rule == "" {
				if len(vs) != 0 {
					t.Fatalf("want no violation, got %v", vs)
				}
				return
			}
			if len(vs) != 1 || !strings.Contains(vs[0].Rule, tc.rule) {
				t.Fatalf("want one violation of %q, got %v", tc.rule, vs)
			}
		})
	}
}

// TestRunCatchesViolation runs the command on a throwaway module with a
// policy package importing monitor: it must fail and name the import. Then
// the same module without the bad import passes.
func TestRunCatchesViolation(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command")
	}
	dir := t.TempDir()
	write := func(name, text string) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module example.com/m\n\ngo 1.22\n")
	write("resource/r.go", "package resource\n")
	write("monitor/m.go", "package monitor\n\nimport _ \"example.com/m/resource\"\n")
	write("policy/p.go", "package policy\n\nimport _ \"example.com/m/monitor\"\n")
	t.Chdir(dir)
	t.Setenv("GOFLAGS", "-mod=mod")
	var out, errOut strings.Builder
	if code := run(nil, &out, &errOut); code != 1 {
		t.Fatalf("exit %d, want 1; stdout %q stderr %q", code, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), "example.com/m/policy imports example.com/m/monitor") {
		t.Fatalf("output does not name the bad import: %q", out.String())
	}
	write("policy/p.go", "package policy\n\nimport _ \"example.com/m/resource\"\n")
	out.Reset()
	if code := run(nil, &out, &errOut); code != 0 {
		t.Fatalf("exit %d after the fix, want 0; stdout %q stderr %q", code, out.String(), errOut.String())
	}
}
