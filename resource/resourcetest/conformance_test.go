package resourcetest_test

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/sftkit/sft/resource"
	rt "github.com/sftkit/sft/resource/resourcetest"
)

// brokenCases are resources that break the contract, each with the
// conformance subtests that must catch it.
var brokenCases = map[string]struct {
	options  func() rt.Options
	wantFail []string
	wantPass []string
}{
	"IgnoresTerminate": {
		options: func() rt.Options {
			o := fakeOptions()
			o.Timeout = time.Second
			newFake := o.New
			o.New = func(t *testing.T) resource.Resource {
				r := newFake(t)
				r.(*rt.Fake).IgnoreTerminate(true)
				return r
			}
			return o
		},
		// Every subtest that brings it up fails, if only in the final
		// "left nothing behind" check.
		wantFail: []string{"OnlineThenAlive", "TerminateAfterOnline", "TerminateTwice", "TerminateWhileOnlineHangs"},
		wantPass: []string{"TerminateBeforeOnline", "OfflineAfterOnline"},
	},
	"OfflineFails": {
		options: func() rt.Options {
			o := fakeOptions()
			newFake := o.New
			o.New = func(t *testing.T) resource.Resource {
				r := newFake(t)
				r.(*rt.Fake).SetError(rt.MethodOffline, errors.New("stuck"))
				return r
			}
			return o
		},
		wantFail: []string{"OfflineAfterOnline", "OfflineIdempotent"},
		wantPass: []string{"OnlineThenAlive", "TerminateAfterOnline"},
	},
	"HangIgnoresTerminateAndCtx": {
		options: func() rt.Options {
			o := fakeOptions()
			o.Timeout = time.Second
			o.Hang = func(t *testing.T, r resource.Resource) <-chan struct{} {
				r.(*rt.Fake).Block(rt.MethodOnline, 1, rt.Deadlock)
				return nil
			}
			o.HangSettle = 10 * time.Millisecond
			return o
		},
		wantFail: []string{"TerminateWhileOnlineHangs", "OnlineDeadline"},
		wantPass: []string{"OnlineThenAlive", "TerminateAfterOnline"},
	},
}

const brokenEnv = "RESOURCETEST_BROKEN_CASE"

// TestConformanceBrokenChild runs the suite against one broken case, in the
// child process TestConformanceCatchesBrokenResources starts.
func TestConformanceBrokenChild(t *testing.T) {
	name := os.Getenv(brokenEnv)
	if name == "" {
		t.Skip("runs only as a child of TestConformanceCatchesBrokenResources")
	}
	rt.ConformanceWith(t, brokenCases[name].options())
}

// TestConformanceCatchesBrokenResources proves the suite can fail: each
// broken resource must fail the subtests that check what it breaks, and
// only the suite's verdict decides (the child's exit status and output).
func TestConformanceCatchesBrokenResources(t *testing.T) {
	t.Parallel()
	for name, tc := range brokenCases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestConformanceBrokenChild$", "-test.v", "-test.count=1")
			cmd.Env = append(os.Environ(), brokenEnv+"="+name)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) {
				t.Fatalf("child: want a failing exit, got %v\n%s", err, out)
			}
			for _, sub := range tc.wantFail {
				if !strings.Contains(string(out), "--- FAIL: TestConformanceBrokenChild/"+sub+" ") {
					t.Errorf("subtest %s did not fail\n%s", sub, out)
				}
			}
			for _, sub := range tc.wantPass {
				if !strings.Contains(string(out), "--- PASS: TestConformanceBrokenChild/"+sub+" ") {
					t.Errorf("subtest %s should pass\n%s", sub, out)
				}
			}
		})
	}
}
