package peer_test

import (
	"fmt"
	"time"

	"github.com/sftkit/sft/cluster/peer"
)

// Simulate is a dry run of a watcher's decisions: here the holder dies
// one second in, with a functional check every second whose failing
// attempt times out after 100 ms.
func ExampleSimulate() {
	r := peer.Simulate(peer.Detect{}, peer.Group{}, peer.Scenario{
		Duration: 2 * time.Second, HostDeadAt: time.Second,
		CheckEvery: time.Second, CheckTimeout: 100 * time.Millisecond,
	})
	for _, d := range r.Decisions {
		fmt.Println(d.At, d.Verdict, d.Misses)
	}
	// Output:
	// 0s alive 0
	// 1.01s suspect 1
	// 1.24s dead 24
}

// The p^k arithmetic behind the defaults.
func ExampleFalseRate() {
	d := peer.Detect{} // 10 ms x 24
	fmt.Printf("%.1e per minute at 40%% echo loss\n", peer.FalseRate(peer.DefaultInterval, peer.DefaultMisses, 0.4, time.Minute))
	fmt.Println("misses needed at 64% loss:", peer.MinMisses(peer.DefaultInterval, 0.64, 1))
	fmt.Println(d.Validate())
	fmt.Println(peer.Detect{Interval: 3 * time.Second, Misses: 3}.Validate() != nil)
	// Output:
	// 1.0e-06 per minute at 40% echo loss
	// misses needed at 64% loss: 47
	// <nil>
	// true
}
