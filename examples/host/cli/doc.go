// Package cli is the example host's command line, named sftd in its usage:
// run, validate, status, online, offline, clear, move, events, simulate,
// version and help, and the hidden demo-http server of the quick start.
// Every command comes from one table (arguments, a sentence, an example),
// so `sftd help CMD` and `sftd CMD -h` print the same help and exit 0. The
// client commands talk to the running node through package api. simulate
// replays a script against a quorum cluster's placement, or runs peer-mode
// scenarios (peer.go) through the watcher's decisions.
//
// run stops gracefully at SIGINT/SIGTERM, aborts at a second one (every
// resource terminated, plugin processes stopped, exit 128+N: Node.Abort),
// and under `go run` stops when the go command dies (it does not pass
// SIGTERM on). Quickstart is the embedded default config.
package cli
