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
	c, err := Compare(pred, meas, p, day)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Warnings) != 0 || c.HindsightErr != nil || len(c.NotComparable) != 0 {
		t.Fatalf("warnings %q, hindsight error %v, not comparable %q", c.Warnings, c.HindsightErr, c.NotComparable)
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
	c, err := Compare(pred, stretched(pred, 1, 1), p, day)
	if err != nil {
		t.Fatal(err)
	}
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
	changed := stretched(pred, 1, 1)
	changed.Meta.PlanHash = "0123456789abcdef"
	cut := stretched(pred, 1, 1)
	cut.Meta.Interrupted = true
	cut.Samples = cut.Samples[:1]
	old := stretched(pred, 1, 1)
	old.Meta.PlannedSamples = 0
	nohash := stretched(pred, 1, 1)
	nohash.Meta.PlanHash = ""
	for _, c := range []struct {
		name          string
		pred, meas    *timeline.Timeline
		p             *plan.Plan
		warnings      []string
		notComparable []string
		note          string
		hindsight     bool
	}{
		{"no plan", pred, meas, nil, nil, nil, "no plan given", false},
		{"other plans", pred, other, nil, nil, []string{"different plans"}, "no plan given", false},
		{"plan changed", pred, changed, nil, nil, []string{"different versions of plan"}, "no plan given", false},
		{"interrupted", pred, cut, p, nil, []string{"the measured run was interrupted after 1 of 2 samples", "fewer samples (1) than the prediction (2)"}, "", true},
		{"old measurement", pred, old, nil, []string{"does not say how many samples"}, nil, "no plan given", false},
		{"no plan hash", pred, nohash, nil, []string{"only one of the two timelines has a plan hash"}, nil, "no plan given", false},
		{"all well", pred, meas, p, nil, nil, "", true},
	} {
		got, err := Compare(c.pred, c.meas, c.p, day)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		for _, x := range []struct {
			kind      string
			got, want []string
		}{{"warnings", got.Warnings, c.warnings}, {"not comparable", got.NotComparable, c.notComparable}} {
			all := strings.Join(x.got, "\n")
			for _, w := range x.want {
				if !strings.Contains(all, w) {
					t.Errorf("%s: %s %q lack %q", c.name, x.kind, x.got, w)
				}
			}
			if len(x.want) == 0 && len(x.got) != 0 {
				t.Errorf("%s: %s %q, want none", c.name, x.kind, x.got)
			}
		}
		if !strings.Contains(got.BaselineNote, c.note) || (c.note == "") != (got.Baseline != nil) {
			t.Errorf("%s: baseline %v, note %q, want note %q", c.name, got.Baseline != nil, got.BaselineNote, c.note)
		}
		if (got.Hindsight != nil) != c.hindsight {
			t.Errorf("%s: hindsight %v (%v), want %v", c.name, got.Hindsight != nil, got.HindsightErr, c.hindsight)
		}
	}
}

// What makes a comparison wrong is an error: the runs the wrong way round,
// a plan that is not the prediction's, a timeline that is not a whole run.
func TestCompareErrors(t *testing.T) {
	p := withSamples(t, load(t, ref7), 2)
	pred := predicted(t, p)
	meas := stretched(pred, 1, 1)
	dp := load(t, "../configs/svd-14f-320x576-7xa5000-dp.yaml")
	steps := p.Clone()
	if err := steps.Apply(plan.Overrides{Steps: ptr(20)}); err != nil {
		t.Fatal(err)
	}
	truncated := stretched(pred, 1, 1)
	truncated.Samples = truncated.Samples[:1]
	stray := stretched(pred, 1, 1)
	stray.Spans[0].Device = "gpu99"
	for _, c := range []struct {
		name       string
		pred, meas *timeline.Timeline
		p          *plan.Plan
		want       string
	}{
		{"swapped", meas, pred, p, "the order is PREDICTED MEASURED"},
		{"plan of another", pred, meas, dp, `is plan "svd-14f-320x576-7xa5000-dp", but the predicted timeline is of plan "svd-14f-320x576-7xa5000"`},
		{"plan with other steps", pred, meas, steps, "is not the plan the predicted timeline ran"},
		{"empty", pred, &timeline.Timeline{}, nil, "meta.source is missing"},
		{"truncated", pred, truncated, nil, "the samples list is truncated"},
		{"stray device", pred, stray, nil, `device "gpu99" is not in meta.devices`},
		{"sim against sim", pred, pred, p, "the measured one is from sim, not a measurement"},
		{"exec against exec", meas, meas, p, "the predicted timeline is from exec, not a prediction"},
	} {
		_, err := Compare(c.pred, c.meas, c.p, day)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one with %q", c.name, err, c.want)
		}
	}
	// The plan file of the prediction is its plan whatever its sample count.
	if _, err := Compare(pred, meas, load(t, ref7), day); err != nil {
		t.Errorf("the plan file with its own sample count: %v", err)
	}
}

func ptr[T any](v T) *T { return &v }

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
	if _, err := CompareFiles(b, a, nil, day); err == nil || !strings.Contains(err.Error(), b+" is from exec") || !strings.Contains(err.Error(), a+" from sim") {
		t.Errorf("the wrong way round: %v, want an error naming the files", err)
	}
	if _, err := CompareFiles(a, b, nil, day); err != nil {
		t.Error(err)
	}
	if _, err := CompareFiles(a, filepath.Join(dir, "missing.json"), nil, day); err == nil {
		t.Error("compared with a missing file")
	}
	bad := stretched(pred, 1, 1)
	bad.Spans = nil
	c := filepath.Join(dir, "c.json")
	if err := timeline.WriteFile(c, bad); err != nil {
		t.Fatal(err)
	}
	if _, err := CompareFiles(a, c, nil, day); err == nil || !strings.HasPrefix(err.Error(), c+": no spans") {
		t.Errorf("a timeline without spans: %v, want an error naming the file", err)
	}
}
