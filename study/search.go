package study

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/vdpp/vdpp/plan"
	"github.com/vdpp/vdpp/sim"
	"github.com/vdpp/vdpp/timeline"
)

// Goal is what a layout search optimises.
type Goal string

// Goals.
const (
	// GoalThroughput: the highest steady-state throughput.
	GoalThroughput Goal = "throughput"
	// GoalLatency: the lowest first-sample latency.
	GoalLatency Goal = "latency"
	// GoalRate: the highest Poisson arrival rate whose p95 sample latency
	// stays within SearchOptions.SLOP95NS.
	GoalRate Goal = "rate"
	// GoalDevices: the fewest devices that reach
	// SearchOptions.TargetThroughput (then the highest throughput).
	GoalDevices Goal = "devices"
)

// Goals lists the goals.
func Goals() []Goal { return []Goal{GoalThroughput, GoalLatency, GoalRate, GoalDevices} }

// DefaultRateSamples is how many Poisson arrivals each simulation of the
// rate goal runs. The p95 of n samples is their ⌈0.95 n⌉-th latency: with
// 500, twenty-five samples lie above it, so one slow sample moves it
// little, and a rate near capacity has 500 arrivals to build the queue
// that shows in the tail.
const DefaultRateSamples = 500

// MaxSearchDevices bounds the devices a search lays out: it builds every
// R × S split of up to that many, so its time and memory grow quickly
// past it (256 identical devices took 32 s and 826 MB).
const MaxSearchDevices = 64

// MaxRateSamples bounds the arrivals of one rate-goal simulation: each
// candidate runs about 15 of them, and times must stay far inside int64
// nanoseconds at the low rates the bisection starts from.
const MaxRateSamples = 100_000

// rateSteps is how many times the rate goal halves its interval: the rate
// is found to 1/2^12 of the candidate's capacity.
const rateSteps = 12

// SearchOptions say what a search looks for and over which space.
type SearchOptions struct {
	Goal Goal
	// SLOFirstNS bounds the first-sample latency (0: no bound).
	SLOFirstNS int64
	// SLOP95NS bounds the p95 sample latency (0: no bound); the rate goal
	// needs it.
	SLOP95NS int64
	// TargetThroughput (samples/s) is what the devices goal must reach.
	TargetThroughput float64
	// MaxDevices bounds the devices a layout uses (0: all of the plan's).
	MaxDevices int
	// MicroBatches are the sizes tried; nil: 1 up to the largest size the
	// profile measured for every device kind of the plan.
	MicroBatches []int
	// RateSamples is the sample count of each simulation of the rate goal
	// (0: DefaultRateSamples).
	RateSamples int
	// NoPrune simulates every candidate that fits in memory (brute force,
	// for checking the bounds).
	NoPrune bool
	// Watch, if set, sees the search's progress (Progress.Run counts the
	// candidates weighed) and can stop it.
	Watch Watch
}

// Fate is what became of a candidate.
type Fate string

// Fates.
const (
	FateBest      Fate = "ranked"    // simulated and meets every constraint
	FateMemory    Fate = "memory"    // does not fit in device memory
	FateBound     Fate = "bound"     // its bound shows it cannot beat the best found
	FateSLO       Fate = "slo"       // misses a latency SLO (by its bound or simulated)
	FateTarget    Fate = "target"    // cannot reach the target throughput
	FateDuplicate Fate = "duplicate" // the same stages as another candidate
	FateFailed    Fate = "failed"    // the simulator refused it
)

// Candidate is one layout the search considered: a plan with its layout
// resolved, the bounds computed from its stage times, and, when simulated,
// its metrics.
type Candidate struct {
	Plan       *plan.Plan
	Label      string
	Devices    int
	Replicas   int
	Stages     int
	Assignment plan.Assignment
	MicroBatch int
	Handoff    plan.Handoff
	// BoundThroughput is an upper bound on its steady-state throughput
	// (samples/s) over the plan's workload; +Inf when none holds.
	BoundThroughput float64
	// Capacity is an upper bound on the sustained rate (samples/s): the
	// slowest stage's rate, summed over pipelines.
	Capacity float64
	// nominalCapacity is Capacity at the profile's mean step times (no
	// jitter allowance): where the rate goal's search starts when jitter
	// leaves Capacity unbounded.
	nominalCapacity float64
	// BoundOverall is an upper bound on its overall throughput (samples /
	// makespan, see timeline.DefOverallThroughput); +Inf when none holds.
	BoundOverall float64
	// BoundFirstNS is a lower bound on its first-sample latency.
	BoundFirstNS int64
	// Metrics are the simulated metrics (nil unless simulated).
	Metrics *timeline.Metrics
	// Rate is, for the rate goal, the highest arrival rate found whose p95
	// latency meets the SLO.
	Rate float64
	// RateCapped is set when the SLO still held at the capacity bound, so
	// that Rate is the bound, not a limit the SLO set.
	RateCapped bool
	Fate       Fate
	// Why says in words why it lost (or, for a ranked one, its place).
	Why string
}

// SearchResult is what a search found.
type SearchResult struct {
	Plan    *plan.Plan
	Options SearchOptions
	// Ranked are the candidates that meet every constraint, best first.
	Ranked []*Candidate
	// All are every candidate considered, in the order they were weighed.
	All []*Candidate
	// Simulated counts the simulations run (the rate goal runs several a
	// candidate); Pruned the candidates that bounds set aside before
	// simulating (bound, SLO or target by bound).
	Simulated, Pruned int
	// Notes say how the space was built and what it left out.
	Notes []string
	// SteadyState says that every ranked candidate has a meaningful
	// steady-state throughput (timeline.DefSteadyState); where one has
	// not, it is ranked by its overall throughput (see Throughput).
	SteadyState bool
	// Overall says that every candidate is ranked by its overall
	// throughput, samples / makespan: the plan's samples are fewer than
	// OverallBelow, so some layout could not reach a steady state.
	Overall bool
}

// Throughput is c's throughput as the search ranks it (0 when c was not
// simulated): its overall throughput when the search ranks every
// candidate so (Overall), else its steady-state figure where that is
// meaningful and its overall throughput where not.
func (r *SearchResult) Throughput(c *Candidate) float64 {
	if c.Metrics == nil {
		return 0
	}
	return reached(c.Metrics, r.Overall)
}

// OverallBelow is the sample count under which a search ranks every
// layout by overall throughput: 2 × devices × the largest micro-batch.
// Below it, data parallel over all the devices with that micro-batch
// cannot have a steady state (timeline.DefSteadyState): some device gets
// fewer than two micro-batches of samples, so nothing steady follows its
// first completion. A steady-state ranking would then leave out, or
// misjudge, the layout that usually wins a batch. Deciding this once,
// before any simulation, gives all candidates one figure, so the bounds
// set aside the same candidates as a brute-force search would. At or
// above it, a layout that still lacks a steady state (a long warm-up or
// fill) is ranked by its overall throughput.
func OverallBelow(maxDevices int, microBatches []int) int {
	return 2 * maxDevices * slices.Max(microBatches)
}

// Best is the winner, or nil when no candidate meets the constraints.
func (r *SearchResult) Best() *Candidate {
	if len(r.Ranked) == 0 {
		return nil
	}
	return r.Ranked[0]
}

// Search finds the best layout of p's devices for a goal. The space is
// every way to split up to MaxDevices of the devices into R pipelines of
// S stages (every R × S, fewer devices than the plan has included), the
// order of the devices in each pipeline where devices or links differ
// (interchangeable devices are taken in list order; orders whose devices,
// links and splits cost the same are kept once), even and balanced
// step assignment, every micro-batch size the profile covers, and
// blocking and buffered hand-off where a pipeline has hand-offs. Encode
// and decode stay on a pipeline's first and last stage: the plan allows
// nothing else for several stages, and a single stage does both. The
// order of the pipelines is not searched: which pipeline takes sample 0,
// and the extra samples when they do not divide evenly, follows the
// device order.
//
// Candidates that do not fit in memory are dropped; the others are
// weighed best bound first, and a candidate is simulated only when its
// bounds say it can still win (see Candidate's bounds) — unless NoPrune.
// p must be resolved with a profile; its workload (samples, arrivals,
// seed) is what each candidate is simulated with, except for the rate
// goal, which sets its own Poisson arrivals.
func Search(p *plan.Plan, opts SearchOptions) (*SearchResult, error) {
	if err := checkSearch(p, &opts); err != nil {
		return nil, err
	}
	s := &searcher{p: p, opts: opts, res: &SearchResult{Plan: p, Options: opts}, signatures: map[string]string{}}
	s.res.Overall = opts.Goal != GoalRate && p.Workload.Samples < OverallBelow(opts.MaxDevices, opts.MicroBatches)
	cands, err := s.candidates()
	if err != nil {
		return nil, err
	}
	s.weigh(cands)
	if s.stopped != nil {
		return nil, fmt.Errorf("study: search: stopped at candidate %d of %d: %w", s.run, s.runs, s.stopped)
	}
	return s.res, nil
}

func checkSearch(p *plan.Plan, o *SearchOptions) error {
	if err := p.Ready(); err != nil {
		return fmt.Errorf("study: search: %w", err)
	}
	if p.Profile == nil {
		return fmt.Errorf("study: search: plan %s: %w", p.Name, ErrNoProfile)
	}
	switch {
	case !slices.Contains(Goals(), o.Goal):
		return fmt.Errorf("study: search: goal %q: want one of throughput, latency, rate, devices", o.Goal)
	case o.Goal == GoalRate && o.SLOP95NS <= 0:
		return fmt.Errorf("study: search: goal rate needs a p95 latency SLO (the rate is the highest whose p95 stays within it)")
	case o.Goal == GoalDevices && !(o.TargetThroughput > 0):
		return fmt.Errorf("study: search: goal devices needs a target throughput > 0 samples/s")
	case o.SLOFirstNS < 0 || o.SLOP95NS < 0:
		return fmt.Errorf("study: search: an SLO must not be negative")
	case o.MaxDevices < 0:
		return fmt.Errorf("study: search: max devices %d must not be negative", o.MaxDevices)
	}
	if o.MaxDevices == 0 || o.MaxDevices > len(p.Devices) {
		o.MaxDevices = len(p.Devices)
	}
	if o.MaxDevices > MaxSearchDevices {
		return fmt.Errorf("study: search: plan %s has %d devices: a search weighs layouts of at most %d (time and memory grow with every device count and its divisors); use --max-devices %d or fewer",
			p.Name, o.MaxDevices, MaxSearchDevices, MaxSearchDevices)
	}
	if o.RateSamples == 0 {
		o.RateSamples = DefaultRateSamples
	}
	if o.RateSamples < 20 || o.RateSamples > MaxRateSamples {
		return fmt.Errorf("study: search: %d samples per rate simulation: want 20 (enough for a p95) to %d", o.RateSamples, MaxRateSamples)
	}
	if o.MicroBatches == nil {
		o.MicroBatches = profileBatches(p)
	}
	if len(o.MicroBatches) == 0 {
		return fmt.Errorf("study: search: no micro-batch sizes to try (the profile has no unet_ms common to the plan's device kinds, or an empty list was given)")
	}
	for _, b := range o.MicroBatches {
		if b < 1 {
			return fmt.Errorf("study: search: micro-batch %d must be at least 1", b)
		}
	}
	return nil
}

// profileBatches is 1 up to the largest micro-batch size the profile
// measured for every device kind of p.
func profileBatches(p *plan.Plan) []int {
	top := math.MaxInt
	for _, d := range p.Devices {
		c := p.Profile.Devices[d.Kind]
		m := 0
		for b := range c.UNetMS {
			m = max(m, b)
		}
		top = min(top, m)
	}
	var out []int
	for b := 1; b <= top; b++ {
		out = append(out, b)
	}
	return out
}

type searcher struct {
	p          *plan.Plan
	opts       SearchOptions
	res        *SearchResult
	best       *Candidate
	signatures map[string]string // cost signature → the first candidate's label
	// run and runs are the candidate being weighed (1-based) and how many
	// there are, for the Watch; stopped is the Watch's error.
	run, runs int
	stopped   error
}

// note adds a line to the result's notes.
func (s *searcher) note(format string, a ...any) {
	s.res.Notes = append(s.res.Notes, fmt.Sprintf(format, a...))
}

// maxJitter is the largest step jitter of the plan's device kinds.
func maxJitter(p *plan.Plan) float64 {
	j := 0.0
	for _, d := range p.Devices {
		j = max(j, p.Profile.Devices[d.Kind].Jitter)
	}
	return j
}

// label names a candidate: "hybrid 2×2 balanced mb 2 buffered [gpu0 gpu1 | gpu2 gpu3]".
func label(q *plan.Plan, a plan.Assignment) string {
	var groups []string
	for _, pl := range q.Pipelines {
		var names []string
		for _, st := range pl.Stages {
			names = append(names, st.Device)
		}
		groups = append(groups, strings.Join(names, " "))
	}
	l := LayoutLabel(q)
	if len(q.Pipelines[0].Stages) > 1 {
		l += " " + string(a)
	}
	l += fmt.Sprintf(" mb %d", q.Layout.MicroBatch)
	if len(q.Pipelines[0].Stages) > 1 {
		l += " " + string(q.Layout.Handoff)
	}
	return l + " [" + strings.Join(groups, " | ") + "]"
}

// sortByBound orders candidates so that the most promising are weighed
// first: by the goal's bound, then by label for a stable order.
func (s *searcher) sortByBound(cands []*Candidate) {
	key := func(c *Candidate) float64 {
		switch s.opts.Goal {
		case GoalLatency:
			return float64(c.BoundFirstNS)
		case GoalRate:
			return -c.Capacity
		}
		return -c.BoundThroughput
	}
	sort.SliceStable(cands, func(i, j int) bool {
		a, b := cands[i], cands[j]
		if s.opts.Goal == GoalDevices && a.Devices != b.Devices {
			return a.Devices < b.Devices
		}
		if ka, kb := key(a), key(b); ka != kb {
			return ka < kb
		}
		return a.Label < b.Label
	})
}

// simulate runs a candidate with the plan's workload.
func (s *searcher) simulate(c *Candidate) bool {
	r, err := simulate(c.Plan, false, s.opts.Watch.check(s.run, s.runs))
	s.res.Simulated++
	var stop *sim.StoppedError
	if errors.As(err, &stop) {
		s.stopped = err
		return false
	}
	if err != nil {
		c.Fate, c.Why = FateFailed, err.Error()
		return false
	}
	c.Metrics = &r.Metrics
	return true
}

// memoryFits reports whether every device of q fits its stages.
func memoryFits(q *plan.Plan) (bool, string) {
	rows, err := sim.Memory(q)
	if err != nil {
		return false, err.Error()
	}
	for _, r := range rows {
		if !r.Fits {
			return false, fmt.Sprintf("%s needs %.2f GiB of %.2f GiB", r.Device, r.NeedGB, r.HaveGB)
		}
	}
	return true, ""
}
