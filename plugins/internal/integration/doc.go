// Package integration tests plugin-backed resources under the real monitor:
// a crashed plugin's resources are failed and restored by the restart
// policy, and a deadlocked call gets the plugin's process group killed by
// the monitor's kill hook and the plugin relaunched.
package integration
