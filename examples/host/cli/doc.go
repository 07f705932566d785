// Package cli is the example host's command line: run, validate, status,
// online, offline, clear, move, events, simulate, and the hidden demo-http
// server of the quick start. The client commands talk to the running node
// through package api.
package cli
