package config_test

import (
	"context"
	"fmt"

	"github.com/sftkit/sft/examples/host/config"
	"github.com/sftkit/sft/resource"
)

// Decoding errors (a bad duration here) stop Load before validation; each
// names its position, its path and the bad value.
func ExampleLoad() {
	reg, _ := resource.NewRegistry(fakeType{})
	_, err := config.Load(context.Background(), "host.yaml", []byte(`
groups:
  - name: web
    resources:
      - name: vip
        type: fake
        properties: {address: 10.0.0.1}
        restart: {delay: soon}
      - name: app
        type: fake
        depends_on: [db]
`), reg, "")
	fmt.Println(err)
	// Output:
	// host.yaml:8:26: groups[0].resources[0].restart.delay "soon": not a duration (want e.g. "500ms", "2s" or "1m30s")
}

// Validation reports every problem at once; properties are checked by the
// resource type and reported under the resource's path.
func ExampleConfig_Validate() {
	reg, _ := resource.NewRegistry(fakeType{})
	cfg, pos, err := config.Parse("host.yaml", []byte(`
api: {tcp: "127.0.0.1:7070"}
groups:
  - name: web
    resources:
      - {name: vip, type: fake, properties: {address: 10.0.0.1}}
      - {name: app, type: fake, depends_on: [db]}
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(cfg.Validate(context.Background(), "host.yaml", pos, reg, ""))
	// Output:
	// host.yaml:2:7: api.tcp "127.0.0.1:7070": needs api.token or api.token_file: the TCP API requires a bearer token
	// host.yaml:6:46: groups[0].resources[0].properties.address "10.0.0.1": not a CIDR prefix
	// host.yaml:7:46: groups[0].resources[1].depends_on[0] "db": no such resource in the group
}
