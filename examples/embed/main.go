// Command embed is the smallest program that embeds sft: it runs one
// command as a generic application in a plugin process (this binary
// re-executed), restarts it when it dies, and stops it on Ctrl-C.
//
//	go run ./examples/embed -- sleep 1000
//	kill -9 <the sleep's pid>   # restarted after 500 ms
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/sftkit/sft/monitor"
	"github.com/sftkit/sft/plugins"
	"github.com/sftkit/sft/plugins/bundled"
	"github.com/sftkit/sft/resource"
)

func main() {
	bundled.Main() // first: serve the bundled types when re-executed as the plugin

	argv := os.Args[1:]
	if len(argv) > 0 && argv[0] == "--" {
		argv = argv[1:]
	}
	if len(argv) == 0 {
		argv = []string{"sleep", "1000"}
	}
	if err := run(argv); err != nil {
		fmt.Fprintln(os.Stderr, "embed:", err)
		os.Exit(1)
	}
}

func run(argv []string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))

	reg := &resource.Registry{}
	host, err := bundled.Launch(ctx, plugins.Config{Logger: log}, reg)
	if err != nil {
		return err
	}
	defer host.Close()

	args := make([]any, len(argv))
	for i, a := range argv {
		args[i] = a
	}
	app, err := reg.Open(ctx, "genericapp", resource.OpenRequest{
		Name:       "demo/app",
		Properties: resource.Properties{"argv": args, "stop_grace": "2s"},
	})
	if err != nil {
		return err
	}

	m := monitor.New(monitor.Config{Logger: log})
	defer m.Close(context.Background()) // offline in order, then close
	err = m.AddGroup(monitor.GroupSpec{Name: "demo", Resources: []monitor.ResourceSpec{
		{Name: "app", Type: "genericapp", Resource: app},
	}})
	if err != nil {
		return err
	}
	events := m.Subscribe(0)
	if err := m.Online(ctx, "demo"); err != nil {
		return err
	}
	fmt.Println("online; kill the app to see it restarted, Ctrl-C to stop")
	for {
		select {
		case <-ctx.Done():
			return nil
		case e := <-events.C():
			fmt.Println(e)
		}
	}
}
