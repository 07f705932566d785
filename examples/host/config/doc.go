// Package config reads and validates the example host's YAML
// configuration.
//
// Decoding is strict: an unknown key, a duplicate key, a value of the wrong
// kind or a bad duration is an error with its line, column and path
// (groups[1].resources[0].properties.address); YAML syntax errors carry a
// line and column too. Validation checks every field, enforces the upper
// bound of every size and duration (the `max` struct tags), and asks each
// resource type to validate its properties; the type's errors
// (resource.ConfigError, several joined with errors.Join) are reported
// under the resource's path. All problems are reported at once, as an
// Errors.
//
// Validate is what run uses: whatever would stop a node from starting is an
// error. Check is for the validate command: problems that depend on the
// machine's state (a network namespace or directory missing, a token file
// readable by others) and a config with nothing to run are warnings.
//
// The cluster section runs in one of two modes (cluster.mode): quorum
// (cluster.go: raft, any number of nodes) or peer (peer.go: two nodes
// without a quorum, each group's home its only placement.preferred node
// and its service address peer.address or its ipaddress resource's).
//
// Every field's default and bound are documented on the field and in
// reference.yaml.
package config
