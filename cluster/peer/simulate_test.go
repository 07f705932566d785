package peer

import (
	"strings"
	"testing"
	"time"
)

func TestParseScenarios(t *testing.T) {
	got, err := ParseScenarios("# what if\nduration=5s host-dead=1s seed=3\n\nduration=1m loss=40% # a bad link\nduration=2s service-dead=500ms loss=0.2 check-timeout=100ms\n")
	if err != nil {
		t.Fatal(err)
	}
	want := []Scenario{
		{Duration: 5 * time.Second, HostDeadAt: time.Second, Seed: 3},
		{Duration: time.Minute, Loss: 0.4},
		{Duration: 2 * time.Second, ServiceDeadAt: 500 * time.Millisecond, Loss: 0.2, CheckTimeout: 100 * time.Millisecond},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d scenarios, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("scenario %d: got %+v, want %+v", i, got[i], want[i])
		}
		// String reads back as the same scenario.
		back, err := ParseScenario(got[i].String())
		if err != nil || back != got[i] {
			t.Errorf("scenario %d: %q reads back as %+v, %v", i, got[i].String(), back, err)
		}
	}
	if d, err := ParseScenarios(DefaultScenarios); err != nil || len(d) != 4 {
		t.Fatalf("DefaultScenarios: %d, %v", len(d), err)
	}
}

func TestParseScenarioErrors(t *testing.T) {
	_, err := ParseScenarios("duration=5s\nloss=0.4\nduration=1s loss=1\nduration=1s when=now\nduration=1s host-dead\nduration=2h\nduration=1s seed=-1\n")
	if err == nil {
		t.Fatal("no error")
	}
	for _, w := range []string{
		"line 2: duration 0s: want above 0",
		`line 3: loss "1": want 0 to below 1`,
		`line 4: "when": unknown key`,
		`line 5: "host-dead": want KEY=VALUE`,
		"line 6: duration 2h0m0s",
		`line 7: seed "-1"`,
	} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q lacks %q", err, w)
		}
	}
	if strings.Contains(err.Error(), "line 1") {
		t.Errorf("line 1 is good: %v", err)
	}
}
