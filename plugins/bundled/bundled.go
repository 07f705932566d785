package bundled

import (
	"context"

	"github.com/sftkit/sft/plugins"
	"github.com/sftkit/sft/plugins/genericapp"
	"github.com/sftkit/sft/plugins/genericservice"
	"github.com/sftkit/sft/plugins/ipaddress"
	"github.com/sftkit/sft/resource"
)

// Types returns the bundled types, in-process, with their default
// configuration: genericapp, genericservice, ipaddress.
func Types() []resource.Type {
	return []resource.Type{genericapp.New(), genericservice.New(), ipaddress.NewType()}
}

// Main is the hook a host's main calls first: in a process started as the
// bundled plugin it serves Types and exits; otherwise it returns at once.
func Main() { plugins.Main(Types()...) }

// Launch re-executes the running binary (whose main called Main) as the
// bundled plugin process, registers its types in reg when reg is not nil,
// and returns its pool. cfg.Path is ignored; cfg.Name defaults to
// "bundled", so the process shows as "sft-plugin: bundled" in ps. Close the
// pool when done.
func Launch(ctx context.Context, cfg plugins.Config, reg *resource.Registry) (*plugins.Pool, error) {
	cfg.Path = ""
	if cfg.Name == "" {
		cfg.Name = "bundled"
	}
	h, err := plugins.Launch(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if reg != nil {
		if err := h.Register(reg); err != nil {
			_ = h.Close()
			return nil, err
		}
	}
	return h, nil
}
