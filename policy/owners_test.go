package policy_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sftkit/sft/policy"
)

func TestOwnersValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		in     policy.Owners
		fields []string
		values []string // as printed: strings are quoted
	}{
		{name: "empty is valid (any node)", in: policy.Owners{}},
		{name: "preferred only", in: policy.Owners{Preferred: []string{"a", "b"}}},
		{name: "preferred among possible", in: policy.Owners{Preferred: []string{"b", "a"}, Possible: []string{"a", "b", "c"}}},
		{name: "empty preferred name", in: policy.Owners{Preferred: []string{"a", ""}},
			fields: []string{"preferred[1]"}, values: []string{`""`}},
		{name: "duplicate preferred name", in: policy.Owners{Preferred: []string{"a", "a"}},
			fields: []string{"preferred[1]"}, values: []string{`"a"`}},
		{name: "empty possible name", in: policy.Owners{Possible: []string{"a", "b", ""}},
			fields: []string{"possible[2]"}, values: []string{`""`}},
		{name: "duplicate possible name", in: policy.Owners{Possible: []string{"a", "b", "b"}},
			fields: []string{"possible[2]"}, values: []string{`"b"`}},
		{name: "preferred not a possible owner", in: policy.Owners{Preferred: []string{"a", "x"}, Possible: []string{"a", "b"}},
			fields: []string{"preferred[1]"}, values: []string{`"x"`}},
		{name: "several errors, each named", in: policy.Owners{Preferred: []string{"z", "a", "a"}, Possible: []string{"a", ""}},
			fields: []string{"preferred[2]", "possible[1]", "preferred[0]"}, values: []string{`"a"`, `""`, `"z"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			requireValidation(t, tc.in.Validate(), tc.fields, tc.values)
		})
	}
}

func TestOwnersCanOwn(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		owners policy.Owners
		node   string
		want   bool
	}{
		{name: "no possible list: anyone", owners: policy.Owners{}, node: "x", want: true},
		{name: "preferred alone is no limit", owners: policy.Owners{Preferred: []string{"a"}}, node: "x", want: true},
		{name: "possible owner", owners: policy.Owners{Possible: []string{"a", "b"}}, node: "b", want: true},
		{name: "not a possible owner", owners: policy.Owners{Possible: []string{"a", "b"}}, node: "c", want: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.want, tc.owners.CanOwn(tc.node))
		})
	}
}

func TestOwnersCandidatesAndBest(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		owners policy.Owners
		up     []string
		want   []string
	}{
		{name: "no owners: up order", owners: policy.Owners{}, up: []string{"c", "a", "b"}, want: []string{"c", "a", "b"}},
		{name: "preferred first in their order, then the rest in up order",
			owners: policy.Owners{Preferred: []string{"b", "a"}}, up: []string{"c", "a", "d", "b"},
			want: []string{"b", "a", "c", "d"}},
		{name: "preferred that are down are skipped",
			owners: policy.Owners{Preferred: []string{"b", "a"}}, up: []string{"c", "a"},
			want: []string{"a", "c"}},
		{name: "possible is a hard limit",
			owners: policy.Owners{Preferred: []string{"b"}, Possible: []string{"a", "b"}}, up: []string{"c", "a", "b", "d"},
			want: []string{"b", "a"}},
		{name: "preferred outside possible is not a candidate",
			owners: policy.Owners{Preferred: []string{"x", "a"}, Possible: []string{"a", "b"}}, up: []string{"x", "b", "a"},
			want: []string{"a", "b"}},
		{name: "nobody up", owners: policy.Owners{Preferred: []string{"a"}}, up: nil, want: nil},
		{name: "no possible owner up", owners: policy.Owners{Possible: []string{"a"}}, up: []string{"b", "c"}, want: nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := tc.owners.Candidates(tc.up)
			require.Equal(t, tc.want, got)
			if len(tc.want) == 0 {
				require.Empty(t, tc.owners.Best(tc.up))
			} else {
				require.Equal(t, tc.want[0], tc.owners.Best(tc.up))
			}
		})
	}
}

func TestOwnersNext(t *testing.T) {
	t.Parallel()
	abc := policy.Owners{Preferred: []string{"a", "b", "c"}}
	tests := []struct {
		name    string
		owners  policy.Owners
		current string
		up      []string
		exclude []string
		want    policy.Action
		node    string
		reason  string
	}{
		{name: "next preferred after current", owners: abc, current: "a", up: []string{"a", "b", "c"},
			want: policy.ActionFailover, node: "b", reason: "next owner after a by preference"},
		{name: "middle moves on", owners: abc, current: "b", up: []string{"a", "b", "c"},
			want: policy.ActionFailover, node: "c"},
		{name: "last wraps around to first", owners: abc, current: "c", up: []string{"a", "b", "c"},
			want: policy.ActionFailover, node: "a"},
		{name: "down preferred skipped", owners: abc, current: "a", up: []string{"a", "c"},
			want: policy.ActionFailover, node: "c"},
		{name: "current not up starts from most preferred", owners: abc, current: "b", up: []string{"a", "c"},
			want: policy.ActionFailover, node: "a"},
		{name: "current unknown starts from most preferred", owners: abc, current: "zz", up: []string{"c", "b"},
			want: policy.ActionFailover, node: "b"},
		{name: "excluded nodes skipped", owners: abc, current: "a", up: []string{"a", "b", "c"}, exclude: []string{"b"},
			want: policy.ActionFailover, node: "c"},
		{name: "exclusion forces wrap around", owners: abc, current: "b", up: []string{"a", "b", "c"}, exclude: []string{"c"},
			want: policy.ActionFailover, node: "a"},
		{name: "non-preferred up nodes come after preferred", owners: abc, current: "c", up: []string{"d", "a", "b", "c"}, exclude: []string{"a", "b"},
			want: policy.ActionFailover, node: "d"},
		{name: "possible owners limit the choice", owners: policy.Owners{Preferred: []string{"a"}, Possible: []string{"a", "c"}},
			current: "a", up: []string{"a", "b", "c"},
			want: policy.ActionFailover, node: "c"},
		{name: "current excluded too", owners: abc, current: "a", up: []string{"a", "b"}, exclude: []string{"a"},
			want: policy.ActionFailover, node: "b"},
		{name: "only current up: none left", owners: abc, current: "a", up: []string{"a"},
			want: policy.ActionStayFailed, reason: "no other possible owner is up (up: [a], possible: any)"},
		{name: "all others excluded: none left", owners: abc, current: "a", up: []string{"a", "b", "c"}, exclude: []string{"b", "c"},
			want: policy.ActionStayFailed, reason: "no other possible owner is up"},
		{name: "nobody up", owners: abc, current: "a", up: nil,
			want: policy.ActionStayFailed, reason: "up: []"},
		{name: "no possible owner up: reason lists them", owners: policy.Owners{Possible: []string{"a", "b"}}, current: "a", up: []string{"a", "c"},
			want: policy.ActionStayFailed, reason: "(up: [a c], possible: [a b])"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := tc.owners.Next(tc.current, tc.up, tc.exclude)
			require.Equal(t, tc.want, d.Action, "decision %v", d)
			require.Equal(t, tc.node, d.Node, "decision %v", d)
			require.Zero(t, d.Delay)
			require.Contains(t, d.Reason, tc.reason)
			require.NotEmpty(t, d.Reason)
		})
	}
}
