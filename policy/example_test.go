package policy_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/sftkit/sft/policy"
	"github.com/sftkit/sft/resource"
)

// A resource fails once a minute. The default policy restarts it three
// times within 15 minutes, then fails the group over. Restarts older than
// the period are forgotten, so a failure much later restarts it again. A
// configuration error is never restarted.
func ExampleRestart_Decide() {
	var p policy.Restart // defaults: restart-then-failover, 3 in 15 min, 500 ms delay
	var restarts policy.History
	now := time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC)
	failed := errors.New("process exited with status 1")

	for range 4 {
		d := p.Decide(now, restarts, failed)
		fmt.Println(d)
		if d.Action == policy.ActionRestart {
			restarts = restarts.Add(now, p.WithDefaults().Period)
		}
		now = now.Add(time.Minute)
	}
	fmt.Println(p.Decide(now.Add(time.Hour), restarts, failed))
	fmt.Println(p.Decide(now, restarts, resource.ConfigError("path", "/bin/nope", "no such file")))
	// Output:
	// restart after 500ms: restart 1 of 3 within 15m0s
	// restart after 500ms: restart 2 of 3 within 15m0s
	// restart after 500ms: restart 3 of 3 within 15m0s
	// failover: restart threshold reached: 3 restarts within 15m0s: failing the group over
	// restart after 500ms: restart 1 of 3 within 15m0s
	// stay-failed: configuration error: not restarting anywhere until it is fixed
}

// A group prefers a, then b, and may run on a, b and c only (d is up but
// not a possible owner).
func ExampleOwners_Next() {
	o := policy.Owners{Preferred: []string{"a", "b"}, Possible: []string{"a", "b", "c"}}
	up := []string{"d", "c", "b", "a"}

	fmt.Println(o.Candidates(up))
	fmt.Println(o.Next("a", up, nil))
	fmt.Println(o.Next("c", up, nil))           // wraps around
	fmt.Println(o.Next("a", up, []string{"b"})) // b already failed it
	fmt.Println(o.Next("a", []string{"a", "d"}, nil))
	// Output:
	// [a b c]
	// failover to b: next owner after a by preference
	// failover to a: next owner after c by preference
	// failover to c: next owner after a by preference
	// stay-failed: no other possible owner is up (up: [a d], possible: [a b c])
}

// The group runs on b while its preferred node a is up again. With a
// nightly window it waits for 22:00 local time.
func ExampleFailback_Decide() {
	noon := time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC)
	night := policy.Failback{Mode: policy.FailbackWindow, WindowStart: 22, WindowEnd: 2}

	fmt.Println(policy.Failback{}.Decide(noon, "b", "a"))
	fmt.Println(policy.Failback{Mode: policy.FailbackImmediate}.Decide(noon, "b", "a"))
	fmt.Println(night.Decide(noon, "b", "a"))
	fmt.Println(night.Decide(noon.Add(11*time.Hour), "b", "a"))
	// Output:
	// none: failback is prevented: move the group back by hand
	// move to a: failback immediate: a is preferred and up
	// none after 10h0m0s: waiting for the failback window 22:00-02:00
	// move to a: failback window 22:00-02:00 is open
}

// Zero fields take the type's hints first (here a slow-starting service),
// then the defaults; the deadlock timeout is twice the final call timeout.
func ExampleResolveTiming() {
	show := func(t policy.Timing) {
		fmt.Printf("looks-alive %s, is-alive %s, call %s, pending %s, deadlock %s\n",
			t.LooksAliveInterval, t.IsAliveInterval, t.CallTimeout, t.PendingTimeout, t.DeadlockTimeout)
	}
	show(policy.ResolveTiming(policy.Timing{}))

	slowStart := resource.Timing{PendingTimeout: 5 * time.Minute, CallTimeout: 3 * time.Second}
	show(policy.ResolveTiming(policy.Timing{IsAliveInterval: 30 * time.Second}, slowStart))

	fmt.Println(policy.ValidateTiming(policy.Timing{CallTimeout: 5 * time.Second, DeadlockTimeout: 5 * time.Second}))
	// Output:
	// looks-alive 1s, is-alive 10s, call 2s, pending 1m0s, deadlock 4s
	// looks-alive 1s, is-alive 30s, call 3s, pending 5m0s, deadlock 6s
	// deadlock_timeout 5s: must be longer than call_timeout (5s)
}
