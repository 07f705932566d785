// Package netns runs code inside Linux network namespaces and builds
// throw-away test networks out of them.
//
// [Do] runs a function on a locked OS thread that has entered a network
// namespace (given by path, such as /run/netns/NAME or /proc/PID/ns/net) and
// restores the thread afterwards; sockets created inside the function stay in
// that namespace for their whole life. Production code (the ipaddress resource
// type) uses it to open packet sockets in the namespace it manages.
//
// The test harness lives in package netnstest (it imports testing, which
// production binaries must not link): [netnstest.NewNet]: it creates a "switch" namespace holding a
// Linux bridge, and [Net.AddHost] adds a host namespace joined to that bridge
// by a veth pair. The veth pair is created inside the switch namespace with its
// peer placed directly into the host namespace, so no link, address or route
// ever appears in the caller's (root) namespace. Every namespace carries a
// unique per-test prefix and is deleted in t.Cleanup, also when the test fails.
package netns
