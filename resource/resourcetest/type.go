package resourcetest

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/sftkit/sft/resource"
)

// Type is a resource.Type whose Open returns a *Fake. Tests script the
// instances before they are opened (Script) and get at them afterwards
// (Instance, Instances, WaitInstance).
//
// Properties: Validate and Open accept these, so that a fake can also be
// scripted where only properties pass (a config file, a plugin boundary):
//
//	online_failures  number  the first N Online calls fail (default 0)
//	error_class      string  class of those errors: "transient" (default),
//	                         "node-local" or "configuration"
//
// Any other property is a configuration error naming it.
//
// A Type is safe for concurrent use. Like Fake, use it inside one
// testing/synctest bubble or entirely outside bubbles.
type Type struct {
	name string

	mu        sync.Mutex
	changed   chan struct{}
	scripts   map[string][]func(*Fake)
	opened    []*Fake
	byName    map[string]*Fake
	hide      Capability
	timing    resource.Timing
	openErr   error
	validates int
}

var (
	_ resource.Type           = (*Type)(nil)
	_ resource.TimingProvider = (*Type)(nil)
)

// NewType returns a Type named name ("fake" is customary).
func NewType(name string) *Type {
	return &Type{name: name, scripts: make(map[string][]func(*Fake)), byName: make(map[string]*Fake)}
}

// Name returns the type's name.
func (t *Type) Name() string { return t.name }

// Props are the properties a Type understands; see Type.
type Props struct {
	OnlineFailures int    `json:"online_failures"`
	ErrorClass     string `json:"error_class"`
}

func decodeProps(props resource.Properties) (Props, resource.Class, error) {
	var p Props
	if err := props.Decode(&p); err != nil {
		return p, 0, err
	}
	if p.OnlineFailures < 0 {
		return p, 0, resource.ConfigError("online_failures", p.OnlineFailures, "must not be negative")
	}
	class := resource.ClassTransient
	if p.ErrorClass != "" {
		c, err := resource.ParseClass(p.ErrorClass)
		if err != nil {
			return p, 0, resource.ConfigError("error_class", p.ErrorClass, "want transient, node-local or configuration")
		}
		class = c
	}
	return p, class, nil
}

// Validate checks the properties (see Type) and counts the call.
func (t *Type) Validate(ctx context.Context, props resource.Properties) error {
	t.mu.Lock()
	t.validates++
	t.mu.Unlock()
	_, _, err := decodeProps(props)
	return err
}

// Validations returns how many times Validate was called.
func (t *Type) Validations() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.validates
}

// Open validates the properties, creates a Fake named req.Name, applies the
// properties and the scripts registered for that name (then those for ""),
// and records it. It returns the Fake itself, or a wrapper offering fewer
// optional interfaces after Hide. With SetOpenError, Open fails instead.
func (t *Type) Open(ctx context.Context, req resource.OpenRequest) (resource.Resource, error) {
	p, class, err := decodeProps(req.Properties)
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	if t.openErr != nil {
		err := t.openErr
		t.mu.Unlock()
		return nil, err
	}
	scripts := slices.Concat(t.scripts[req.Name], t.scripts[""])
	hide := t.hide
	t.mu.Unlock()

	f := NewFake(req.Name)
	if p.OnlineFailures > 0 {
		f.FailNext(MethodOnline, p.OnlineFailures, classify(class, fmt.Errorf("%w (online_failures)", ErrInjected)))
	}
	for _, s := range scripts {
		s(f)
	}

	t.mu.Lock()
	t.opened = append(t.opened, f)
	t.byName[req.Name] = f
	if t.changed != nil {
		close(t.changed)
		t.changed = nil
	}
	t.mu.Unlock()
	return Hidden(f, hide), nil
}

func classify(c resource.Class, err error) error {
	switch c {
	case resource.ClassNodeLocal:
		return resource.NodeLocal(err)
	case resource.ClassConfiguration:
		return resource.Configuration(err)
	}
	return resource.Transient(err)
}

// Script registers fn to run on every Fake opened under name, before Open
// returns it: the place to script behaviour before the code under test gets
// the resource. name "" means every instance (run after the instance's own
// scripts). Scripts run in registration order.
func (t *Type) Script(name string, fn func(f *Fake)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.scripts[name] = append(t.scripts[name], fn)
}

// Hide makes later Opens return a resource that does not offer the optional
// interfaces in caps (see Hidden). Hide(0) offers all of them again.
func (t *Type) Hide(caps Capability) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.hide = caps
}

// SetTiming sets what DefaultTiming returns (zero by default: no opinion).
func (t *Type) SetTiming(timing resource.Timing) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.timing = timing
}

// DefaultTiming implements resource.TimingProvider.
func (t *Type) DefaultTiming() resource.Timing {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.timing
}

// SetOpenError makes later Opens fail with err (nil: succeed again).
func (t *Type) SetOpenError(err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.openErr = err
}

// Instance returns the Fake most recently opened under name, or nil.
func (t *Type) Instance(name string) *Fake {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.byName[name]
}

// Instances returns every Fake opened so far, in the order they were opened.
func (t *Type) Instances() []*Fake {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.opened)
}

// WaitInstance waits until a Fake has been opened under name and returns
// the most recent one, or ctx.Err() when ctx ends first.
func (t *Type) WaitInstance(ctx context.Context, name string) (*Fake, error) {
	for {
		t.mu.Lock()
		if f := t.byName[name]; f != nil {
			t.mu.Unlock()
			return f, nil
		}
		if t.changed == nil {
			t.changed = make(chan struct{})
		}
		ch := t.changed
		t.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Capability names the optional interfaces a Fake implements.
type Capability int

const (
	CapFailureReporter Capability = 1 << iota // resource.FailureReporter
	CapCloser                                 // resource.Closer
	CapProcessKiller                          // resource.ProcessKiller
)

// Hidden returns f as a resource.Resource that does not implement the
// optional interfaces in hide: Hidden(f, CapProcessKiller) is a resource whose
// host the monitor cannot kill. The calls still reach f. Hidden(f, 0) is f.
func Hidden(f *Fake, hide Capability) resource.Resource {
	type (
		r  = resource.Resource
		fr = resource.FailureReporter
		c  = resource.Closer
		hk = resource.ProcessKiller
	)
	switch hide & (CapFailureReporter | CapCloser | CapProcessKiller) {
	case 0:
		return f
	case CapFailureReporter:
		return struct {
			r
			c
			hk
		}{f, f, f}
	case CapCloser:
		return struct {
			r
			fr
			hk
		}{f, f, f}
	case CapProcessKiller:
		return struct {
			r
			fr
			c
		}{f, f, f}
	case CapFailureReporter | CapCloser:
		return struct {
			r
			hk
		}{f, f}
	case CapFailureReporter | CapProcessKiller:
		return struct {
			r
			c
		}{f, f}
	case CapCloser | CapProcessKiller:
		return struct {
			r
			fr
		}{f, f}
	}
	return struct{ r }{f}
}
