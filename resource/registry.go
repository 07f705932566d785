package resource

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
)

// Registry maps type names to Types. It is an explicit value: nothing
// registers itself from init. The zero value is empty and ready to use; a
// Registry is safe for concurrent use.
type Registry struct {
	mu    sync.RWMutex
	types map[string]Type
}

// NewRegistry returns a registry holding types (see Register).
func NewRegistry(types ...Type) (*Registry, error) {
	r := &Registry{}
	for _, t := range types {
		if err := r.Register(t); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// Register adds t. An empty name or a name already taken is an error.
func (r *Registry) Register(t Type) error {
	if t == nil {
		return errors.New("resource: Register of nil Type")
	}
	name := t.Name()
	if name == "" {
		return errors.New("resource: Register of a Type with an empty name")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.types == nil {
		r.types = make(map[string]Type)
	}
	if _, dup := r.types[name]; dup {
		return fmt.Errorf("resource: type %q registered twice", name)
	}
	r.types[name] = t
	return nil
}

// Lookup returns the type named name.
func (r *Registry) Lookup(name string) (Type, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	t, ok := r.types[name]
	return t, ok
}

// Names returns the registered type names, sorted.
func (r *Registry) Names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return slices.Sorted(maps.Keys(r.types))
}

// Open looks up typeName and opens an instance. An unknown type is a
// configuration error naming it and the known types.
func (r *Registry) Open(ctx context.Context, typeName string, req OpenRequest) (Resource, error) {
	t, err := r.get(typeName)
	if err != nil {
		return nil, err
	}
	return t.Open(ctx, req)
}

// Validate looks up typeName and validates props.
func (r *Registry) Validate(ctx context.Context, typeName string, props Properties) error {
	t, err := r.get(typeName)
	if err != nil {
		return err
	}
	return t.Validate(ctx, props)
}

func (r *Registry) get(typeName string) (Type, error) {
	t, ok := r.Lookup(typeName)
	if !ok {
		return nil, ConfigError("type", typeName, "unknown resource type (known: %s)", strings.Join(r.Names(), ", "))
	}
	return t, nil
}
