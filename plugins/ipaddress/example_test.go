package ipaddress_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/sftkit/sft/plugins/ipaddress"
	"github.com/sftkit/sft/resource"
)

// A bad property is a configuration error naming the property.
func ExampleNewType() {
	reg, _ := resource.NewRegistry(ipaddress.NewType())
	err := reg.Validate(context.Background(), "ipaddress", resource.Properties{
		"address":  "192.0.2.300/24",
		"announce": []any{"0s", "100ms", "1s"},
	})
	var e *resource.Error
	errors.As(err, &e)
	fmt.Println(resource.ClassOf(err), e.Field, e.Value)
	// Output: configuration address 192.0.2.300/24
}
