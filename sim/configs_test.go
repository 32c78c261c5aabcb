package sim

import (
	"path/filepath"
	"testing"

	"github.com/vdpp/vdpp/plan"
)

// Every example plan in configs/ loads, simulates, and satisfies both the
// invariants here and the timeline package's own validation.
func TestConfigPlans(t *testing.T) {
	files, _ := filepath.Glob("../configs/*.yaml")
	if len(files) == 0 {
		t.Skip("no configs/*.yaml")
	}
	for _, f := range files {
		p, err := plan.Load(f)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if p.Profile == nil {
			continue // exec-only plan without costs
		}
		for _, handoff := range []plan.Handoff{plan.HandoffBlocking, plan.HandoffBuffered} {
			p.Layout.Handoff = handoff
			r, err := Run(p, Options{Trace: true})
			if err != nil {
				t.Errorf("%s %s: %v", f, handoff, err)
				continue
			}
			if err := checkInvariants(p, r); err != nil {
				t.Errorf("%s %s: %v", f, handoff, err)
			}
			if err := r.Timeline.Validate(); err != nil {
				t.Errorf("%s %s: timeline.Validate: %v", f, handoff, err)
			}
			// The shared metrics agree: busy + idle = makespan per device,
			// and the engine's busy time is the sum of its busy spans.
			m := r.Timeline.Metrics()
			if m.MakespanNS != r.Makespan || m.Samples != p.Workload.Samples {
				t.Errorf("%s %s: metrics makespan %d over %d samples, run %d over %d", f, handoff, m.MakespanNS, m.Samples, r.Makespan, p.Workload.Samples)
			}
			t.Logf("%s %s: %d samples, first latency %.3f s, makespan %.3f s, throughput %.3f/s", filepath.Base(f), handoff, m.Samples, float64(m.FirstLatencyNS)/1e9, float64(m.MakespanNS)/1e9, m.Throughput)
			busy := busyNS(r.Timeline)
			for _, d := range m.Devices {
				if d.BusyNS+d.IdleNS != m.MakespanNS || d.BusyNS != busy[d.Device] {
					t.Errorf("%s %s %s: busy %d + idle %d != makespan %d (busy spans %d)", f, handoff, d.Device, d.BusyNS, d.IdleNS, m.MakespanNS, busy[d.Device])
				}
			}
		}
	}
}
