package monitor_test

import (
	"context"
	"fmt"
	"time"

	"github.com/sftkit/sft/monitor"
	"github.com/sftkit/sft/policy"
	rt "github.com/sftkit/sft/resource/resourcetest"
)

// A group with a virtual IP and an application that depends on it: the
// monitor brings the IP online first, then the application, and takes them
// offline in reverse.
func Example() {
	m := monitor.New(monitor.Config{})
	ip, app := rt.NewFake("vip"), rt.NewFake("app")
	err := m.AddGroup(monitor.GroupSpec{
		Name: "web",
		Resources: []monitor.ResourceSpec{
			{Name: "app", Type: "genericapp", Resource: app, DependsOn: []string{"vip"},
				Restart: policy.Restart{Threshold: 3, Period: 15 * time.Minute}},
			{Name: "vip", Type: "ipaddress", Resource: ip},
		},
	})
	if err != nil {
		panic(err)
	}
	if err := m.Online(context.Background(), "web"); err != nil {
		panic(err)
	}
	st, _ := m.GroupStatus("web")
	fmt.Println(st.Name, st.State)
	for _, r := range st.Resources {
		fmt.Println(" ", r.Name, r.State)
	}
	if err := m.Close(context.Background()); err != nil {
		panic(err)
	}
	fmt.Println("ip up after close:", ip.Up())
	// Output:
	// web Online
	//   app Online
	//   vip Online
	// ip up after close: false
}

// Subscribing to events: a slow subscriber never blocks the monitor.
func ExampleMonitor_Subscribe() {
	m := monitor.New(monitor.Config{})
	sub := m.Subscribe(64)
	_ = m.AddGroup(monitor.GroupSpec{Name: "g", Resources: []monitor.ResourceSpec{{Name: "a", Resource: rt.NewFake("a")}}})
	_ = m.Online(context.Background(), "g")
	_ = m.Close(context.Background())
	for e := range sub.C() {
		if e.Kind == monitor.EventGroupStateChanged {
			fmt.Println(e.From, "->", e.To)
		}
	}
	// Output:
	// Offline -> OnlinePending
	// OnlinePending -> Online
	// Online -> OfflinePending
	// OfflinePending -> Offline
}
