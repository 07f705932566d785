package monitor_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sftkit/sft/monitor"
	"github.com/sftkit/sft/policy"
	"github.com/sftkit/sft/resource"
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

// A Watch is the level-triggered view a cluster layer places groups by:
// Next returns the latest status of every group that changed, never
// losing the latest, however slowly it is read.
func ExampleMonitor_Watch() {
	m := monitor.New(monitor.Config{})
	_ = m.AddGroup(monitor.GroupSpec{Name: "web", Resources: []monitor.ResourceSpec{{Name: "vip", Resource: rt.NewFake("vip")}}})
	w := m.Watch()
	defer w.Close()
	st, _ := w.Next(context.Background()) // the current state of every group
	fmt.Println(st[0].Name, st[0].State)

	gen, _ := m.Do(context.Background(), "web", monitor.RequestOnline)
	_ = m.Offline(context.Background(), "web")
	_ = m.Online(context.Background(), "web")
	st, _ = w.Next(context.Background()) // coalesced: the latest only
	fmt.Println(st[0].Name, st[0].State, "answers a request after", gen, st[0].Generation > gen)
	_ = m.Close(context.Background())
	// Output:
	// web Offline
	// web Online answers a request after 1 true
}

// Fence takes a group down at once: every resource terminated in parallel,
// escalating to killing its hosting process, and reports whether
// everything is surely down.
func ExampleMonitor_Fence() {
	m := monitor.New(monitor.Config{})
	vip, app := rt.NewFake("vip"), rt.NewFake("app")
	_ = m.AddGroup(monitor.GroupSpec{Name: "web", Resources: []monitor.ResourceSpec{
		{Name: "vip", Resource: vip},
		{Name: "app", Resource: app, DependsOn: []string{"vip"}},
	}})
	_ = m.Online(context.Background(), "web")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := m.Fence(ctx, "web")
	fmt.Println("down:", res.Down, "err:", err)
	fmt.Println("offline calls:", vip.Calls(rt.MethodOffline), "terminated:", vip.Calls(rt.MethodTerminate) > 0, app.Calls(rt.MethodTerminate) > 0)
	_ = m.Close(context.Background())
	// Output:
	// down: true err: <nil>
	// offline calls: 0 terminated: true true
}

// A resource that cannot be stopped is StopFailed, never Offline: the
// caller tests for it with errors.Is and fences (or retries Offline).
func ExampleErrStopFailed() {
	m := monitor.New(monitor.Config{})
	vip := rt.NewFake("vip")
	// An in-process resource: no hosting process to kill.
	_ = m.AddGroup(monitor.GroupSpec{Name: "web", Resources: []monitor.ResourceSpec{{Name: "vip", Resource: rt.Hidden(vip, rt.CapProcessKiller)}}})
	_ = m.Online(context.Background(), "web")
	vip.SetError(rt.MethodOffline, errors.New("netlink: busy"))
	vip.SetError(rt.MethodTerminate, errors.New("netlink: busy"))
	err := m.Offline(context.Background(), "web")
	st, _ := m.GroupStatus("web")
	fmt.Println(errors.Is(err, monitor.ErrStopFailed), st.State)

	vip.SetError(rt.MethodTerminate, nil)
	res, _ := m.Fence(context.Background(), "web")
	st, _ = m.GroupStatus("web")
	fmt.Println(res.Down, st.State)
	_ = m.Close(context.Background())
	// Output:
	// true StopFailed
	// true Offline
}

// Probe adopts a group found running here (after this process restarted)
// instead of starting it twice.
func ExampleMonitor_Probe() {
	m := monitor.New(monitor.Config{})
	vip := rt.NewFake("vip")
	_ = vip.Online(context.Background()) // left running by the previous process
	_ = m.AddGroup(monitor.GroupSpec{Name: "web", Resources: []monitor.ResourceSpec{{Name: "vip", Resource: vip}}})
	res, _ := m.Probe(context.Background(), "web")
	fmt.Println("running:", res.Running, "adopted:", res.Adopted)
	st, _ := m.GroupStatus("web")
	fmt.Println(st.Target, "Online calls:", vip.Calls(rt.MethodOnline))
	_ = m.Close(context.Background())
	// Output:
	// running: [vip] adopted: true
	// Online Online calls: 1
}

// In managed mode a failed group is not retried here: it stays failed and
// stopped, with its failure class, until the cluster decides.
func ExampleConfig_managed() {
	m := monitor.New(monitor.Config{Managed: true})
	vip := rt.NewFake("vip")
	_ = m.AddGroup(monitor.GroupSpec{Name: "web", Resources: []monitor.ResourceSpec{{Name: "vip", Resource: vip}}})
	vip.SetError(rt.MethodOnline, resource.NodeLocal(errors.New("interface eth1 missing")))
	err := m.Online(context.Background(), "web")
	st, _ := m.GroupStatus("web")
	fmt.Println(errors.Is(err, monitor.ErrGroupFailed), errors.Is(err, resource.ErrNodeLocal))
	fmt.Println(st.FailedAndStopped(), st.Class, st.RetryAt.IsZero())
	_ = m.Close(context.Background())
	// Output:
	// true true
	// true node-local true
}

// UpdateGroup applies restart policy and timing changes live.
func ExampleMonitor_UpdateGroup() {
	m := monitor.New(monitor.Config{})
	vip := rt.NewFake("vip")
	spec := monitor.GroupSpec{Name: "web", Resources: []monitor.ResourceSpec{{Name: "vip", Resource: vip}}}
	_ = m.AddGroup(spec)
	_ = m.Online(context.Background(), "web")
	spec.Resources[0].Timing.IsAliveInterval = 5 * time.Second
	spec.Resources[0].Restart.Threshold = 5
	_, err := m.UpdateGroup(context.Background(), spec)
	st, _ := m.GroupStatus("web")
	fmt.Println(err, st.State, "Offline calls:", vip.Calls(rt.MethodOffline))
	spec.Resources = append(spec.Resources, monitor.ResourceSpec{Name: "app", Resource: rt.NewFake("app")})
	_, err = m.UpdateGroup(context.Background(), spec)
	fmt.Println(errors.Is(err, monitor.ErrResourceSetChanged))
	_ = m.Close(context.Background())
	// Output:
	// <nil> Online Offline calls: 0
	// true
}
