package resource_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/sftkit/sft/resource"
)

func TestState(t *testing.T) {
	t.Parallel()
	tests := []struct {
		s       resource.State
		name    string
		pending bool
	}{
		{resource.StateOffline, "Offline", false},
		{resource.StateOnlinePending, "OnlinePending", true},
		{resource.StateOnline, "Online", false},
		{resource.StateOfflinePending, "OfflinePending", true},
		{resource.StateFailed, "Failed", false},
		{resource.StateStopFailed, "StopFailed", false}, // issue 8 bug 5
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.s.String(); got != tt.name {
				t.Errorf("String() = %q, want %q", got, tt.name)
			}
			if got := tt.s.Pending(); got != tt.pending {
				t.Errorf("Pending() = %v", got)
			}
			got, err := resource.ParseState(tt.name)
			if err != nil || got != tt.s {
				t.Errorf("ParseState(%q) = %v, %v", tt.name, got, err)
			}
			b, err := json.Marshal(map[string]resource.State{"state": tt.s})
			if err != nil || string(b) != `{"state":"`+tt.name+`"}` {
				t.Errorf("JSON = %s, %v", b, err)
			}
			var back map[string]resource.State
			if err := json.Unmarshal(b, &back); err != nil || back["state"] != tt.s {
				t.Errorf("JSON round trip = %v, %v", back, err)
			}
		})
	}
	if var0 := resource.State(0); var0 != resource.StateOffline {
		t.Error("the zero State is not Offline")
	}
	if got := resource.State(42).String(); got != "State(42)" {
		t.Errorf("State(42).String() = %q", got)
	}
	if got := resource.State(-1).String(); got != "State(-1)" {
		t.Errorf("State(-1).String() = %q", got)
	}
	for _, bad := range []string{"online", "", "State(42)"} {
		if _, err := resource.ParseState(bad); err == nil || !strings.Contains(err.Error(), `"`+bad+`"`) {
			t.Errorf("ParseState(%q) error = %v, want one naming the input", bad, err)
		}
	}
	var s resource.State = resource.StateOnline
	if err := s.UnmarshalText([]byte("nope")); err == nil || s != resource.StateOnline {
		t.Errorf("UnmarshalText(nope) = %v and changed the state to %v", err, s)
	}
}
