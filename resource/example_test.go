package resource_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/sftkit/sft/resource"
	"github.com/sftkit/sft/resource/resourcetest"
)

func ExampleConfigError() {
	err := resource.ConfigError("address", "10.0.0.300/24", "not a CIDR prefix")
	fmt.Println(err)
	fmt.Println(errors.Is(err, resource.ErrConfiguration), resource.ClassOf(err))
	// Output:
	// address "10.0.0.300/24": not a CIDR prefix
	// true configuration
}

func ExampleClassOf() {
	inUse := resource.NodeLocal(errors.New("10.0.0.5 answered ARP: address in use"))
	wrapped := fmt.Errorf("online web/vip: %w", inUse)
	fmt.Println(resource.ClassOf(wrapped), errors.Is(wrapped, resource.ErrNodeLocal))
	fmt.Println(resource.ClassOf(errors.New("connection refused")))
	// Output:
	// node-local true
	// transient
}

func ExampleRegistry() {
	ctx := context.Background()
	reg, err := resource.NewRegistry(resourcetest.NewType("fake"))
	if err != nil {
		panic(err)
	}
	r, err := reg.Open(ctx, "fake", resource.OpenRequest{Name: "web/app"})
	if err != nil {
		panic(err)
	}
	fmt.Println(r.Online(ctx), r.LooksAlive(ctx))
	_, err = reg.Open(ctx, "ipaddres", resource.OpenRequest{Name: "web/vip"})
	fmt.Println(err)
	// Output:
	// <nil> <nil>
	// type "ipaddres": unknown resource type (known: fake)
}

func ExampleProperties_Decode() {
	var cfg struct {
		Command string            `json:"command"`
		Grace   resource.Duration `json:"grace"`
		Retries int               `json:"retries"`
	}
	props := resource.Properties{"command": "/usr/bin/app", "grace": "1.5s", "retries": 3}
	fmt.Println(props.Decode(&cfg), cfg.Command, cfg.Grace.D(), cfg.Retries)

	fmt.Println(resource.Properties{"retries": "three"}.Decode(&cfg))
	fmt.Println(resource.Properties{"grace": 2}.Decode(&cfg), cfg.Grace.D())
	fmt.Println(resource.Properties{"grce": "1s"}.Decode(&cfg))
	// Output:
	// <nil> /usr/bin/app 1.5s 3
	// retries "three": want int, got string
	// <nil> 2s
	// grce: unknown property (known: command, grace, retries)
}

func ExampleReportProgress() {
	ctx := resource.WithProgress(context.Background(), func(msg string) {
		fmt.Println("progress:", msg) // the monitor extends the pending deadline here
	})
	online := func(ctx context.Context) error {
		for i := 1; i <= 2; i++ {
			// ... one long step of the start ...
			resource.ReportProgress(ctx, fmt.Sprintf("migrating schema %d/2", i))
		}
		return nil
	}
	fmt.Println(online(ctx))
	// Output:
	// progress: migrating schema 1/2
	// progress: migrating schema 2/2
	// <nil>
}

func ExampleState() {
	s := resource.StateOnlinePending
	fmt.Println(s, s.Pending())
	b, _ := s.MarshalText()
	fmt.Println(string(b))
	// Output:
	// OnlinePending true
	// OnlinePending
}
