package timeline

import (
	"strings"
	"testing"
)

// onePipeline is a pipeline of fill ns to its first completion, then one
// completion every gap ns, n samples in all, released at 0.
func onePipeline(n int, fill, gap int64) *Timeline {
	tl := &Timeline{Meta: Meta{Plan: "p", Source: "sim", Devices: []string{"d0"}, Steps: 1, PlannedSamples: n}}
	for i := range n {
		done := fill + int64(i)*gap
		tl.AddSpan(Span{Device: "d0", Kind: KindStep, Samples: []int{i}, FirstStep: 0, LastStep: 0, Start: done - gap, End: done})
		tl.AddSample(Sample{ID: i, Release: 0, Done: done})
	}
	return tl
}

// The steady-state rule: meaningful once the window from a pipeline's
// first completion to its last is at least as long as the time to its
// first completion.
func TestSteadyStateRule(t *testing.T) {
	for _, c := range []struct {
		n         int
		fill, gap int64
		few       bool
	}{
		{1, 10, 2, true},  // one sample: no window at all
		{5, 10, 2, true},  // window 8 < fill 10
		{6, 10, 2, false}, // window 10 = fill 10
		{2, 2, 2, false},  // data parallel, two samples a device: window 2 = fill 2
	} {
		m := onePipeline(c.n, c.fill, c.gap).Metrics()
		if m.TooFewSamples != c.few {
			t.Errorf("%d samples, fill %d, gap %d: too few samples %v, want %v", c.n, c.fill, c.gap, m.TooFewSamples, c.few)
		}
		if want := float64(c.n) / Seconds(m.MakespanNS); m.OverallThroughput != want {
			t.Errorf("%d samples: overall throughput %v, want %v", c.n, m.OverallThroughput, want)
		}
		col, _ := LookupColumn("throughput")
		if got := col.Text(&m); (got == "n/a (too few samples)") != c.few {
			t.Errorf("%d samples: throughput column %q", c.n, got)
		}
	}
}

func TestCheckRun(t *testing.T) {
	if err := onePipeline(3, 10, 2).CheckRun("ok.json"); err != nil {
		t.Errorf("a whole run: %v", err)
	}
	cut := onePipeline(3, 10, 2)
	cut.Samples = cut.Samples[:2]
	if err := cut.CheckRun("cut.json"); err == nil || !strings.Contains(err.Error(), "cut.json: 2 sample records, but meta.planned_samples is 3") {
		t.Errorf("a cut run: %v", err)
	}
	cut.Meta.Interrupted = true
	if err := cut.CheckRun("cut.json"); err != nil {
		t.Errorf("an interrupted run is well formed: %v", err)
	}
	steps := onePipeline(3, 10, 2)
	steps.Meta.Steps = 2
	if err := steps.CheckRun("steps.json"); err == nil || !strings.Contains(err.Error(), "step 1 never ran") {
		t.Errorf("a run missing steps: %v", err)
	}
	if err := (&Timeline{}).CheckRun("empty.json"); err == nil || strings.Count(err.Error(), "empty.json: ") < 4 {
		t.Errorf("an empty timeline: %v", err)
	}
}
