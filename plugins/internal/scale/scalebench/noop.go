package main

import (
	"context"
	"fmt"
	"strconv"
	"syscall"
	"time"

	"github.com/sftkit/sft/monitor"
	"github.com/sftkit/sft/plugins"
	"github.com/sftkit/sft/resource"
)

// noopType's resources do nothing: Online, Offline, the checks and
// Terminate return nil at once, and the checks say they answer from
// memory (resource.InstantChecker, InstantIsAliveChecker), as a plugin
// proxy's do: like for like, in process and through the plugin, the
// monitor polls both inline. The noop phase brings a thousand of them
// online to measure what sft itself costs per resource (the monitor, and
// the plugin protocol), apart from what starting a real program costs the
// kernel (the online phase).
type noopType struct{}

const noopTypeName = "scalebench-noop"

func (noopType) Name() string                                        { return noopTypeName }
func (noopType) Validate(context.Context, resource.Properties) error { return nil }
func (noopType) Open(context.Context, resource.OpenRequest) (resource.Resource, error) {
	return noopRes{}, nil
}

type noopRes struct{}

func (noopRes) Online(context.Context) error     { return nil }
func (noopRes) Offline(context.Context) error    { return nil }
func (noopRes) LooksAlive(context.Context) error { return nil }
func (noopRes) IsAlive(context.Context) error    { return nil }
func (noopRes) Terminate(context.Context) error  { return nil }
func (noopRes) LooksAliveInstant() bool          { return true }
func (noopRes) IsAliveInstant() bool             { return true }

// onlineNoop brings n no-op resources in g groups online, in this process
// or through the plugin, and prints the CPU of this process and of the
// plugin over it.
func (b *bench) onlineNoop(n, g int, inproc bool) error {
	n = n / g * g
	e := &env{b: b, g: g}
	var typ resource.Type = noopType{}
	where := "in-process"
	if !inproc {
		pool, err := plugins.Launch(context.Background(), plugins.Config{DisableAutoMTLS: false})
		if err != nil {
			return err
		}
		e.pool = pool
		typ, _ = pool.Type(noopTypeName)
		where = "plugin"
	}
	e.m = monitor.New(monitor.Config{})
	defer e.close()
	timing := resource.Timing{LooksAliveInterval: time.Second, IsAliveInterval: 10 * time.Second}
	for gi := range g {
		spec := monitor.GroupSpec{Name: "g" + strconv.Itoa(gi)}
		for i := range n / g {
			r, err := typ.Open(context.Background(), resource.OpenRequest{Name: fmt.Sprintf("g%d/r%d", gi, i)})
			if err != nil {
				return err
			}
			spec.Resources = append(spec.Resources, monitor.ResourceSpec{
				Name: "r" + strconv.Itoa(i), Type: noopTypeName, Resource: r, Timing: timing,
			})
		}
		if err := e.m.AddGroup(spec); err != nil {
			return err
		}
	}
	p := e.pids()
	prof, err := startProfiles(fmt.Sprintf("noop-%s-%d-%d", where, n, g), e.pluginPid())
	if err != nil {
		return err
	}
	f0, c0, t0 := faults(p), cpu(p), time.Now()
	if err := e.all(func(name string) error { return e.m.Online(context.Background(), name) }); err != nil {
		return err
	}
	c1, wall, f1 := cpu(p), time.Since(t0), faults(p)
	if err := prof.stop(); err != nil {
		return err
	}
	fmt.Printf("noop: %d no-op resources in %d group(s), %s: online in %.0f ms wall, CPU host+plugin %.0f ms (%.0f us per resource), %d page faults, load %s\n",
		n, g, where, ms(wall), ms(c1-c0), us(c1-c0)/float64(n), f1-f0, loadavg())
	return nil
}

// printPageCost prints what the first touch of a fresh 4 KB page of
// anonymous memory costs on this machine: what a call in flight pays for
// each page of goroutine stack or heap the process has not used before (a
// thousand calls at once need a thousand stacks). On a Firecracker VM it
// is 15-20 us (about 1 us is typical of bare metal).
func printPageCost() error {
	const size = 16 << 20
	mem, err := syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANONYMOUS)
	if err != nil {
		return fmt.Errorf("mmap: %w", err)
	}
	defer syscall.Munmap(mem)
	_ = syscall.Madvise(mem, 14) // MADV_NOHUGEPAGE: 4 KB pages, as goroutine stacks get
	start := time.Now()
	for i := 0; i < size; i += 4096 {
		mem[i] = 1
	}
	pages := size / 4096
	fmt.Printf("noop: a fresh 4 KB page costs %.1f us at its first touch on this machine (%d pages of anonymous memory)\n",
		us(time.Since(start))/float64(pages), pages)
	return nil
}
