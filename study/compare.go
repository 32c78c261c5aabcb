package study

import (
	"fmt"
	"time"

	"github.com/vdpp/vdpp/plan"
	"github.com/vdpp/vdpp/timeline"
)

// Comparison is a predicted and a measured run of one plan, with what a
// report sets beside them: the data-parallel baseline and, for a measured
// run of the executor, the hindsight simulation (see Hindsight).
type Comparison struct {
	// PredictedTimeline and MeasuredTimeline are the two timelines.
	PredictedTimeline, MeasuredTimeline *timeline.Timeline
	// Predicted and Measured are their metadata and metrics.
	Predicted, Measured *timeline.Summary
	// Plan is the plan both runs are of; nil when none was given.
	Plan *plan.Plan
	// Baseline is the plan as data parallel, predicted for as many samples
	// as the prediction has; nil with the reason in BaselineNote.
	Baseline     *timeline.Summary
	BaselineNote string
	// Hindsight is the plan simulated again with the costs the measured run
	// spent; nil without a plan, when the measurement is not from the
	// executor, or when it failed (HindsightErr says why).
	Hindsight    *timeline.Summary
	HindsightErr error
	// Warnings are what looks wrong about the inputs without stopping the
	// comparison: the two timelines in the wrong order, of different plans.
	Warnings []string
}

// CompareFiles reads a predicted and a measured timeline file and compares
// them as Compare does, naming the files in its warnings.
func CompareFiles(predicted, measured string, p *plan.Plan, date time.Time) (*Comparison, error) {
	pred, err := timeline.ReadFile(predicted)
	if err != nil {
		return nil, err
	}
	meas, err := timeline.ReadFile(measured)
	if err != nil {
		return nil, err
	}
	return compare(pred, meas, predicted, measured, p, date), nil
}

// Compare sets a predicted timeline against a measured one. With a plan p
// (nil for none) it adds the data-parallel baseline and, when the
// measurement comes from the executor, the hindsight simulation, whose
// profile is dated date (see Hindsight).
func Compare(pred, meas *timeline.Timeline, p *plan.Plan, date time.Time) *Comparison {
	return compare(pred, meas, "the predicted timeline", "the measured one", p, date)
}

func compare(pred, meas *timeline.Timeline, predName, measName string, p *plan.Plan, date time.Time) *Comparison {
	c := &Comparison{
		PredictedTimeline: pred, MeasuredTimeline: meas,
		Predicted: pred.Summary(), Measured: meas.Summary(),
		Plan: p,
	}
	if pred.Meta.Source == "exec" && meas.Meta.Source == "sim" {
		c.warn("%s is from exec and %s from sim; the order is PREDICTED MEASURED", predName, measName)
	}
	if pred.Meta.Plan != meas.Meta.Plan {
		c.warn("the timelines are of different plans (%q and %q)", pred.Meta.Plan, meas.Meta.Plan)
	}
	if p == nil {
		c.BaselineNote = "no plan given"
		return c
	}
	if p.Name != pred.Meta.Plan {
		c.warn("the plan is %q but the predicted timeline is of %q", p.Name, pred.Meta.Plan)
	}
	c.Baseline, c.BaselineNote = compareBaseline(p, c.Predicted.Metrics.Samples)
	if meas.Meta.Source == "exec" {
		var h *Run
		if h, c.HindsightErr = SimulateHindsight(p, meas, date); h != nil {
			c.Hindsight = h.Summary()
		}
	}
	return c
}

func (c *Comparison) warn(format string, args ...any) {
	c.Warnings = append(c.Warnings, fmt.Sprintf(format, args...))
}

// compareBaseline is the baseline of p for the given number of samples.
func compareBaseline(p *plan.Plan, samples int) (*timeline.Summary, string) {
	q := p
	if samples > 0 && p.Profile != nil && !IsDataParallel(p) {
		q = p.Clone()
		if err := q.Apply(plan.Overrides{Samples: &samples}); err != nil {
			return nil, oneLine(err)
		}
	}
	run, why := Baseline(q, false)
	if run == nil {
		return nil, why
	}
	return run.Summary(), ""
}

// SimulateHindsight simulates p again with the costs the measured run
// spent (Hindsight, its profile dated date), for as many samples as the
// measurement has.
func SimulateHindsight(p *plan.Plan, measured *timeline.Timeline, date time.Time) (*Run, error) {
	hp, err := Hindsight(p, measured, date)
	if err != nil {
		return nil, err
	}
	n := len(measured.Samples)
	if err := hp.Apply(plan.Overrides{Samples: &n}); err != nil {
		return nil, fmt.Errorf("study: hindsight: %w", err)
	}
	return Simulate(hp, false)
}
