package timeline_test

import (
	"fmt"

	"github.com/vdpp/vdpp/timeline"
)

// A two-stage pipeline of two samples released together: the metrics of a
// hand-built timeline.
func ExampleTimeline_Metrics() {
	const s = int64(1_000_000_000)
	tl := &timeline.Timeline{Meta: timeline.Meta{Plan: "demo", Source: "sim", Devices: []string{"gpu0", "gpu1"}}}
	for i := 0; i < 2; i++ {
		t0 := int64(i) * 2 * s
		tl.AddSpan(timeline.Span{Device: "gpu0", Kind: timeline.KindStep, Samples: []int{i}, Stage: 0, FirstStep: 0, LastStep: 4, Start: t0, End: t0 + 2*s})
		tl.AddSpan(timeline.Span{Device: "gpu1", Kind: timeline.KindStep, Samples: []int{i}, Stage: 1, FirstStep: 5, LastStep: 9, Start: t0 + 2*s, End: t0 + 4*s})
		tl.AddSample(timeline.Sample{ID: i, Release: 0, Done: t0 + 4*s})
	}
	m := tl.Metrics()
	fmt.Printf("first-sample latency %.1f s, throughput %.2f samples/s, makespan %.1f s\n",
		timeline.Seconds(m.FirstLatencyNS), m.Throughput, timeline.Seconds(m.MakespanNS))
	for _, d := range m.Devices {
		fmt.Printf("%s: utilisation %.2f, fill %.0f s, drain %.0f s\n", d.Device, d.Utilisation, timeline.Seconds(d.FillNS), timeline.Seconds(d.DrainNS))
	}
	// Output:
	// first-sample latency 4.0 s, throughput 0.50 samples/s, makespan 6.0 s
	// gpu0: utilisation 0.67, fill 0 s, drain 2 s
	// gpu1: utilisation 0.67, fill 2 s, drain 0 s
}

// One column of the metric table: its label, its JSON key and its value,
// formatted as every table and report writes it.
func ExampleLookupColumn() {
	const s = int64(1_000_000_000)
	tl := &timeline.Timeline{Meta: timeline.Meta{Plan: "demo", Source: "sim", Devices: []string{"gpu0"}}}
	tl.AddSpan(timeline.Span{Device: "gpu0", Kind: timeline.KindStep, Samples: []int{0}, FirstStep: 0, LastStep: 9, Start: 0, End: 4 * s})
	tl.AddSample(timeline.Sample{ID: 0, Release: 0, Done: 4 * s})
	m := tl.Metrics()
	c, _ := timeline.LookupColumn("first_latency")
	fmt.Printf("%s (%s): %s\n", c.Label, c.JSONKey(), c.Text(&m))
	// Output:
	// first-sample latency (first_latency_ns): 4.00 s
}
