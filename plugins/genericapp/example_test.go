package genericapp_test

import (
	"context"
	"fmt"

	"github.com/sftkit/sft/plugins/genericapp"
	"github.com/sftkit/sft/resource"
)

func Example() {
	ctx := context.Background()
	reg, _ := resource.NewRegistry(genericapp.New())
	r, err := reg.Open(ctx, "genericapp", resource.OpenRequest{
		Name: "web/app",
		Properties: resource.Properties{
			"argv":       []any{"/bin/sleep", "1000"},
			"stop_grace": "2s",
		},
	})
	if err != nil {
		panic(err)
	}
	defer r.(resource.Closer).Close()
	fmt.Println("online:", r.Online(ctx))
	fmt.Println("looks alive:", r.LooksAlive(ctx))
	fmt.Println("offline:", r.Offline(ctx))
	fmt.Println("after Offline:", r.LooksAlive(ctx))

	err = reg.Validate(ctx, "genericapp", resource.Properties{"argv": []any{"/no/such/app"}})
	fmt.Println(err)
	// Output:
	// online: <nil>
	// looks alive: <nil>
	// offline: <nil>
	// after Offline: genericapp web/app: not running
	// argv "/no/such/app": no such file or directory
}
