package resourcetest_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/sftkit/sft/resource"
	"github.com/sftkit/sft/resource/resourcetest"
)

// A Fake scripted to fail its first two Online calls with a node-local
// error, then to look dead.
func ExampleFake() {
	ctx := context.Background()
	f := resourcetest.NewFake("web/vip")
	f.FailNext(resourcetest.MethodOnline, 2, resource.NodeLocal(errors.New("address in use")))

	for range 3 {
		err := f.Online(ctx)
		fmt.Printf("Online: %v (class %v)\n", err, resource.ClassOf(err))
	}
	fmt.Println("LooksAlive:", f.LooksAlive(ctx))
	f.SetAlive(false)
	fmt.Println("LooksAlive:", f.LooksAlive(ctx))
	fmt.Println(f.Methods(), "up:", f.Up())
	// Output:
	// Online: address in use (class node-local)
	// Online: address in use (class node-local)
	// Online: <nil> (class transient)
	// LooksAlive: <nil>
	// LooksAlive: resourcetest: not alive
	// [Online Online Online LooksAlive LooksAlive] up: true
}

// A hung Online that Terminate ends, as the monitor does after the pending
// timeout.
func ExampleFake_Block() {
	ctx := context.Background()
	f := resourcetest.NewFake("app")
	f.Block(resourcetest.MethodOnline, 1, resourcetest.Cancelable)

	res := make(chan error)
	go func() { res <- f.Online(ctx) }()
	_ = f.WaitBlocked(ctx, resourcetest.MethodOnline)
	_ = f.Terminate(ctx)
	err := <-res
	fmt.Println(err)
	fmt.Println(errors.Is(err, resourcetest.ErrTerminated))
	// Output:
	// app: Online: resourcetest: terminated
	// true
}

// A Type in a registry, scripting one instance before it is opened.
func ExampleType() {
	ctx := context.Background()
	typ := resourcetest.NewType("fake")
	typ.Script("db", func(f *resourcetest.Fake) {
		f.SetError(resourcetest.MethodIsAlive, errors.New("replication lag"))
	})
	reg, _ := resource.NewRegistry(typ)

	r, _ := reg.Open(ctx, "fake", resource.OpenRequest{Name: "db"})
	_ = r.Online(ctx)
	fmt.Println("IsAlive:", r.IsAlive(ctx))
	fmt.Println("calls:", typ.Instance("db").Calls(resourcetest.MethodIsAlive))
	_, err := reg.Open(ctx, "fake", resource.OpenRequest{Name: "x", Properties: resource.Properties{"colour": "red"}})
	fmt.Println(err)
	// Output:
	// IsAlive: replication lag
	// calls: 1
	// colour: unknown property (known: error_class, online_failures)
}
