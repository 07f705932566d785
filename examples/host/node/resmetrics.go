package node

import (
	"bufio"
	"net/http"
	"strconv"

	"github.com/prometheus/common/expfmt"

	"github.com/sftkit/sft/monitor"
)

// Series per resource, and why each is there (five in all; a node with
// 1,000 resources exports 5,000 of them, which is what a scrape's cost
// grows with):
//
//   - sft_resource_state{group,resource,state,type} 1: the current state,
//     the one thing every dashboard and alert rule asks for. One series,
//     labelled with the state, not one per state (the other four would
//     always be 0).
//   - sft_resource_restarts_counted: the restart policy's own count (what
//     the threshold is compared with; Clear resets it). Not derivable from
//     the counters: the policy forgets restarts older than its period.
//   - sft_resource_restarts_total, sft_resource_failures_total,
//     sft_resource_failures_pushed_total: monotonic counters for rate()
//     and increase(): restarts by policy, entries into Failed, and the
//     failures the resource reported itself (process exit, address
//     removed, plugin process died). Failures minus pushed failures are
//     those the health checks found.
//
// Everything else (per type and method, per group, per process) does not
// grow with the number of resources.
//
// These five families, and the two per group (sft_group_state,
// sft_group_failed), are written by hand at scrape time (writeResources)
// rather than through client_golang's collectors: building, checking and
// sorting 5,000 dto.Metric values made a scrape at 1,000 resources cost
// about 25 ms; writing the text directly costs well under 5 ms
// (BenchmarkScrape1000).

// handler serves the registry and the per-resource families, in the text
// exposition format (version 0.0.4).
func (m *metrics) handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", string(expfmt.NewFormat(expfmt.TypeTextPlain)))
		bw := bufio.NewWriterSize(w, 64<<10)
		if err := m.write(bw); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		_ = bw.Flush()
	})
}

// write writes a whole scrape: the registry's families, then the
// per-resource ones.
func (m *metrics) write(w *bufio.Writer) error {
	mfs, err := m.reg.Gather()
	if err != nil {
		return err
	}
	for _, mf := range mfs {
		if _, err := expfmt.MetricFamilyToText(w, mf); err != nil {
			return err
		}
	}
	m.writeResources(w, m.status())
	return nil
}

// writeResources writes the groups' state families and the five
// per-resource families, all from st: the counters are the monitor's
// never-reset status counters, so a burst of events a subscriber missed
// loses no count (a replaced group starts its resources' counters at 0
// again, a counter reset rate() handles).
func (m *metrics) writeResources(w *bufio.Writer, st monitor.Status) {
	var b []byte
	b = family(b, "sft_group_state", "gauge", "1 for the group's current state, 0 for the others.")
	for _, g := range st.Groups {
		for _, s := range states {
			b = groupSample(b, "sft_group_state", g.Name, s.String(), b2u(g.State == s))
		}
	}
	b = flush(w, b)
	b = family(b, "sft_group_failed", "gauge", "1 while the group is failed on this node.")
	for _, g := range st.Groups {
		b = groupSample(b, "sft_group_failed", g.Name, "", b2u(g.Failed))
	}
	b = flush(w, b)
	b = family(b, "sft_resource_state", "gauge", "1, labelled with the resource's current state (no series for the other states).")
	for _, g := range st.Groups {
		for _, r := range g.Resources {
			b = sample(b, "sft_resource_state", g.Name, r.Name, r.State.String(), r.Type, 1)
		}
		b = flush(w, b)
	}
	b = family(b, "sft_resource_restarts_counted", "gauge", "Restarts counted by the restart policy since start or the last clear.")
	for _, g := range st.Groups {
		for _, r := range g.Resources {
			b = sample(b, "sft_resource_restarts_counted", g.Name, r.Name, "", r.Type, uint64(r.Restarts))
		}
		b = flush(w, b)
	}
	for _, f := range []struct {
		name, help string
		v          func(monitor.ResourceStatus) uint64
	}{
		{"sft_resource_failures_pushed_total", "Failures a resource reported itself (process exit, address removed, plugin process died).", func(r monitor.ResourceStatus) uint64 { return r.FailuresPushed }},
		{"sft_resource_failures_total", "Times a resource entered the Failed state.", func(r monitor.ResourceStatus) uint64 { return r.Failures }},
		{"sft_resource_restarts_total", "Restarts of a resource by its restart policy.", func(r monitor.ResourceStatus) uint64 { return r.RestartsTotal }},
	} {
		b = family(b, f.name, "counter", f.help)
		for _, g := range st.Groups {
			for _, r := range g.Resources {
				b = sample(b, f.name, g.Name, r.Name, "", r.Type, f.v(r))
			}
			b = flush(w, b)
		}
	}
}

// groupSample appends name{group="",state=""} v (state left out when
// empty).
func groupSample(b []byte, name, group, state string, v uint64) []byte {
	b = append(b, name...)
	b = append(b, `{group="`...)
	b = escapeLabel(b, group)
	if state != "" {
		b = append(b, `",state="`...)
		b = escapeLabel(b, state)
	}
	b = append(b, `"} `...)
	b = strconv.AppendUint(b, v, 10)
	return append(b, '\n')
}

func b2u(v bool) uint64 {
	if v {
		return 1
	}
	return 0
}

func flush(w *bufio.Writer, b []byte) []byte {
	_, _ = w.Write(b)
	return b[:0]
}

func family(b []byte, name, typ, help string) []byte {
	b = append(b, "# HELP "...)
	b = append(b, name...)
	b = append(b, ' ')
	b = append(b, help...)
	b = append(b, "\n# TYPE "...)
	b = append(b, name...)
	b = append(b, ' ')
	b = append(b, typ...)
	return append(b, '\n')
}

// sample appends name{group="",resource="",state="",type=""} v (state
// left out when empty), label names in the sorted order client_golang
// writes them in.
func sample(b []byte, name, group, res, state, typ string, v uint64) []byte {
	b = append(b, name...)
	b = append(b, `{group="`...)
	b = escapeLabel(b, group)
	b = append(b, `",resource="`...)
	b = escapeLabel(b, res)
	if state != "" {
		b = append(b, `",state="`...)
		b = escapeLabel(b, state)
	}
	b = append(b, `",type="`...)
	b = escapeLabel(b, typ)
	b = append(b, `"} `...)
	b = strconv.AppendUint(b, v, 10)
	return append(b, '\n')
}

// escapeLabel appends a label value escaped as the text format wants:
// backslash, double quote and line feed.
func escapeLabel(b []byte, s string) []byte {
	plain := true
	for i := 0; i < len(s) && plain; i++ {
		plain = s[i] != '\\' && s[i] != '"' && s[i] != '\n'
	}
	if plain {
		return append(b, s...)
	}
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			b = append(b, `\\`...)
		case '"':
			b = append(b, `\"`...)
		case '\n':
			b = append(b, `\n`...)
		default:
			b = append(b, s[i])
		}
	}
	return b
}
