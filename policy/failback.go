package policy

import (
	"errors"
	"fmt"
	"time"
)

// FailbackMode says whether a group moves back to its most preferred node
// when that node is up again.
type FailbackMode int

const (
	// FailbackPrevent (default): stay where it is; a person moves it back.
	FailbackPrevent FailbackMode = iota
	// FailbackImmediate: move back as soon as the preferred node is up.
	FailbackImmediate
	// FailbackWindow: move back only within the daily window.
	FailbackWindow
)

var failbackNames = map[FailbackMode]string{
	FailbackPrevent:   "prevent",
	FailbackImmediate: "immediate",
	FailbackWindow:    "window",
}

func (m FailbackMode) String() string {
	if s, ok := failbackNames[m]; ok {
		return s
	}
	return fmt.Sprintf("FailbackMode(%d)", int(m))
}

// MarshalText implements encoding.TextMarshaler.
func (m FailbackMode) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler ("" is prevent).
func (m *FailbackMode) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*m = FailbackPrevent
		return nil
	}
	for k, v := range failbackNames {
		if v == string(b) {
			*m = k
			return nil
		}
	}
	return errField("mode", string(b), "unknown failback mode (want prevent, immediate or window)")
}

// Failback is a group's failback policy. The window is in whole hours of
// the day, in the location of the time passed to Decide: [WindowStart,
// WindowEnd), wrapping past midnight when WindowStart > WindowEnd
// (22 to 2 means 22:00-01:59).
type Failback struct {
	Mode        FailbackMode `json:"mode,omitempty" yaml:"mode,omitempty"`
	WindowStart int          `json:"window_start,omitempty" yaml:"window_start,omitempty"`
	WindowEnd   int          `json:"window_end,omitempty" yaml:"window_end,omitempty"`
}

// Validate checks f.
func (f Failback) Validate() error {
	if _, ok := failbackNames[f.Mode]; !ok {
		return errField("mode", int(f.Mode), "unknown failback mode")
	}
	if f.Mode != FailbackWindow {
		return nil
	}
	var errs []error
	if f.WindowStart < 0 || f.WindowStart > 23 {
		errs = append(errs, errField("window_start", f.WindowStart, "must be an hour from 0 to 23"))
	}
	if f.WindowEnd < 0 || f.WindowEnd > 23 {
		errs = append(errs, errField("window_end", f.WindowEnd, "must be an hour from 0 to 23"))
	}
	if f.WindowStart == f.WindowEnd {
		errs = append(errs, errField("window_end", f.WindowEnd, "equals window_start: the window would be empty"))
	}
	return errors.Join(errs...)
}

// InWindow reports whether now lies in the failback window.
func (f Failback) InWindow(now time.Time) bool {
	h := now.Hour()
	if f.WindowStart < f.WindowEnd {
		return h >= f.WindowStart && h < f.WindowEnd
	}
	return h >= f.WindowStart || h < f.WindowEnd
}

// untilWindow is the time from now to the next opening of the window: the
// next instant at which the local clock shows WindowStart:00, or, on a day
// when a daylight-saving jump skips that hour, the instant of the jump if the
// clock then shows an hour inside the window. (time.Date turns a skipped
// wall-clock time into an instant before the jump, so adding a day to it or
// waiting for it lands outside the window.)
func (f Failback) untilWindow(now time.Time) time.Duration {
	y, m, d := now.Date()
	for i := range 3 {
		open := time.Date(y, m, d+i, f.WindowStart, 0, 0, 0, now.Location())
		if open.Hour() != f.WindowStart {
			if _, jump := open.ZoneBounds(); jump.After(open) && jump.Sub(open) <= 3*time.Hour {
				open = jump
			}
		}
		if open.After(now) && f.InWindow(open) {
			return open.Sub(now)
		}
	}
	return 24 * time.Hour // only for an invalid window: ask again tomorrow
}

// Decide says whether a group running on current should move back to
// preferred (its most preferred node that is up; see Owners.Best) at now.
// ActionMove with Delay 0 means now; ActionNone with Delay > 0 means ask
// again after Delay (the window opens then).
func (f Failback) Decide(now time.Time, current, preferred string) Decision {
	if preferred == "" || preferred == current {
		return Decision{Action: ActionNone, Reason: "already on its most preferred available node"}
	}
	switch f.Mode {
	case FailbackImmediate:
		return Decision{Action: ActionMove, Node: preferred, Reason: "failback immediate: " + preferred + " is preferred and up"}
	case FailbackWindow:
		if f.InWindow(now) {
			return Decision{Action: ActionMove, Node: preferred,
				Reason: fmt.Sprintf("failback window %02d:00-%02d:00 is open", f.WindowStart, f.WindowEnd)}
		}
		return Decision{Action: ActionNone, Delay: f.untilWindow(now),
			Reason: fmt.Sprintf("waiting for the failback window %02d:00-%02d:00", f.WindowStart, f.WindowEnd)}
	}
	return Decision{Action: ActionNone, Reason: "failback is prevented: move the group back by hand"}
}
