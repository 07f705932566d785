package node

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sftkit/sft/monitor"
	"github.com/sftkit/sft/resource"
)

// BenchmarkScrape1000 measures a scrape of the node's metrics with 1,000
// resources in 100 groups (every counter initialized, as the node does):
// what the /metrics handler writes (the registry's families gathered and
// encoded, then the per-resource ones written directly). It reports the time per scrape (ns/op, the
// mean over b.N), the series per resource (the series that grow with
// resources, divided by 1,000) and the bytes of a scrape.
//
//	go test -run '^$' -bench Scrape1000 -count=1 ./examples/host/node
func BenchmarkScrape1000(b *testing.B) {
	var st monitor.Status
	for g := range 100 {
		gs := monitor.GroupStatus{Name: fmt.Sprintf("g%d", g), State: resource.StateOnline}
		for r := range 10 {
			gs.Resources = append(gs.Resources, monitor.ResourceStatus{Name: fmt.Sprintf("r%d", r), Type: "genericapp", State: resource.StateOnline})
		}
		st.Groups = append(st.Groups, gs)
	}
	m := newMetrics(func() monitor.Status { return st })
	for _, g := range st.Groups {
		m.initGroup(g.Name)
	}
	m.observeCall(monitor.CallInfo{Type: "genericapp", Method: monitor.MethodLooksAlive, Duration: time.Millisecond})
	var buf bytes.Buffer
	w := bufio.NewWriterSize(&buf, 64<<10)
	scrape := func() {
		buf.Reset()
		if err := m.write(w); err != nil {
			b.Fatal(err)
		}
		if err := w.Flush(); err != nil {
			b.Fatal(err)
		}
	}
	scrape()
	perResource := 0
	for line := range strings.SplitSeq(buf.String(), "\n") {
		if strings.Contains(line, `resource="`) && !strings.HasPrefix(line, "#") {
			perResource++
		}
	}
	b.ResetTimer()
	for b.Loop() {
		scrape()
	}
	b.ReportMetric(float64(perResource)/1000, "series/resource")
	b.ReportMetric(float64(buf.Len())/1024, "KB/scrape")
}
