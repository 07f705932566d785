package resource

import (
	"errors"
	"fmt"
	"reflect"
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

// Sentinels for errors.Is: errors.Is(err, ErrNodeLocal) is true for an error
// whose class is node-local, however deeply wrapped.
//
// One rule decides an error's class, for ClassOf and errors.Is alike: the
// outermost classified error in the chain wins (the first *Error met walking
// the chain depth-first, the order of errors.As). Inner classifications are
// shadowed: errors.Is(NodeLocal(Configuration(x)), ErrConfiguration) is false.
// An unclassified error is transient for ClassOf and the restart policy;
// errors.Is cannot see a class on an error that carries none, so
// errors.Is(plainErr, ErrTransient) is false: test with ClassOf (or
// IsTransient), which agree. Every failure the monitor reports (events,
// GroupStatus, Online's error) is classified, so errors.Is agrees there too.
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

// Unwrap returns the underlying error. When that holds classified errors of
// its own, they are shadowed (see ErrTransient): the chain still matches
// every other error (errors.Is, errors.As) but no longer the inner classes.
func (e *Error) Unwrap() error {
	var inner *Error
	if e.Err != nil && errors.As(e.Err, &inner) {
		return shadow{e.Err}
	}
	return e.Err
}

// shadow wraps the chain under a classified error so that the class
// sentinels no longer match inside it: the outermost class wins.
type shadow struct{ err error }

func (s shadow) Error() string { return s.err.Error() }

func (s shadow) Is(target error) bool {
	if isClassSentinel(target) {
		return false
	}
	if s.err == target {
		return true
	}
	if x, ok := s.err.(interface{ Is(error) bool }); ok {
		return x.Is(target)
	}
	return false
}

func (s shadow) As(target any) bool {
	if x, ok := s.err.(interface{ As(any) bool }); ok && x.As(target) {
		return true
	}
	v := reflect.ValueOf(target)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return false
	}
	if t := v.Elem().Type(); reflect.TypeOf(s.err).AssignableTo(t) {
		v.Elem().Set(reflect.ValueOf(s.err))
		return true
	}
	return false
}

func (s shadow) Unwrap() []error {
	var next []error
	switch x := s.err.(type) {
	case *Error:
		if x.Err != nil {
			next = []error{x.Err}
		}
	case interface{ Unwrap() error }:
		if u := x.Unwrap(); u != nil {
			next = []error{u}
		}
	case interface{ Unwrap() []error }:
		next = x.Unwrap()
	}
	out := make([]error, 0, len(next))
	for _, e := range next {
		if e != nil {
			out = append(out, shadow{e})
		}
	}
	return out
}

func isClassSentinel(err error) bool {
	return err == ErrTransient || err == ErrNodeLocal || err == ErrConfiguration
}

// IsTransient reports whether err is transient under the rule above:
// classified transient, or not classified at all. It agrees with ClassOf.
func IsTransient(err error) bool { return ClassOf(err) == ClassTransient }

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

// PrefixFields returns err with "prefix." put before the field of every
// *Error it holds (through errors.Join, recursively), so a validator of a
// nested value can name fields from the top: "failback.window_start". Errors
// without a field are kept as they are; nil stays nil.
func PrefixFields(prefix string, err error) error {
	if err == nil {
		return nil
	}
	var out []error
	for _, e := range unjoin(err) {
		var re *Error
		if errors.As(e, &re) && re.Field != "" {
			c := *re
			c.Field = prefix + "." + re.Field
			e = &c
		}
		out = append(out, e)
	}
	return errors.Join(out...)
}

// unjoin unpacks errors.Join, recursively.
func unjoin(err error) []error {
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return []error{err}
	}
	var out []error
	for _, e := range j.Unwrap() {
		out = append(out, unjoin(e)...)
	}
	return out
}
