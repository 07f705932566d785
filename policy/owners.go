package policy

import (
	"errors"
	"fmt"
	"slices"
)

// Owners says where a group may run. Possible owners are a hard limit (empty:
// every node); preferred owners are an order of preference among them.
type Owners struct {
	Preferred []string `json:"preferred,omitempty" yaml:"preferred,omitempty"`
	Possible  []string `json:"possible,omitempty" yaml:"possible,omitempty"`
}

// Validate checks o: names non-empty and unique, preferred owners among the
// possible ones.
func (o Owners) Validate() error {
	var errs []error
	check := func(field string, names []string) {
		seen := map[string]bool{}
		for i, n := range names {
			f := fmt.Sprintf("%s[%d]", field, i)
			if n == "" {
				errs = append(errs, errField(f, n, "empty node name"))
			} else if seen[n] {
				errs = append(errs, errField(f, n, "listed twice"))
			}
			seen[n] = true
		}
	}
	check("preferred", o.Preferred)
	check("possible", o.Possible)
	if len(o.Possible) > 0 {
		for i, n := range o.Preferred {
			if !slices.Contains(o.Possible, n) {
				errs = append(errs, errField(fmt.Sprintf("preferred[%d]", i), n, "is not a possible owner"))
			}
		}
	}
	return errors.Join(errs...)
}

// CanOwn reports whether node may host the group.
func (o Owners) CanOwn(node string) bool {
	return len(o.Possible) == 0 || slices.Contains(o.Possible, node)
}

// Candidates returns the nodes of up that may host the group, in order of
// preference: preferred owners first in their order, then the other
// possible owners in the order of up.
func (o Owners) Candidates(up []string) []string {
	var out []string
	for _, n := range o.Preferred {
		if slices.Contains(up, n) && o.CanOwn(n) {
			out = append(out, n)
		}
	}
	for _, n := range up {
		if o.CanOwn(n) && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// Best returns the most preferred node of up that may host the group, or ""
// when none may.
func (o Owners) Best(up []string) string {
	if c := o.Candidates(up); len(c) > 0 {
		return c[0]
	}
	return ""
}

// Next picks where a group that failed on current should go: the next
// candidate after current in order of preference (wrapping around), skipping
// current and the nodes in exclude. up is the list of nodes that are up.
// The decision is ActionFailover with Node set, or ActionStayFailed with the
// reason when no node qualifies.
func (o Owners) Next(current string, up, exclude []string) Decision {
	cands := o.Candidates(up)
	start := slices.Index(cands, current) + 1 // 0 when current is not a candidate
	for i := range cands {
		n := cands[(start+i)%len(cands)]
		if n == current || slices.Contains(exclude, n) {
			continue
		}
		return Decision{Action: ActionFailover, Node: n, Reason: fmt.Sprintf("next owner after %s by preference", current)}
	}
	return Decision{Action: ActionStayFailed, Reason: fmt.Sprintf("no other possible owner is up (up: %v, possible: %v)", up, o.possibleText())}
}

func (o Owners) possibleText() any {
	if len(o.Possible) == 0 {
		return "any"
	}
	return o.Possible
}
