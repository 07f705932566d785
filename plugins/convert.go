package plugins

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/sftkit/sft/plugins/internal/proto/sftresourcev1"
	"github.com/sftkit/sft/resource"
)

// This file converts between the Go contract (package resource) and the
// sft.resource.v1 messages. Nothing here does I/O.

func propsToJSON(p resource.Properties) ([]byte, error) {
	if p == nil {
		return []byte("{}"), nil
	}
	b, err := json.Marshal(p)
	if err != nil {
		return nil, resource.Configuration(fmt.Errorf("properties are not JSON-compatible: %w", err))
	}
	return b, nil
}

func propsFromJSON(b []byte) (resource.Properties, error) {
	if len(b) == 0 {
		return resource.Properties{}, nil
	}
	var p resource.Properties
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, resource.Configuration(fmt.Errorf("properties: %w", err))
	}
	if p == nil {
		p = resource.Properties{}
	}
	return p, nil
}

func classToPB(c resource.Class) pb.ErrorDetail_Class {
	switch c {
	case resource.ClassNodeLocal:
		return pb.ErrorDetail_CLASS_NODE_LOCAL
	case resource.ClassConfiguration:
		return pb.ErrorDetail_CLASS_CONFIGURATION
	}
	return pb.ErrorDetail_CLASS_TRANSIENT
}

func classFromPB(c pb.ErrorDetail_Class) resource.Class {
	switch c {
	case pb.ErrorDetail_CLASS_NODE_LOCAL:
		return resource.ClassNodeLocal
	case pb.ErrorDetail_CLASS_CONFIGURATION:
		return resource.ClassConfiguration
	}
	return resource.ClassTransient
}

// errorToDetail describes err for the wire. The outermost resource.Error in
// the chain decides class, field and value, as resource.ClassOf does.
func errorToDetail(err error) *pb.ErrorDetail {
	d := &pb.ErrorDetail{
		Message:          err.Error(),
		Canceled:         errors.Is(err, context.Canceled),
		DeadlineExceeded: errors.Is(err, context.DeadlineExceeded),
	}
	var re *resource.Error
	if errors.As(err, &re) {
		d.Class = classToPB(re.Class)
		if re == err { //nolint:errorlint // identity: only then are field and value the whole story
			d.Field = re.Field
			if re.Err != nil {
				d.Message = re.Err.Error()
			} else {
				d.Message = "<nil>"
			}
			if re.Value != nil {
				if b, jerr := json.Marshal(re.Value); jerr == nil {
					d.ValueJson = b
				} else {
					d.ValueJson, _ = json.Marshal(fmt.Sprint(re.Value))
				}
			}
		}
	}
	return d
}

// remoteError is an error that came from the plugin. Its text is the
// plugin's; errors.Is sees context errors the plugin reported.
type remoteError struct {
	msg      string
	canceled bool
	deadline bool
}

func (e *remoteError) Error() string { return e.msg }

func (e *remoteError) Is(target error) bool {
	return (e.canceled && target == context.Canceled) || (e.deadline && target == context.DeadlineExceeded)
}

// errorFromDetail rebuilds the error errorToDetail described.
func errorFromDetail(d *pb.ErrorDetail) error {
	if d == nil {
		return nil
	}
	base := &remoteError{msg: d.GetMessage(), canceled: d.GetCanceled(), deadline: d.GetDeadlineExceeded()}
	if d.GetClass() == pb.ErrorDetail_CLASS_UNSPECIFIED {
		return base
	}
	re := &resource.Error{Class: classFromPB(d.GetClass()), Field: d.GetField(), Err: base}
	if len(d.GetValueJson()) > 0 {
		var v any
		if json.Unmarshal(d.GetValueJson(), &v) == nil {
			re.Value = v
		}
	}
	return re
}

// errorToStatus is what a server handler returns for err.
func errorToStatus(err error) error {
	if err == nil {
		return nil
	}
	code := codes.Unknown
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		code = codes.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		code = codes.Canceled
	case errors.Is(err, errUnknownInstance):
		code = codes.NotFound
	case resource.ClassOf(err) == resource.ClassConfiguration:
		code = codes.InvalidArgument
	case resource.ClassOf(err) == resource.ClassNodeLocal:
		code = codes.FailedPrecondition
	}
	st, derr := status.New(code, err.Error()).WithDetails(errorToDetail(err))
	if derr != nil {
		return status.Error(code, err.Error())
	}
	return st.Err()
}

// errorFromStatus maps an error of a client call back to a Go error. A
// transport failure (the plugin process went away) is ErrPluginExited; the
// caller's own context error is returned wrapped so errors.Is(err, ctx.Err())
// holds. op names the call for the message.
func errorFromStatus(ctx context.Context, op string, err error) error {
	if err == nil {
		return nil
	}
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("plugin %s: %w", op, context.Cause(ctx))
	}
	st, ok := status.FromError(err)
	if !ok {
		return fmt.Errorf("plugin %s: %w", op, err)
	}
	for _, det := range st.Details() {
		if d, ok := det.(*pb.ErrorDetail); ok {
			return errorFromDetail(d)
		}
	}
	switch st.Code() {
	case codes.Unavailable, codes.Canceled:
		return fmt.Errorf("plugin %s: %w: %s", op, ErrPluginExited, st.Message())
	case codes.DeadlineExceeded:
		return fmt.Errorf("plugin %s: %w", op, context.DeadlineExceeded)
	}
	return fmt.Errorf("plugin %s: %s: %s", op, st.Code(), st.Message())
}

func timingToPB(name string, t resource.Timing) *pb.TypeInfo {
	return &pb.TypeInfo{
		Name:                 name,
		LooksAliveIntervalNs: int64(t.LooksAliveInterval),
		IsAliveIntervalNs:    int64(t.IsAliveInterval),
		CallTimeoutNs:        int64(t.CallTimeout),
		PendingTimeoutNs:     int64(t.PendingTimeout),
		DeadlockTimeoutNs:    int64(t.DeadlockTimeout),
	}
}

func timingFromPB(ti *pb.TypeInfo) resource.Timing {
	return resource.Timing{
		LooksAliveInterval: time.Duration(ti.GetLooksAliveIntervalNs()),
		IsAliveInterval:    time.Duration(ti.GetIsAliveIntervalNs()),
		CallTimeout:        time.Duration(ti.GetCallTimeoutNs()),
		PendingTimeout:     time.Duration(ti.GetPendingTimeoutNs()),
		DeadlockTimeout:    time.Duration(ti.GetDeadlockTimeoutNs()),
	}
}
