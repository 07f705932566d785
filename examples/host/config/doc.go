// Package config reads and validates the example host's YAML
// configuration.
//
// Decoding is strict: an unknown key, a duplicate key, a value of the wrong
// kind or a bad duration is an error with its line, column and path
// (groups[1].resources[0].properties.address). Validation checks every
// field and asks each resource type to validate its properties; the
// type's errors (resource.ConfigError) are reported under the resource's
// path. All problems are reported at once, as an Errors.
//
// Every field's default is documented on the field and in reference.yaml.
package config
