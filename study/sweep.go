package study

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/vdpp/vdpp/plan"
	"github.com/vdpp/vdpp/sim"
	"github.com/vdpp/vdpp/timeline"
)

// LayoutKind is a family of layouts that a sweep tries on each device count.
type LayoutKind string

// Layout kinds.
const (
	// LayoutPipeline is one pipeline whose N stages split the steps.
	LayoutPipeline LayoutKind = "pipeline"
	// LayoutDataParallel is N pipelines of one stage: each device runs
	// whole samples.
	LayoutDataParallel LayoutKind = "dp"
	// LayoutHybrid is R pipelines of N/R stages, for every R that divides
	// N with 1 < R < N.
	LayoutHybrid LayoutKind = "hybrid"
)

// ParseLayoutKinds parses a comma- or space-separated list of layout kinds
// ("pipeline,dp,hybrid"; "data-parallel" and "data_parallel" mean dp).
func ParseLayoutKinds(s string) ([]LayoutKind, error) {
	var out []LayoutKind
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' }) {
		switch k := LayoutKind(f); k {
		case LayoutPipeline, LayoutDataParallel, LayoutHybrid:
			out = append(out, k)
		case "data-parallel", "data_parallel":
			out = append(out, LayoutDataParallel)
		default:
			return nil, fmt.Errorf("study: %q is not a layout; want pipeline, dp or hybrid, comma-separated", f)
		}
		if slices.Contains(out[:len(out)-1], out[len(out)-1]) {
			return nil, fmt.Errorf("study: layout %q is given twice in %q", f, s)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("study: no layout given; want pipeline, dp or hybrid, comma-separated")
	}
	return out, nil
}

// Name is the kind in words: "pipeline", "data parallel", "hybrid".
func (k LayoutKind) Name() string {
	if k == LayoutDataParallel {
		return "data parallel"
	}
	return string(k)
}

// Replicas lists the pipeline counts of layouts of this kind on n devices
// (none for a hybrid on a prime n).
func (k LayoutKind) Replicas(n int) []int {
	switch k {
	case LayoutPipeline:
		return []int{1}
	case LayoutDataParallel:
		return []int{n}
	}
	var out []int
	for r := 2; r < n; r++ {
		if n%r == 0 {
			out = append(out, r)
		}
	}
	return out
}

// DefaultCounts are the device counts a sweep of a plan of n devices
// tries: 1, 2, 4, … below n, and n (1, 2, 4, 8 when n is 1).
func DefaultCounts(n int) []int {
	if n <= 1 {
		return []int{1, 2, 4, 8}
	}
	var out []int
	for k := 1; k < n; k *= 2 {
		out = append(out, k)
	}
	return append(out, n)
}

// SweepRow is one layout of a sweep: Replicas pipelines of Stages stages
// on Devices devices, and its metrics, or why it could not run.
type SweepRow struct {
	Kind     LayoutKind
	Devices  int
	Replicas int // pipelines
	Stages   int // stages per pipeline
	// Metrics are the run's metrics; nil when the layout could not run.
	Metrics *timeline.Metrics
	// Err says why the layout could not run.
	Err error
}

// Series names the row's line in a scaling chart: its kind, and for a
// hybrid its pipeline count.
func (r SweepRow) Series() string {
	switch r.Kind {
	case LayoutPipeline:
		return "pipeline (1 × N stages)"
	case LayoutDataParallel:
		return "data parallel (N × 1 stage)"
	}
	return fmt.Sprintf("hybrid (%d pipelines)", r.Replicas)
}

// SweepResult is what Sweep returns.
type SweepResult struct {
	// Plan is the plan as swept: the given plan, with an explicit layout
	// replaced by even assignment (see Notes).
	Plan *plan.Plan
	// Rows are the layouts, by device count, then kind, then pipelines.
	Rows []SweepRow
	// Notes say what the sweep changed in the plan.
	Notes []string
}

// Sweep simulates p on each device count (copies of its first device,
// which must be like the others) in each layout kind, with p's workload,
// and the steps split evenly, or balanced if p says so. A layout that
// cannot run (too many stages for the steps, out of memory) is a row with
// its error, not a failure; a plan without costs is an error that wraps
// ErrNoProfile. p is not changed.
func Sweep(p *plan.Plan, counts []int, kinds []LayoutKind) (*SweepResult, error) {
	return SweepWatched(p, counts, kinds, nil)
}

// SweepWatched is Sweep with a Watch (nil for none); Progress.Run counts
// the rows. When the Watch stops it, the error wraps the Watch's.
func SweepWatched(p *plan.Plan, counts []int, kinds []LayoutKind, w Watch) (*SweepResult, error) {
	if p.Profile == nil {
		return nil, fmt.Errorf("study: sweep: plan %s: %w", p.Name, ErrNoProfile)
	}
	if len(counts) == 0 || len(kinds) == 0 {
		return nil, errors.New("study: sweep: no device counts or no layout kinds")
	}
	q := p.Clone()
	res := &SweepResult{Plan: q}
	if q.Layout.Assignment == plan.AssignExplicit {
		res.Notes = append(res.Notes, q.Name+" has an explicit layout; the sweep splits the steps evenly instead")
		q.Layout.Assignment = plan.AssignEven
		q.Layout.Stages, q.Layout.Pipelines = nil, nil
	}
	for _, n := range counts {
		for _, k := range kinds {
			for _, r := range k.Replicas(n) {
				res.Rows = append(res.Rows, SweepRow{Kind: k, Devices: n, Replicas: r, Stages: n / r})
			}
		}
	}
	for i := range res.Rows {
		row := &res.Rows[i]
		if err := w.start(i+1, len(res.Rows), q.Workload.Samples); err != nil {
			return nil, fmt.Errorf("study: sweep: stopped before row %d of %d: %w", i+1, len(res.Rows), err)
		}
		var stop *sim.StoppedError
		row.Metrics, row.Err = simulateOn(q, row.Devices, row.Replicas, w.check(i+1, len(res.Rows)))
		if errors.As(row.Err, &stop) {
			return nil, fmt.Errorf("study: sweep: row %d of %d (%s on %d devices): %w", i+1, len(res.Rows), row.Kind.Name(), row.Devices, row.Err)
		}
	}
	return res, nil
}

// Ran counts the rows that were simulated.
func (r *SweepResult) Ran() int {
	n := 0
	for _, row := range r.Rows {
		if row.Metrics != nil {
			n++
		}
	}
	return n
}

// simulateOn simulates p on n devices as r pipelines of n/r stages.
func simulateOn(p *plan.Plan, n, r int, check func(done, total int) error) (*timeline.Metrics, error) {
	q := p.Clone()
	if err := q.Apply(plan.Overrides{Devices: &n, Replicas: &r}); err != nil {
		return nil, err
	}
	run, err := simulate(q, false, check)
	if err != nil {
		return nil, err
	}
	return &run.Metrics, nil
}
