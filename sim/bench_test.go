package sim

import (
	"testing"

	"github.com/vdpp/vdpp/plan"
)

// BenchmarkEngine runs a 7-stage, 28-step pipeline (4 steps a stage, encode
// on the first, decode on the last) with the trace off, and reports the
// engine's events per second.
func BenchmarkEngine(b *testing.B) {
	for _, mode := range []plan.Handoff{plan.HandoffBlocking, plan.HandoffBuffered} {
		b.Run(string(mode), func(b *testing.B) {
			s := spec{
				stepMS:  []float64{300, 300, 300, 300, 300, 300, 300},
				steps:   []int{4, 4, 4, 4, 4, 4, 4},
				firstMS: []float64{800, 800, 800, 800, 800, 800, 800},
				encMS:   40, decMS: 900, linkUS: 15, bwGBps: 20, setupMS: 50,
				samples: 10_000,
				handoff: mode,
			}
			p := s.plan()
			var events int64
			b.ReportAllocs()
			for b.Loop() {
				r, err := Run(p, Options{})
				if err != nil {
					b.Fatal(err)
				}
				events += r.Events
			}
			b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(float64(events)/float64(b.N), "events/op")
		})
	}
}
