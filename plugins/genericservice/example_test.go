package genericservice_test

import (
	"context"
	"fmt"

	"github.com/sftkit/sft/plugins/genericservice"
	"github.com/sftkit/sft/resource"
)

// A registry with the generic service type; properties are validated before
// anything talks to systemd.
func Example() {
	reg, err := resource.NewRegistry(genericservice.New())
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	fmt.Println(reg.Validate(ctx, "genericservice", resource.Properties{
		"service":   "nginx",
		"readiness": map[string]any{"http": "http://127.0.0.1:80/", "interval": "200ms"},
	}))
	fmt.Println(reg.Validate(ctx, "genericservice", resource.Properties{"service": "nginx.socket"}))
	fmt.Println(reg.Validate(ctx, "genericservice", resource.Properties{"service": "nginx", "manager": "upstart"}))
	// Output:
	// <nil>
	// service "nginx.socket": not a service unit (want a name ending in .service or no suffix)
	// manager "upstart": unknown service manager (known: systemd)
}
