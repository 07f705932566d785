package resourcetest_test

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	rt "github.com/sftkit/sft/resource/resourcetest"
)

// brokenCases are fakes that break the contract, each with the rule the
// suite must name, once.
var brokenCases = map[string]struct {
	script func(f *rt.Fake)
	rule   string
}{
	"IgnoresTerminate": {func(f *rt.Fake) { f.IgnoreTerminate(true) }, rt.RuleDownAfterStop},
	"OfflineFails":     {func(f *rt.Fake) { f.SetError(rt.MethodOffline, errors.New("stuck")) }, rt.RuleOffline},
	"LooksAliveSlow":   {func(f *rt.Fake) { f.SetDelay(rt.MethodLooksAlive, 50*time.Millisecond) }, rt.RuleLooksAliveCheap},
}

const brokenEnv = "RESOURCETEST_BROKEN_CASE"

// TestSuiteBrokenChild runs the suite against one broken case, in the
// child process TestSuiteCatchesBrokenResources starts.
func TestSuiteBrokenChild(t *testing.T) {
	name := os.Getenv(brokenEnv)
	if name == "" {
		t.Skip("runs only as a child of TestSuiteCatchesBrokenResources")
	}
	typ := rt.NewType("fake")
	if name == "missing-hooks" {
		rt.Suite(t, typ, rt.Options{})
		return
	}
	typ.Script("", brokenCases[name].script)
	rt.Suite(t, typ, fakeOptions(typ))
}

// TestSuiteCatchesBrokenResources proves the suite can fail: each broken
// fake fails it, with exactly one failure naming the broken rule; only the
// suite's verdict decides (the child's exit status and output).
func TestSuiteCatchesBrokenResources(t *testing.T) {
	t.Parallel()
	for name, tc := range brokenCases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			out := runBrokenChild(t, name)
			if n := strings.Count(out, "broken rule: "+tc.rule+"\n"); n != 1 {
				t.Errorf("want one failure naming %q, got %d\n%s", tc.rule, n, out)
			}
			requireNoDuplicates(t, out)
		})
	}
}

func runBrokenChild(t *testing.T, name string) string {
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestSuiteBrokenChild$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), brokenEnv+"="+name)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		t.Fatalf("child: want a failing exit, got %v\n%s", err, out)
	}
	return string(out)
}

// TestSuiteRequiresHooks: a suite without Up, a hang or bad properties,
// and without the reasons, fails before running anything.
func TestSuiteRequiresHooks(t *testing.T) {
	t.Parallel()
	out := runBrokenChild(t, "missing-hooks")
	for _, want := range []string{"Options.Up is nil", "Options.Hang and HangProperties are nil", "Options.BadProperties is empty"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q\n%s", want, out)
		}
	}
	if strings.Contains(out, "OnlineThenAlive") {
		t.Errorf("the suite ran subtests without its hooks\n%s", out)
	}
}

// requireNoDuplicates fails if the child reported a rule more than once.
func requireNoDuplicates(t *testing.T, out string) {
	t.Helper()
	seen := map[string]bool{}
	for _, line := range strings.Split(out, "\n") {
		_, rule, ok := strings.Cut(line, "broken rule: ")
		if !ok {
			continue
		}
		if seen[rule] {
			t.Errorf("rule %q reported twice: one bug, one failure\n%s", rule, out)
		}
		seen[rule] = true
	}
}
