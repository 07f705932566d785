// Package api is the example host's control API: JSON over HTTP, served on
// a unix socket (only the socket owner's uid, or root, may use it: the
// server checks the peer's credentials with SO_PEERCRED) and optionally on
// a loopback TCP address (a bearer token is required).
//
// Endpoints (see examples/host/README.md for the full reference):
//
//	GET  /v1/status                     node name and every group's status
//	POST /v1/groups/{name}/online       bring a group online and wait
//	POST /v1/groups/{name}/offline      take a group offline and wait
//	POST /v1/groups/{name}/clear        reset a group's failed state
//	POST /v1/groups/{name}/move         {"node": NAME}: move (409: to another node without a cluster section, or to a node the placement refuses)
//	GET  /v1/events[?follow=1]          recent events, then live ones, as NDJSON
//
// Errors are {"error": "..."} with 400, 401, 403, 404, 409, 500 or 504.
package api
