// Command layercheck enforces the import layers of DESIGN.md ("imports
// point down only") on the packages of this module:
//
//   - resource imports the standard library only (resource/... may also
//     import resource);
//   - policy imports the standard library and resource at most;
//   - monitor imports neither plugins, cluster nor examples;
//   - cluster does not import examples;
//   - nothing outside examples imports examples;
//   - a bundled type (plugins/genericapp, plugins/genericservice,
//     plugins/ipaddress, ...) does not import the plugin SDK (plugins,
//     plugins/bundled, plugins/plugintest, plugins/internal/...): only its
//     plugin glue may, that is plugins/bundled or a subpackage named
//     "plugin".
//
// Only non-test imports count. It reads the packages from `go list`:
//
//	go run ./internal/tools/layercheck          # checks ./...
//	go run ./internal/tools/layercheck ./monitor/...
//
// and exits 1 after listing every violation, 0 when there is none. .ci/run
// runs it.
package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
)

// Package is a package of the module and its non-test imports.
type Package struct {
	Path    string
	Imports []string
}

// Violation is one import that breaks a layer rule.
type Violation struct {
	Package, Import, Rule string
}

func (v Violation) String() string {
	return fmt.Sprintf("%s imports %s: %s", v.Package, v.Import, v.Rule)
}

// Check returns every violation among pkgs, whose paths are under module.
func Check(module string, pkgs []Package) []Violation {
	var out []Violation
	for _, p := range pkgs {
		rel, ok := relative(module, p.Path)
		if !ok {
			continue
		}
		for _, imp := range p.Imports {
			irel, inModule := relative(module, imp)
			if rule := broken(rel, irel, inModule, isStd(imp)); rule != "" {
				out = append(out, Violation{Package: p.Path, Import: imp, Rule: rule})
			}
		}
	}
	return out
}

// broken returns the rule that pkg importing imp breaks, or "". pkg and
// imp are relative to the module ("" is its root); inModule says whether
// imp is in the module, std whether it is in the standard library.
func broken(pkg, imp string, inModule, std bool) string {
	switch {
	case under(pkg, "resource"):
		if !std && !(inModule && under(imp, "resource")) {
			return "resource imports the standard library only"
		}
	case under(pkg, "policy"):
		if !std && !(inModule && imp == "resource") {
			return "policy imports the standard library and resource at most"
		}
	}
	if !inModule {
		return ""
	}
	switch {
	case under(imp, "examples") && !under(pkg, "examples"):
		return "nothing outside examples imports examples"
	case under(pkg, "monitor") && (under(imp, "plugins") || under(imp, "cluster")):
		return "monitor knows resources only through the resource contract: no plugins, no cluster"
	case bundledType(pkg) && sdk(imp):
		return "a bundled type imports resource and internal/..., not the plugin SDK: only its glue (plugins/bundled, or a subpackage named plugin) joins it to plugins"
	}
	return ""
}

// bundledType reports whether pkg is (in) a resource type under plugins/
// other than the SDK's own packages and the glue.
func bundledType(pkg string) bool {
	rest, ok := strings.CutPrefix(pkg, "plugins/")
	if !ok {
		return false
	}
	top, _, _ := strings.Cut(rest, "/")
	switch top {
	case "bundled", "plugintest", "internal":
		return false
	}
	return !strings.HasSuffix(pkg, "/plugin") && !strings.Contains(pkg, "/plugin/")
}

// sdk reports whether imp is part of the plugin SDK.
func sdk(imp string) bool {
	return imp == "plugins" || under(imp, "plugins/bundled") || under(imp, "plugins/plugintest") || under(imp, "plugins/internal")
}

// under reports whether path is dir or below it.
func under(path, dir string) bool {
	return path == dir || strings.HasPrefix(path, dir+"/")
}

func relative(module, path string) (string, bool) {
	if path == module {
		return "", true
	}
	rel, ok := strings.CutPrefix(path, module+"/")
	return rel, ok
}

// isStd reports whether an import path is in the standard library (its
// first element has no dot), as go list's Standard field does.
func isStd(path string) bool {
	first, _, _ := strings.Cut(path, "/")
	return !strings.Contains(first, ".")
}

// parse reads go list lines "path import import ...".
func parse(r io.Reader) ([]Package, error) {
	var out []Package
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		out = append(out, Package{Path: f[0], Imports: f[1:]})
	}
	return out, sc.Err()
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		args = []string{"./..."}
	}
	mod, err := exec.Command("go", "list", "-m").Output()
	if err != nil {
		fmt.Fprintf(stderr, "layercheck: go list -m: %v\n", err)
		return 2
	}
	var errBuf bytes.Buffer
	cmd := exec.Command("go", append([]string{"list", "-f", "{{.ImportPath}}{{range .Imports}} {{.}}{{end}}"}, args...)...)
	cmd.Stderr = &errBuf
	list, err := cmd.Output()
	if err != nil {
		fmt.Fprintf(stderr, "layercheck: go list: %v\n%s", err, errBuf.Bytes())
		return 2
	}
	pkgs, err := parse(bytes.NewReader(list))
	if err != nil {
		fmt.Fprintf(stderr, "layercheck: %v\n", err)
		return 2
	}
	vs := Check(strings.TrimSpace(string(mod)), pkgs)
	for _, v := range vs {
		fmt.Fprintln(stdout, v)
	}
	if len(vs) > 0 {
		fmt.Fprintf(stdout, "layercheck: %d import(s) break the layers of DESIGN.md\n", len(vs))
		return 1
	}
	fmt.Fprintf(stdout, "layercheck: %d packages, layers respected\n", len(pkgs))
	return 0
}

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }
