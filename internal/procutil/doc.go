// Package procutil controls child processes as process groups on Linux:
// start a child in a group of its own that dies with its parent, kill the
// whole group, and list a process's children (for leak checks in tests).
//
// go-plugin's Client.Kill waits on a graceful shutdown RPC that has no
// deadline (it blocks forever on a frozen plugin) and then kills only the
// plugin's PID, orphaning its children; callers use KillGroup under their
// own deadline instead.
package procutil
