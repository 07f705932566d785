package resource

import (
	"errors"
	"fmt"
)

// Class says what an error means for placement, like an OCF return code.
type Class int

const (
	// ClassTransient: something went wrong that a restart on this node may
	// fix. Unclassified errors are transient.
	ClassTransient Class = iota
	// ClassNodeLocal: this node cannot host the resource (the address is
	// already held by another host, the interface is missing): do not
	// retry here, move the group.
	ClassNodeLocal
	// ClassConfiguration: the resource's configuration is wrong (bad
	// property, missing executable): retry nowhere until it is fixed.
	ClassConfiguration
)

func (c Class) String() string {
	switch c {
	case ClassTransient:
		return "transient"
	case ClassNodeLocal:
		return "node-local"
	case ClassConfiguration:
		return "configuration"
	}
	return fmt.Sprintf("Class(%d)", int(c))
}

// ParseClass is the inverse of Class.String.
func ParseClass(s string) (Class, error) {
	for _, c := range []Class{ClassTransient, ClassNodeLocal, ClassConfiguration} {
		if c.String() == s {
			return c, nil
		}
	}
	return 0, fmt.Errorf("resource: unknown error class %q", s)
}

// Sentinels for errors.Is: errors.Is(err, ErrNodeLocal) is true for any error
// classified node-local, however deeply wrapped.
var (
	ErrTransient     = errors.New("transient failure")
	ErrNodeLocal     = errors.New("node cannot host resource")
	ErrConfiguration = errors.New("configuration error")
)

func (c Class) sentinel() error {
	switch c {
	case ClassNodeLocal:
		return ErrNodeLocal
	case ClassConfiguration:
		return ErrConfiguration
	}
	return ErrTransient
}

// Error is a classified error. Field and Value are set for configuration
// errors about one property.
type Error struct {
	Class Class
	// Field names the property at fault ("address"), if any.
	Field string
	// Value is the bad value, if any.
	Value any
	// Err is the underlying error.
	Err error
}

func (e *Error) Error() string {
	msg := "<nil>"
	if e.Err != nil {
		msg = e.Err.Error()
	}
	if e.Field == "" {
		return msg
	}
	if e.Value == nil {
		return fmt.Sprintf("%s: %s", e.Field, msg)
	}
	return fmt.Sprintf("%s %s: %s", e.Field, quoteValue(e.Value), msg)
}

func quoteValue(v any) string {
	if s, ok := v.(string); ok {
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprintf("%v", v)
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrConfiguration) (and the other sentinels) match
// the error's class.
func (e *Error) Is(target error) bool { return target == e.Class.sentinel() }

func classify(c Class, err error) error {
	if err == nil {
		return nil
	}
	return &Error{Class: c, Err: err}
}

// Transient marks err as transient (restart here). Nil stays nil.
func Transient(err error) error { return classify(ClassTransient, err) }

// NodeLocal marks err as node-local (this node cannot host the resource).
// Nil stays nil.
func NodeLocal(err error) error { return classify(ClassNodeLocal, err) }

// Configuration marks err as a configuration error (retry nowhere). Nil
// stays nil.
func Configuration(err error) error { return classify(ClassConfiguration, err) }

// ConfigError is a configuration error about one property, naming it and its
// bad value: ConfigError("address", "10.0.0.300/24", "not a CIDR prefix")
// reads `address "10.0.0.300/24": not a CIDR prefix`.
func ConfigError(field string, value any, format string, args ...any) error {
	return &Error{Class: ClassConfiguration, Field: field, Value: value, Err: fmt.Errorf(format, args...)}
}

// ClassOf returns the class of err: the outermost classified error in its
// chain decides; an unclassified error is transient. ClassOf(nil) is
// ClassTransient too, but callers should not ask.
func ClassOf(err error) Class {
	var e *Error
	if errors.As(err, &e) {
		return e.Class
	}
	return ClassTransient
}
