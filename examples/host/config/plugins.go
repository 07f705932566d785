package config

import (
	"encoding/hex"
	"fmt"

	"github.com/sftkit/sft/plugins"
)

// ExternalPlugin is a plugin binary of someone else's resource types (built
// with plugins.Serve). The host launches it, learns its types from the
// handshake and supervises its process like the bundled one's: relaunch,
// deadlock kill, metrics, events.
type ExternalPlugin struct {
	// Path of the binary: absolute. Required. Neither the binary nor its
	// directory may be writable by anyone but its owner (see
	// CheckPluginBinary).
	Path string `yaml:"path"`
	// SHA256 pins the binary: the hex SHA-256 of the file (sha256sum).
	// Empty: no pin. A binary that does not match is refused and never runs.
	SHA256 string `yaml:"sha256"`
}

// CheckPluginBinary refuses what a host must not run as a plugin; it is
// plugins.CheckBinary (a relative path, not a regular executable, a file or
// directory others may write).
func CheckPluginBinary(path string) error { return plugins.CheckBinary(path) }

// checkSHA256 checks the pin's form: 64 hex digits.
func checkSHA256(s string) error {
	if b, err := hex.DecodeString(s); err != nil || len(b) != 32 {
		return fmt.Errorf("want the 64 hex digits of a SHA-256 (as sha256sum prints)")
	}
	return nil
}

// externalPlugins checks plugins.external without starting anything:
// each entry's path (CheckPluginBinary), its pin's form and duplicates.
func (v *validator) externalPlugins(ps []ExternalPlugin) {
	seen := map[string]int{}
	for i, p := range ps {
		path := fmt.Sprintf("plugins.external[%d]", i)
		if p.Path == "" {
			v.add(path+".path", nil, "required: the plugin binary's absolute path")
		} else if err := CheckPluginBinary(p.Path); err != nil {
			v.add(path+".path", p.Path, "%v", err)
		}
		if p.SHA256 != "" {
			if err := checkSHA256(p.SHA256); err != nil {
				v.add(path+".sha256", p.SHA256, "%v", err)
			}
		}
		if j, dup := seen[p.Path]; dup && p.Path != "" {
			v.add(path+".path", p.Path, "already listed as plugins.external[%d]", j)
		}
		seen[p.Path] = i
	}
}
