package config

import (
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
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

// CheckPluginBinary refuses what a host must not run as a plugin: a path
// that is not absolute, not a regular executable file, or a file or
// directory that someone other than its owner may write (anyone who can
// replace the binary could run code as the host).
func CheckPluginBinary(path string) error {
	if !filepath.IsAbs(path) {
		return fmt.Errorf("must be an absolute path")
	}
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("not a regular file")
	}
	if fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("not executable (mode %v)", fi.Mode().Perm())
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("writable by group or others (mode %v): anyone who can replace it runs code as the host; chmod go-w it", fi.Mode().Perm())
	}
	dir := filepath.Dir(path)
	di, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if di.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("its directory %s is writable by group or others (mode %v): anyone who can write there can replace the binary; move it or chmod go-w the directory", dir, di.Mode().Perm())
	}
	return nil
}

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
