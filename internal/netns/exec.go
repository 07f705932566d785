package netns

import (
	"errors"
	"fmt"
	"runtime"

	vnetns "github.com/vishvananda/netns"
)

// Do runs fn on a dedicated, locked OS thread that has entered the network
// namespace at path, and returns fn's error. An empty path runs fn directly
// in the caller's namespace.
//
// Only work done on fn's own goroutine happens inside the namespace: a
// goroutine fn starts runs on another thread, in the process's namespace.
// Sockets fn creates keep belonging to the namespace after Do returns.
//
// If the thread cannot be switched back, it is left locked so that the Go
// runtime discards it when the goroutine exits; no other goroutine ever runs
// in the wrong namespace.
func Do(path string, fn func() error) error {
	if path == "" {
		return fn()
	}
	target, err := vnetns.GetFromPath(path)
	if err != nil {
		return fmt.Errorf("netns: open %s: %w", path, err)
	}
	defer target.Close()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := vnetns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("netns: current namespace: %w", err)
			return
		}
		defer orig.Close()
		if err := vnetns.Set(target); err != nil {
			// setns failed: the thread is still where it was.
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("netns: enter %s: %w", path, err)
			return
		}
		ferr := fn()
		if err := vnetns.Set(orig); err != nil {
			// Stay locked: the thread dies with this goroutine.
			errc <- errors.Join(ferr, fmt.Errorf("netns: restore namespace: %w", err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}
