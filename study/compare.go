package study

import (
	"fmt"
	"time"

	"github.com/vdpp/vdpp/plan"
	"github.com/vdpp/vdpp/sim"
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
	// HindsightMean is the plan simulated with the measured run's mean
	// costs (Hindsight's profile, without the replay): what the best
	// profile of that run would have predicted. Its difference from
	// Hindsight is what the run's variation from sample to sample cost.
	HindsightMean *timeline.Summary
	// Range is the plan's predicted range for the prediction's samples,
	// and RangeChecks where the measured headline metrics fell against it;
	// both nil until AddRange (which needs the plan and its profile).
	Range       *Range
	RangeChecks []RangeCheck
	// Warnings are what looks odd about the inputs without making the
	// comparison wrong.
	Warnings []string
	// NotComparable says why the two runs, each well formed, do not
	// measure the prediction: they are of different plans, the measured
	// run was interrupted or failed, or the two have different numbers of
	// samples. The comparison is still made, but its errors are not the
	// prediction's; a report says so in its verdict.
	NotComparable []string
}

// CompareFiles reads a predicted and a measured timeline file, checks
// that each is one a run wrote (timeline.CheckRun), and compares them as
// Compare does, naming the files in its messages.
func CompareFiles(predicted, measured string, p *plan.Plan, date time.Time) (*Comparison, error) {
	pred, err := readRun(predicted)
	if err != nil {
		return nil, err
	}
	meas, err := readRun(measured)
	if err != nil {
		return nil, err
	}
	return compare(pred, meas, predicted, measured, p, date)
}

// readRun reads a timeline file and checks it as CheckRun does.
func readRun(path string) (*timeline.Timeline, error) {
	tl, err := timeline.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if err := tl.CheckRun(path); err != nil {
		return nil, err
	}
	return tl, nil
}

// Compare sets a predicted timeline against a measured one. With a plan p
// (nil for none) it adds the data-parallel baseline and, when the
// measurement comes from the executor, the hindsight simulation, whose
// profile is dated date (see Hindsight). It is an error when a timeline
// is not one a run wrote (timeline.CheckRun), when the two are in the
// wrong order, or when p is not the plan the prediction ran; two runs
// that cannot be compared for another reason are listed in NotComparable.
func Compare(pred, meas *timeline.Timeline, p *plan.Plan, date time.Time) (*Comparison, error) {
	for _, x := range []struct {
		tl   *timeline.Timeline
		name string
	}{{pred, "the predicted timeline"}, {meas, "the measured timeline"}} {
		if err := x.tl.CheckRun(x.name); err != nil {
			return nil, err
		}
	}
	return compare(pred, meas, "the predicted timeline", "the measured one", p, date)
}

func compare(pred, meas *timeline.Timeline, predName, measName string, p *plan.Plan, date time.Time) (*Comparison, error) {
	switch ps, ms := pred.Meta.Source, meas.Meta.Source; {
	case ps == "exec" && ms == "sim":
		return nil, fmt.Errorf("%s is from exec (a measurement) and %s from sim (a prediction): the order is PREDICTED MEASURED", predName, measName)
	case ps != "sim":
		return nil, fmt.Errorf("%s is from %s, not a prediction: PREDICTED is a timeline.json written by vdsim run", predName, ps)
	case ms != "exec":
		return nil, fmt.Errorf("%s is from %s, not a measurement: MEASURED is a timeline.json written by vdexec run", measName, ms)
	}
	if err := checkPlanOf(p, pred, predName); err != nil {
		return nil, err
	}
	c := &Comparison{
		PredictedTimeline: pred, MeasuredTimeline: meas,
		Predicted: pred.Summary(), Measured: meas.Summary(),
		Plan: p,
	}
	c.NotComparable = notComparable(pred, meas)
	if (pred.Meta.PlanHash == "") != (meas.Meta.PlanHash == "") {
		c.warn("only one of the two timelines has a plan hash: whether both ran the same version of plan %q cannot be checked", pred.Meta.Plan)
	}
	if meas.Meta.PlannedSamples == 0 {
		c.warn("%s does not say how many samples its run was asked for, or whether it finished (it was written before timelines said so): a cut-short run cannot be told from a whole one", measName)
	}
	if p == nil {
		c.BaselineNote = "no plan given"
		return c, nil
	}
	c.Baseline, c.BaselineNote = compareBaseline(p, c.Predicted.Metrics.Samples)
	if meas.Meta.Source == "exec" {
		var h *Run
		if h, c.HindsightErr = SimulateHindsight(p, meas, date); h != nil {
			c.Hindsight = h.Summary()
			if hm, err := Simulate(h.Plan, false); err == nil {
				c.HindsightMean = hm.Summary()
			}
		}
	}
	return c, nil
}

// checkPlanOf checks that p (nil: nothing to check) is the plan the
// prediction ran: the same name and, when the timeline has a plan hash,
// the same hash once p has the prediction's sample count (vdsim run
// --samples N is the same plan for a comparison).
func checkPlanOf(p *plan.Plan, pred *timeline.Timeline, predName string) error {
	if p == nil {
		return nil
	}
	where := "the plan"
	if p.File != "" {
		where = p.File
	}
	if p.Name != pred.Meta.Plan {
		return fmt.Errorf("--plan %s is plan %q, but %s is of plan %q: give the plan both runs are of", where, p.Name, predName, pred.Meta.Plan)
	}
	if pred.Meta.PlanHash == "" {
		return nil
	}
	q := p
	if n := pred.Meta.PlannedSamples; n > 0 && n != p.Workload.Samples {
		q = p.Clone()
		if err := q.Apply(plan.Overrides{Samples: &n}); err != nil {
			return fmt.Errorf("--plan %s: with the prediction's %d samples: %w", where, n, err)
		}
	}
	if h := q.Hash(); h != pred.Meta.PlanHash {
		return fmt.Errorf("--plan %s (hash %s) is not the plan %s ran (hash %s), though both are named %q: the plan file changed since, "+
			"or the run used what-if flags other than --samples (--steps, --devices, --seed, ...)", where, h, predName, pred.Meta.PlanHash, p.Name)
	}
	return nil
}

// notComparable lists why two well-formed runs do not test the
// prediction (see Comparison.NotComparable).
func notComparable(pred, meas *timeline.Timeline) []string {
	var out []string
	pm, mm := &pred.Meta, &meas.Meta
	switch {
	case pm.Plan != mm.Plan:
		out = append(out, fmt.Sprintf("the two runs are of different plans (%q predicted, %q measured)", pm.Plan, mm.Plan))
	case pm.PlanHash != "" && mm.PlanHash != "" && pm.PlanHash != mm.PlanHash:
		out = append(out, fmt.Sprintf("the two runs are of different versions of plan %q (plan hash %s predicted, %s measured): the plan changed between them, or what-if flags differed",
			pm.Plan, pm.PlanHash, mm.PlanHash))
	}
	for _, r := range []struct {
		m    *timeline.Meta
		n    int
		side string
	}{{pm, len(pred.Samples), "predicted"}, {mm, len(meas.Samples), "measured"}} {
		of := ""
		if r.m.PlannedSamples > 0 {
			of = fmt.Sprintf(" of %d", r.m.PlannedSamples)
		}
		switch {
		case r.m.Error != "":
			out = append(out, fmt.Sprintf("the %s run failed after %d%s samples: %s", r.side, r.n, of, r.m.Error))
		case r.m.Interrupted:
			out = append(out, fmt.Sprintf("the %s run was interrupted after %d%s samples", r.side, r.n, of))
		}
	}
	if a, b := len(pred.Samples), len(meas.Samples); a != b {
		fewer := "fewer"
		if b > a {
			fewer = "more"
		}
		out = append(out, fmt.Sprintf("the measured run has %s samples (%d) than the prediction (%d): the metrics are of different workloads", fewer, b, a))
	}
	return out
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
// spent, for as many samples as the measurement has: each piece of work
// of each micro-batch as long as it took in the run (ReplayOf), and the
// run's mean costs (Hindsight, its profile dated date) for any the run did
// not do (a micro-batch formed otherwise).
func SimulateHindsight(p *plan.Plan, measured *timeline.Timeline, date time.Time) (*Run, error) {
	hp, err := Hindsight(p, measured, date)
	if err != nil {
		return nil, err
	}
	n := len(measured.Samples)
	if err := hp.Apply(plan.Overrides{Samples: &n}); err != nil {
		return nil, fmt.Errorf("study: hindsight: %w", err)
	}
	return simulateWith(hp, sim.Options{Trace: true, Replay: ReplayOf(measured, hp.Layout.Handoff == plan.HandoffBlocking)})
}
