package study

import (
	"errors"
	"fmt"
	"strings"

	"github.com/vdpp/vdpp/plan"
	"github.com/vdpp/vdpp/sim"
	"github.com/vdpp/vdpp/timeline"
)

// ErrNoProfile is wrapped by the errors of simulating a plan that has no
// cost profile: the simulator has nothing to price its work with.
var ErrNoProfile = errors.New("no cost profile, so it cannot be simulated")

// Run is one simulated plan: the plan, what the simulator returned, and
// the run's metrics.
type Run struct {
	Plan *plan.Plan
	// Result holds the run's metadata and memory table, and its full
	// timeline when it was traced.
	Result  *sim.Result
	Metrics timeline.Metrics
}

// Summary returns the run's metadata and metrics, as a report takes them.
func (r *Run) Summary() *timeline.Summary {
	return &timeline.Summary{Meta: r.Result.Meta, Metrics: r.Metrics}
}

// Simulate runs p through the simulator and computes its metrics as the
// spans stream out (timeline.Accumulator), so that memory does not grow
// with the sample count. With trace, Result.Timeline keeps every span too
// (for a timeline file, a trace or a Gantt chart). A plan without a cost
// profile is an error that wraps ErrNoProfile; one that does not fit in
// memory says what to change.
func Simulate(p *plan.Plan, trace bool) (*Run, error) {
	return SimulateWatched(p, trace, nil)
}

// Progress is where a long study stands, as its Watch sees it.
type Progress struct {
	// Run is the simulation under way (1-based) of at most Runs (1 for a
	// single simulation; a search's Runs counts its candidates).
	Run, Runs int
	// Done and Total are the samples completed in that simulation and its
	// samples.
	Done, Total int
}

// Watch is called while a study simulates: at the start of each
// simulation and every sim.CheckEvery events within one. It may show
// progress; an error it returns stops the study, which returns an error
// wrapping it (a *sim.StoppedError when a simulation was under way). A
// nil Watch is never called.
type Watch func(Progress) error

// check turns w into the simulator's check for simulation run of runs.
func (w Watch) check(run, runs int) func(done, total int) error {
	if w == nil {
		return nil
	}
	return func(done, total int) error { return w(Progress{Run: run, Runs: runs, Done: done, Total: total}) }
}

// start tells w that simulation run of runs, of total samples, starts.
func (w Watch) start(run, runs, total int) error {
	if w == nil {
		return nil
	}
	return w(Progress{Run: run, Runs: runs, Total: total})
}

// SimulateWatched is Simulate with a Watch (nil for none).
func SimulateWatched(p *plan.Plan, trace bool, w Watch) (*Run, error) {
	return simulate(p, trace, w.check(1, 1))
}

func simulate(p *plan.Plan, trace bool, check func(done, total int) error) (*Run, error) {
	return simulateWith(p, sim.Options{Trace: trace, Check: check})
}

// simulateWith is simulate with the simulator's options (a metrics
// accumulator is added as their Recorder).
func simulateWith(p *plan.Plan, opts sim.Options) (*Run, error) {
	if p.Profile == nil {
		return nil, fmt.Errorf("study: plan %s: %w", p.Name, ErrNoProfile)
	}
	acc := timeline.NewAccumulator(p.Devices.Names())
	opts.Recorder = acc
	res, err := sim.Run(p, opts)
	if err != nil {
		var me *sim.MemoryError
		if errors.As(err, &me) {
			return nil, fmt.Errorf("%w; lower the micro-batch, use more stages, or larger devices", err)
		}
		return nil, err
	}
	return &Run{Plan: p, Result: res, Metrics: acc.Result()}, nil
}

// KindOf is the kind of p's resolved layout: data parallel when every
// pipeline is one stage, a pipeline when there is one pipeline of several
// stages, else a hybrid.
func KindOf(p *plan.Plan) LayoutKind {
	switch {
	case IsDataParallel(p):
		return LayoutDataParallel
	case len(p.Pipelines) == 1:
		return LayoutPipeline
	}
	return LayoutHybrid
}

// LayoutLabel names p's layout by its kind and pipelines × stages:
// "pipeline 1×7", "data parallel 7×1", "hybrid 2×2".
func LayoutLabel(p *plan.Plan) string {
	s := 0
	if len(p.Pipelines) > 0 {
		s = len(p.Pipelines[0].Stages)
	}
	return fmt.Sprintf("%s %d×%d", KindOf(p).Name(), len(p.Pipelines), s)
}

// IsDataParallel reports whether every pipeline of p is one stage: each
// device runs whole samples.
func IsDataParallel(p *plan.Plan) bool {
	for _, pl := range p.Pipelines {
		if len(pl.Stages) != 1 {
			return false
		}
	}
	return true
}

// Baseline simulates the data-parallel baseline of p: the same devices,
// workload and costs, each device running whole samples as a pipeline of
// one stage (plan.Plan.DataParallel), traced when trace is set. When there
// is no baseline, run is nil and why says why, in words a report prints
// after "no data-parallel baseline: " (the plan is already data parallel,
// it does not fit, ...).
func Baseline(p *plan.Plan, trace bool) (run *Run, why string) {
	run, why, _ = BaselineWatched(p, trace, nil)
	return run, why
}

// BaselineWatched is Baseline with a Watch; err is the Watch's error
// when it stopped the simulation (run is nil then).
func BaselineWatched(p *plan.Plan, trace bool, w Watch) (run *Run, why string, err error) {
	switch {
	case p.Profile == nil:
		return nil, "the plan has no cost profile", nil
	case IsDataParallel(p):
		return nil, "the plan is already data parallel (one stage per pipeline)", nil
	}
	q, err := p.DataParallel()
	if err == nil {
		run, err = SimulateWatched(q, trace, w)
	}
	var stop *sim.StoppedError
	if errors.As(err, &stop) {
		return nil, "stopped", err
	}
	if err != nil {
		return nil, "data parallel cannot run on these devices: " + oneLine(err), nil
	}
	return run, "", nil
}

// oneLine is err's message with its lines (one per problem) joined by "; ".
func oneLine(err error) string {
	return strings.ReplaceAll(err.Error(), "\n", "; ")
}
