package genericservice

import (
	"fmt"
	"strings"
)

// maxUnitName is systemd's UNIT_NAME_MAX.
const maxUnitName = 255

// normalizeUnit checks a service property and returns the unit name: a
// name without a suffix gets ".service" (as systemctl does). Only service
// units are accepted; template units need an instance ("getty@tty1").
func normalizeUnit(s string) (string, error) {
	if s == "" {
		return "", fmt.Errorf("empty service name")
	}
	name := s
	if !hasUnitSuffix(name) {
		name += ".service"
	}
	if !strings.HasSuffix(name, ".service") {
		return "", fmt.Errorf("not a service unit (want a name ending in .service or no suffix)")
	}
	if len(name) > maxUnitName {
		return "", fmt.Errorf("longer than %d characters", maxUnitName)
	}
	prefix := strings.TrimSuffix(name, ".service")
	if prefix == "" {
		return "", fmt.Errorf("empty unit name before .service")
	}
	for _, c := range prefix {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune(":-_.\\@", c)) {
			return "", fmt.Errorf("character %q not allowed in a unit name (allowed: letters, digits, \":-_.\\@\")", c)
		}
	}
	if i := strings.IndexByte(prefix, '@'); i >= 0 {
		if i == 0 {
			return "", fmt.Errorf("empty template name before @")
		}
		if strings.IndexByte(prefix[i+1:], '@') >= 0 {
			return "", fmt.Errorf("more than one @")
		}
		if i == len(prefix)-1 {
			return "", fmt.Errorf("template unit without an instance (want name@instance)")
		}
	}
	return name, nil
}

// hasUnitSuffix reports whether name ends in a systemd unit type suffix.
func hasUnitSuffix(name string) bool {
	for _, t := range []string{".service", ".socket", ".target", ".device", ".mount", ".automount",
		".swap", ".timer", ".path", ".slice", ".scope"} {
		if strings.HasSuffix(name, t) {
			return true
		}
	}
	return false
}
