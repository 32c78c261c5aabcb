package study

import (
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vdpp/vdpp/plan"
	"github.com/vdpp/vdpp/timeline"
)

// predicted simulates p with its full timeline.
func predicted(t *testing.T, p *plan.Plan) *timeline.Timeline {
	t.Helper()
	run, err := Simulate(p, true)
	if err != nil {
		t.Fatal(err)
	}
	return run.Result.Timeline
}

// stretched is tl as if measured by the executor on a machine where every
// time is num/den as long.
func stretched(tl *timeline.Timeline, num, den int64) *timeline.Timeline {
	m := *tl
	m.Meta.Source = "exec"
	m.Spans = append([]timeline.Span(nil), tl.Spans...)
	m.Samples = append([]timeline.Sample(nil), tl.Samples...)
	for i := range m.Spans {
		m.Spans[i].Start = m.Spans[i].Start * num / den
		m.Spans[i].End = m.Spans[i].End * num / den
	}
	for i := range m.Samples {
		m.Samples[i].Done = m.Samples[i].Done * num / den
	}
	return &m
}

// A measurement that is the prediction stretched by 10%: every metric's
// error is that of the stretch, and hindsight, which reads the costs off
// the measurement, gives the measurement back.
func TestCompareStretchedRun(t *testing.T) {
	p := withSamples(t, load(t, ref7), 6)
	pred := predicted(t, p)
	meas := stretched(pred, 11, 10)
	c := Compare(pred, meas, p, day)
	if len(c.Warnings) != 0 || c.HindsightErr != nil {
		t.Fatalf("warnings %q, hindsight error %v", c.Warnings, c.HindsightErr)
	}
	if !strings.Contains(c.Measured.Meta.Source, "exec") || c.Predicted.Metrics.Samples != 6 {
		t.Errorf("summaries %+v / %+v", c.Predicted.Meta, c.Measured.Meta)
	}
	for _, key := range []string{"first_latency", "makespan"} {
		col, _ := timeline.LookupColumn(key)
		e := timeline.RelError(col.Get(&c.Predicted.Metrics), col.Get(&c.Measured.Metrics))
		if want := 10.0/11 - 1; math.Abs(e-want) > 1e-6 {
			t.Errorf("%s error %v, want %v", key, e, want)
		}
	}
	if c.Hindsight == nil {
		t.Fatal("no hindsight")
	}
	h, q := c.Hindsight.Metrics, c.Measured.Metrics
	for _, e := range []float64{
		timeline.RelError(float64(h.FirstLatencyNS), float64(q.FirstLatencyNS)),
		timeline.RelError(h.Throughput, q.Throughput),
	} {
		if math.Abs(e) > 0.01 {
			t.Errorf("hindsight off by %v, want within 1%% (first latency %d against %d, throughput %v against %v)",
				e, h.FirstLatencyNS, q.FirstLatencyNS, h.Throughput, q.Throughput)
		}
	}
	if c.Baseline == nil || c.Baseline.Metrics.Samples != 6 || c.BaselineNote != "" {
		t.Errorf("baseline %+v, note %q", c.Baseline, c.BaselineNote)
	}
}

// The baseline is predicted for as many samples as the prediction has,
// whatever the plan file says.
func TestCompareBaselineSamples(t *testing.T) {
	p := load(t, ref7)
	pred := predicted(t, withSamples(t, p, 3))
	c := Compare(pred, stretched(pred, 1, 1), p, day)
	if c.Baseline == nil || c.Baseline.Metrics.Samples != 3 {
		t.Fatalf("baseline %+v (%s), want 3 samples", c.Baseline, c.BaselineNote)
	}
	if p.Workload.Samples == 3 {
		t.Errorf("the test needs a plan of other than 3 samples")
	}
}

func TestCompareWarnings(t *testing.T) {
	p := withSamples(t, load(t, ref7), 2)
	pred := predicted(t, p)
	meas := stretched(pred, 1, 1)
	other := stretched(pred, 1, 1)
	other.Meta.Plan = "another-plan"
	dp := load(t, "../configs/svd-14f-320x576-7xa5000-dp.yaml")
	for _, c := range []struct {
		name       string
		pred, meas *timeline.Timeline
		p          *plan.Plan
		warnings   []string
		note       string
		hindsight  bool
	}{
		{"no plan", pred, meas, nil, nil, "no plan given", false},
		{"swapped", meas, pred, p, []string{"from exec", "PREDICTED MEASURED"}, "", false},
		{"other plans", pred, other, nil, []string{"different plans"}, "no plan given", false},
		{"plan of another", pred, meas, dp, []string{`the plan is "svd-14f-320x576-7xa5000-dp"`}, "already data parallel", true},
		{"sim against sim", pred, pred, p, nil, "", false},
		{"all well", pred, meas, p, nil, "", true},
	} {
		got := Compare(c.pred, c.meas, c.p, day)
		all := strings.Join(got.Warnings, "\n")
		for _, w := range c.warnings {
			if !strings.Contains(all, w) {
				t.Errorf("%s: warnings %q lack %q", c.name, got.Warnings, w)
			}
		}
		if len(c.warnings) == 0 && len(got.Warnings) != 0 {
			t.Errorf("%s: warnings %q, want none", c.name, got.Warnings)
		}
		if !strings.Contains(got.BaselineNote, c.note) || (c.note == "") != (got.Baseline != nil) {
			t.Errorf("%s: baseline %v, note %q, want note %q", c.name, got.Baseline != nil, got.BaselineNote, c.note)
		}
		if (got.Hindsight != nil) != c.hindsight {
			t.Errorf("%s: hindsight %v (%v), want %v", c.name, got.Hindsight != nil, got.HindsightErr, c.hindsight)
		}
	}
}

func TestCompareFiles(t *testing.T) {
	dir := t.TempDir()
	p := withSamples(t, load(t, ref7), 2)
	pred := predicted(t, p)
	a, b := filepath.Join(dir, "a.json"), filepath.Join(dir, "b.json")
	if err := timeline.WriteFile(a, pred); err != nil {
		t.Fatal(err)
	}
	if err := timeline.WriteFile(b, stretched(pred, 1, 1)); err != nil {
		t.Fatal(err)
	}
	c, err := CompareFiles(b, a, nil, day) // the wrong way round
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], b+" is from exec and "+a+" from sim") {
		t.Errorf("warnings %q do not name the files", c.Warnings)
	}
	if _, err := CompareFiles(a, filepath.Join(dir, "missing.json"), nil, day); err == nil {
		t.Error("compared with a missing file")
	}
}
