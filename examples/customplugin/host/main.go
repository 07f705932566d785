// Command host launches the filelock plugin and takes a lock through it:
//
//	go build -o /tmp/filelock-plugin ./examples/customplugin/plugin
//	go run ./examples/customplugin/host -plugin /tmp/filelock-plugin -path /tmp/demo.lock
//
// It brings the lock online, checks it, tries a second instance on the same
// file (refused: the lock is held), takes the lock offline and exits.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"

	"github.com/sftkit/sft/plugins"
	"github.com/sftkit/sft/resource"
)

func main() {
	pluginPath := flag.String("plugin", "", "path of the plugin binary (required)")
	pin := flag.String("sha256", "", "expected SHA-256 of the plugin binary (hex); empty: no pin")
	path := flag.String("path", "/tmp/sft-demo.lock", "lock file")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Stdout, *pluginPath, *pin, *path); err != nil {
		fmt.Fprintln(os.Stderr, "host:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, out io.Writer, pluginPath, pin, path string) error {
	if pluginPath == "" {
		return fmt.Errorf("-plugin is required")
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))

	// 1. Launch the plugin; its types become ordinary resource.Types.
	host, err := plugins.Launch(ctx, plugins.Config{Path: pluginPath, SHA256: pin, Logger: logger})
	if err != nil {
		return err
	}
	defer host.Close()
	reg := &resource.Registry{}
	if err := host.Register(reg); err != nil {
		return err
	}
	fmt.Fprintln(out, "types:", reg.Names())

	// 2. Validation runs in the plugin; the error keeps its class.
	err = reg.Validate(ctx, "filelock", resource.Properties{"path": "relative.lock"})
	fmt.Fprintf(out, "validate relative path: %v (configuration error: %t)\n", err, resource.ClassOf(err) == resource.ClassConfiguration)

	// 3. Open an instance and drive it as the monitor would.
	props := resource.Properties{"path": path}
	lock, err := reg.Open(ctx, "filelock", resource.OpenRequest{Name: "demo/lock", Properties: props, Logger: logger})
	if err != nil {
		return err
	}
	defer lock.(resource.Closer).Close()
	if err := lock.Online(ctx); err != nil {
		return err
	}
	fmt.Fprintln(out, "online; LooksAlive:", lock.LooksAlive(ctx), "IsAlive:", lock.IsAlive(ctx))

	// 4. A second instance cannot take the same lock.
	second, err := reg.Open(ctx, "filelock", resource.OpenRequest{Name: "demo/second", Properties: props})
	if err != nil {
		return err
	}
	defer second.(resource.Closer).Close()
	err = second.Online(ctx)
	fmt.Fprintf(out, "second instance: %v (class %s)\n", err, resource.ClassOf(err))
	_ = second.Terminate(ctx)

	if err := lock.Offline(ctx); err != nil {
		return err
	}
	fmt.Fprintln(out, "offline")
	return nil
}
