package cgroup

import (
	"fmt"
	"strconv"
)

// Limits are optional resource limits for a group. Zero means "no limit".
type Limits struct {
	// MemoryBytes caps the group's memory (v2 memory.max, v1
	// memory.limit_in_bytes). Over it, the kernel's OOM killer kills a
	// member.
	MemoryBytes int64
	// CPU caps the group's CPU time in CPUs (1.5 = one and a half CPUs;
	// v2 cpu.max, v1 cpu.cfs_quota_us over a 100 ms period).
	CPU float64
	// Tasks caps the number of processes and threads (v2 and v1
	// pids.max); fork beyond it fails with EAGAIN.
	Tasks int64
}

// IsZero reports whether no limit is set.
func (l Limits) IsZero() bool { return l == Limits{} }

// cpuPeriodUs is the CFS period used for CPU limits (the kernel default).
const cpuPeriodUs = 100_000

// setting is one value to write into one controller's interface file.
type setting struct {
	limit      string // "memory", "cpu", "tasks": the Limits field
	controller string // "memory", "cpu", "pids"
	v2File     string
	v2Value    string
	v1File     string
	v1Value    string
}

// settings returns the files to write for l, in a fixed order.
func (l Limits) settings() []setting {
	var out []setting
	if l.MemoryBytes > 0 {
		v := strconv.FormatInt(l.MemoryBytes, 10)
		out = append(out, setting{"memory", "memory", "memory.max", v, "memory.limit_in_bytes", v})
	}
	if l.CPU > 0 {
		q := max(int64(l.CPU*cpuPeriodUs), 1000) // the kernel's minimum quota is 1 ms
		out = append(out, setting{"cpu", "cpu", "cpu.max", fmt.Sprintf("%d %d", q, cpuPeriodUs),
			"cpu.cfs_quota_us", strconv.FormatInt(q, 10)})
	}
	if l.Tasks > 0 {
		v := strconv.FormatInt(l.Tasks, 10)
		out = append(out, setting{"tasks", "pids", "pids.max", v, "pids.max", v})
	}
	return out
}

// Applied says where one limit went, or why it could not be applied.
type Applied struct {
	Limit string // "memory", "cpu" or "tasks"
	Value string // the value written
	// Where is "v2" or "v1:<controller>" when applied, "" when not.
	Where string
	// Err is why the limit could not be applied (nil when applied).
	Err error
}

func (a Applied) String() string {
	if a.Err != nil {
		return fmt.Sprintf("%s=%s not applied: %v", a.Limit, a.Value, a.Err)
	}
	return fmt.Sprintf("%s=%s (%s)", a.Limit, a.Value, a.Where)
}
