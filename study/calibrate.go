package study

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/vdpp/vdpp/plan"
)

// CalParam is one free parameter of a calibration: a profile number that
// Calibrate fits to measured runs. Every other number of the starting
// profile (memory, encode, decode, host time per step, sample_first_ms,
// link bandwidth, receive time, other device kinds) is kept as it is.
type CalParam int

// The free parameters, in the order tables print them. All are ≥ 0.
const (
	// CalStep is the step cost: unet_ms at micro-batch 1 of the plan's
	// device kind (other measured sizes are scaled by the same factor).
	CalStep CalParam = iota
	// CalWarmup is the extra time of a device's first UNet call:
	// first_call_ms 1 − unet_ms 1.
	CalWarmup
	// CalSample is the per-sample overhead: host work per sample outside
	// the UNet calls, written to sample_last_ms (paid once per sample on
	// the last stage, after decode).
	CalSample
	// CalHop is the per-hop cost: latency_us of the plan's transport
	// (Profile.Transports), paid on every hand-off between two devices.
	CalHop
	// CalSetup is a link's first-use set-up: setup_ms of the transport.
	CalSetup
	// CalSetupPerRank is setup_ms_per_rank of the transport: the extra
	// set-up per rank beyond two.
	CalSetupPerRank
	numCalParams
)

// calParamInfo names each parameter and the profile field it is written
// to; fixOrder is the order in which parameters are held fixed when the
// runs cannot tell them apart (the last ones are the most basic, kept
// free the longest).
var calParamInfo = [numCalParams]struct{ name, field string }{
	CalStep:         {"step cost", "unet_ms 1"},
	CalWarmup:       {"warm-up", "first_call_ms 1 − unet_ms 1"},
	CalSample:       {"per-sample overhead", "sample_last_ms"},
	CalHop:          {"per-hop cost", "latency_us"},
	CalSetup:        {"set-up", "setup_ms"},
	CalSetupPerRank: {"set-up per rank", "setup_ms_per_rank"},
}

var fixOrder = []CalParam{CalSetupPerRank, CalHop, CalSetup, CalSample, CalWarmup, CalStep}

// Name is the parameter in words ("per-hop cost").
func (c CalParam) Name() string { return calParamInfo[c].name }

// Field is the profile field the parameter is written to.
func (c CalParam) Field() string { return calParamInfo[c].field }

// The measured metrics of a run, indices into CalRun.Measured.
const (
	CalFirst    = iota // first-sample latency, seconds
	CalSteady          // steady-state seconds per sample (1 / throughput)
	CalMakespan        // makespan, seconds
	numCalMetrics
)

// CalMetricNames are the metrics' names, as the CSV's columns give them.
var CalMetricNames = [numCalMetrics]string{"first_sample_s", "steady_s_per_sample", "makespan_s"}

// CalRun is one measured run: where it came from, its layout (Replicas
// pipelines over Devices devices, the steps split evenly: 1 replica is a
// pipeline, Devices replicas data parallel), its steps and samples, and
// what was measured (NaN where a metric was not).
type CalRun struct {
	Where    string // "runs.csv:3", "out/run/metrics.json": names the run in messages and tables
	Devices  int
	Replicas int
	Steps    int
	Samples  int
	Measured [numCalMetrics]float64
}

// Label is the run's layout in words: "pipeline 1×4", "data parallel 4×1".
func (r CalRun) Label() string {
	s := r.Devices / max(r.Replicas, 1)
	kind := LayoutHybrid
	switch {
	case s == 1:
		kind = LayoutDataParallel
	case r.Replicas == 1:
		kind = LayoutPipeline
	}
	return fmt.Sprintf("%s %d×%d", kind.Name(), r.Replicas, s)
}

// stages is the run's stages per pipeline.
func (r CalRun) stages() int { return r.Devices / max(r.Replicas, 1) }

// DefaultCalMaxSamples bounds the samples Calibrate simulates per run; a
// run of more samples is simulated with this many, and its makespan is
// extrapolated at the simulated steady rate.
const DefaultCalMaxSamples = 1000

// MaxCalRuns bounds the runs one calibration takes.
const MaxCalRuns = 10000

// CalibrateOptions tune Calibrate.
type CalibrateOptions struct {
	// MaxSamples bounds the samples simulated per run (0: the default,
	// DefaultCalMaxSamples).
	MaxSamples int
	// Date stamps the profile's provenance (the caller passes today).
	Date time.Time
	// Inputs are the files the runs were read from, named in the
	// profile's provenance.
	Inputs []string
}

// CalParamResult is one parameter after a calibration. Values are in
// milliseconds.
type CalParamResult struct {
	Param CalParam
	// Start is the value in the starting profile; Value the fitted one
	// (Start when it was not identifiable).
	Start, Value float64
	// StdErr is the standard error of a fitted value from the residuals
	// and the Jacobian (NaN when there are no more measurements than free
	// parameters, or the parameter was not fitted).
	StdErr float64
	// Fitted is false when the runs cannot identify the parameter; Why
	// then says why. For a fitted parameter Why may note that it also
	// absorbs a parameter held fixed, or is poorly determined.
	Fitted bool
	Why    string
}

// CalRunFit is one run with what the calibrated profile predicts for it.
type CalRunFit struct {
	Run CalRun
	// Model is the simulated first-sample latency, steady seconds per
	// sample and makespan, in seconds, with the fitted profile.
	Model [numCalMetrics]float64
	// Simulated is the samples simulated (fewer than Run.Samples when
	// capped; the makespan is then extrapolated).
	Simulated int
}

// Residual is the signed relative error of metric i, (model −
// measured) / measured; NaN when the metric was not measured.
func (f CalRunFit) Residual(i int) float64 {
	m := f.Run.Measured[i]
	if math.IsNaN(m) {
		return math.NaN()
	}
	return (f.Model[i] - m) / m
}

// Calibration is what Calibrate returns.
type Calibration struct {
	// Profile is the calibrated profile: the starting profile with the
	// fitted parameters, provenance source "calibrated".
	Profile *plan.Profile
	Params  [numCalParams]CalParamResult
	Runs    []CalRunFit
	// RMS and Max are the root mean square and the largest absolute
	// relative residual over every measured metric of every run.
	RMS, Max float64
	// Simulations counts the simulations the fit took.
	Simulations int
	// Notes say what the calibration assumed or changed (a capped sample
	// count, an uneven layout modelled as even).
	Notes []string
}

// Calibrate fits the free parameters of p's cost profile (see CalParam)
// to measured runs. Each run is modelled by simulating it: p with the
// run's device count (copies of p's first device), its replicas, the
// steps split evenly, micro-batch 1, every sample released at the start,
// and the run's sample count (at most MaxSamples). The fit is bounded
// least squares (Levenberg–Marquardt with finite-difference Jacobians,
// every parameter ≥ 0) on the relative residuals of first-sample
// latency, steady seconds per sample and makespan, so a fitted profile
// predicts with exactly the model it was fitted with. Jitter is off while
// fitting (the fit matches mean costs); the written profile keeps the
// starting profile's jitter and drift.
//
// A parameter the runs cannot identify is held at its starting value and
// reported with the reason: one that no run depends on (set-up when every
// run is data parallel), or one whose effect the others can match (runs
// of one device count cannot separate per-hop from per-sample cost). The
// decision is made on the Jacobian with each column scaled to unit
// length: a column that is zero, or a direction whose singular value is
// below calCollinear of the largest, fixes the parameter latest in
// fixOrder's sense (set-up per rank first, step cost last).
//
// p must have a cost profile (the starting point, and the source of every
// number that is not fitted) with costs for its device kind, and devices
// that are alike.
func Calibrate(p *plan.Plan, runs []CalRun, opt CalibrateOptions) (*Calibration, error) {
	m, err := newCalModel(p, runs, opt)
	if err != nil {
		return nil, err
	}
	x0 := m.start
	var fixed [numCalParams]bool
	var whys [numCalParams]string
	x := x0
	var err2 error
	for round := 0; round < 3; round++ {
		J, _, err := m.jacobian(x, [numCalParams]bool{})
		if err != nil {
			return nil, err
		}
		f, w := m.identify(J)
		if round > 0 && f == fixed {
			break
		}
		fixed, whys = f, w
		for i := range x {
			if fixed[i] {
				x[i] = x0[i]
			}
		}
		if x, err2 = m.fit(x, fixed); err2 != nil {
			return nil, err2
		}
	}
	return m.result(x, fixed, whys)
}

// calModel is the model of a calibration: one plan per run.
type calModel struct {
	base      *plan.Plan
	kind      string
	transport string
	prof      *plan.Profile  // the starting profile
	link      plan.LinkCosts // the starting transport costs
	start     [numCalParams]float64
	scale     [numCalParams]float64
	runs      []CalRun
	plans     []*plan.Plan
	sims      int
	notes     []string
	opt       CalibrateOptions
}

// calCollinear is the smallest singular value, relative to the largest,
// of the column-scaled Jacobian that Calibrate takes as independent.
const calCollinear = 3e-3

func newCalModel(p *plan.Plan, runs []CalRun, opt CalibrateOptions) (*calModel, error) {
	switch {
	case p == nil:
		return nil, errors.New("study: calibrate: nil plan")
	case p.Profile == nil:
		return nil, fmt.Errorf("study: calibrate: plan %s: %w; calibrate starts from a profile and keeps what it does not fit (memory, encode, decode, link bandwidth)", p.Name, ErrNoProfile)
	case len(runs) == 0:
		return nil, errors.New("study: calibrate: no runs to fit; give measured runs (vdexec metrics.json files or CSV rows)")
	case len(runs) > MaxCalRuns:
		return nil, fmt.Errorf("study: calibrate: %d runs; at most %d", len(runs), MaxCalRuns)
	case len(p.Devices) == 0:
		return nil, fmt.Errorf("study: calibrate: plan %s has no devices", p.Name)
	}
	if opt.MaxSamples <= 0 {
		opt.MaxSamples = DefaultCalMaxSamples
	}
	m := &calModel{base: p, kind: p.Devices[0].Kind, transport: string(p.Transport), prof: p.Profile, runs: runs, opt: opt}
	dc, ok := p.Profile.Devices[m.kind]
	if !ok {
		return nil, fmt.Errorf("study: calibrate: profile %s has no costs for device kind %s", p.Costs, m.kind)
	}
	step, ok1 := dc.StepNS(1)
	first, ok2 := dc.FirstCallNS(1)
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("study: calibrate: profile %s has no UNet time for device kind %s", p.Costs, m.kind)
	}
	if l, ok := p.Profile.Transports[m.transport]; ok {
		m.link = l
	} else if l, ok := p.Profile.Links[p.Links.Default]; ok {
		m.link = l
		m.notes = append(m.notes, fmt.Sprintf("the starting profile prices hops by link kind; the calibrated one prices every hop with the fitted cost of transport %s (link kind %s's costs as the start), so per-link differences (overrides) are not kept", m.transport, p.Links.Default))
	} else {
		m.link = plan.LinkCosts{BandwidthGBps: math.Inf(1)}
	}
	m.start = [numCalParams]float64{
		CalStep:         float64(step) / 1e6,
		CalWarmup:       float64(first-step) / 1e6,
		CalSample:       dc.SampleLastMS,
		CalHop:          m.link.LatencyUS / 1e3,
		CalSetup:        m.link.SetupMS,
		CalSetupPerRank: m.link.SetupMSPerRank,
	}
	for i := range m.scale {
		m.scale[i] = max(m.start[i], 0.05*m.start[CalStep], 1e-3)
	}

	q := p.Clone()
	if q.Layout.Assignment != plan.AssignEven {
		m.notes = append(m.notes, fmt.Sprintf("the plan's assignment is %s; calibrate models every run with the steps split evenly", q.Layout.Assignment))
		q.Layout.Assignment = plan.AssignEven
		q.Layout.Stages, q.Layout.Pipelines = nil, nil
	}
	if q.Workload.Arrival.Kind != plan.ArrivalBatch {
		m.notes = append(m.notes, fmt.Sprintf("the plan's arrival is %s; calibrate models every run with all samples released at the start (batch)", q.Workload.Arrival.Kind))
		q.Workload.Arrival = plan.Arrival{Kind: plan.ArrivalBatch}
	}
	if q.Layout.MicroBatch != 1 {
		m.notes = append(m.notes, fmt.Sprintf("the plan's micro-batch is %d; calibrate models every run with micro-batch 1", q.Layout.MicroBatch))
	}
	capped := 0
	one := 1
	for _, r := range runs {
		if err := checkCalRun(r, p.Sampler.Steps); err != nil {
			return nil, err
		}
		n := min(r.Samples, opt.MaxSamples)
		if n < r.Samples {
			capped++
		}
		// Enough samples for every replica (a plan cannot have fewer
		// samples than its micro-batch; more replicas than samples just
		// idle).
		d, rep := r.Devices, r.Replicas
		rq := q.Clone()
		if err := rq.Apply(plan.Overrides{Devices: &d, Replicas: &rep, Samples: &n, MicroBatch: &one}); err != nil {
			return nil, fmt.Errorf("study: calibrate: %s (%s on %d devices) cannot be modelled with plan %s: %s", r.Where, r.Label(), d, p.Name, oneLine(err))
		}
		m.plans = append(m.plans, rq)
	}
	if capped > 0 {
		m.notes = append(m.notes, fmt.Sprintf("%d run(s) of more than %d samples were simulated with %d; their makespan is extrapolated at the simulated steady rate", capped, opt.MaxSamples, opt.MaxSamples))
	}
	return m, nil
}

// checkCalRun checks a run built in code (the readers check their input
// with file and line first).
func checkCalRun(r CalRun, steps int) error {
	switch {
	case r.Devices < 1:
		return fmt.Errorf("study: calibrate: %s: devices %d; want at least 1", r.Where, r.Devices)
	case r.Replicas < 1 || r.Devices%r.Replicas != 0:
		return fmt.Errorf("study: calibrate: %s: %d pipelines do not split %d devices evenly", r.Where, r.Replicas, r.Devices)
	case r.Samples < 1:
		return fmt.Errorf("study: calibrate: %s: samples %d; want at least 1", r.Where, r.Samples)
	case r.Steps != steps:
		return fmt.Errorf("study: calibrate: %s: steps: the run took %d steps, but the plan has %d; calibrate models every run with the plan's sampler: give a plan with %d steps, or leave this run out", r.Where, r.Steps, steps, r.Steps)
	}
	measured := false
	for i, v := range r.Measured {
		if math.IsNaN(v) {
			continue
		}
		measured = true
		if !(v > 0) || math.IsInf(v, 0) {
			return fmt.Errorf("study: calibrate: %s: %s %g; want a time > 0 seconds", r.Where, CalMetricNames[i], v)
		}
	}
	if !measured {
		return fmt.Errorf("study: calibrate: %s: nothing measured; give at least one of %s", r.Where, strings.Join(CalMetricNames[:], ", "))
	}
	if !math.IsNaN(r.Measured[CalSteady]) && r.Samples < 2 {
		return fmt.Errorf("study: calibrate: %s: steady_s_per_sample needs at least 2 samples, the run has %d", r.Where, r.Samples)
	}
	return nil
}

// profile is the starting profile with the parameters x (ms); fitting
// turns jitter off.
func (m *calModel) profile(x [numCalParams]float64, fitting bool) *plan.Profile {
	pr := m.prof.Clone()
	if pr.Transports == nil {
		pr.Transports = map[string]plan.LinkCosts{}
	}
	dc := pr.Devices[m.kind]
	ratio := x[CalStep] / m.start[CalStep]
	unet := map[int]float64{1: x[CalStep]}
	for b, v := range dc.UNetMS {
		if b != 1 {
			unet[b] = v * ratio
		}
	}
	first := map[int]float64{1: x[CalStep] + x[CalWarmup]}
	for b := range dc.FirstCallMS {
		if v, ok := unet[b]; ok && b != 1 {
			first[b] = v + x[CalWarmup]
		}
	}
	dc.UNetMS, dc.FirstCallMS = unet, first
	dc.SampleLastMS = x[CalSample]
	if fitting {
		dc.Jitter = 0
	}
	pr.Devices[m.kind] = dc
	l := m.link
	l.LatencyUS = x[CalHop] * 1e3
	l.SetupMS = x[CalSetup]
	l.SetupMSPerRank = x[CalSetupPerRank]
	pr.Transports[m.transport] = l
	return pr
}

// predict simulates every run with the parameters x and returns the
// metrics in seconds.
func (m *calModel) predict(x [numCalParams]float64) ([][numCalMetrics]float64, error) {
	out := make([][numCalMetrics]float64, len(m.runs))
	errs := make([]error, len(m.runs))
	work := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < max(1, min(runtime.GOMAXPROCS(0), len(m.runs))); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				out[i], errs[i] = m.simulateRun(i, x)
			}
		}()
	}
	for i := range m.runs {
		work <- i
	}
	close(work)
	wg.Wait()
	m.sims += len(m.runs)
	return out, errors.Join(errs...)
}

// simulateRun simulates run i with the parameters x.
func (m *calModel) simulateRun(i int, x [numCalParams]float64) ([numCalMetrics]float64, error) {
	q := m.plans[i].Clone()
	q.Profile = m.profile(x, true)
	run, err := simulate(q, false, nil)
	if err != nil {
		return [numCalMetrics]float64{}, fmt.Errorf("study: calibrate: %s (%s): %w", m.runs[i].Where, m.runs[i].Label(), err)
	}
	mt := run.Metrics
	var v [numCalMetrics]float64
	v[CalFirst] = float64(mt.FirstLatencyNS) / 1e9
	v[CalSteady] = math.NaN()
	if mt.Throughput > 0 {
		v[CalSteady] = 1 / mt.Throughput
	}
	v[CalMakespan] = float64(mt.MakespanNS) / 1e9
	if extra := m.runs[i].Samples - q.Workload.Samples; extra > 0 && mt.Throughput > 0 {
		v[CalMakespan] += float64(extra) / mt.Throughput
	}
	return v, nil
}

// residuals are the relative residuals of every measured metric.
func (m *calModel) residuals(pred [][numCalMetrics]float64) []float64 {
	var r []float64
	for i, run := range m.runs {
		for k, meas := range run.Measured {
			if math.IsNaN(meas) {
				continue
			}
			v := pred[i][k]
			if math.IsNaN(v) { // a model without a steady rate: as far off as can be
				v = 0
			}
			r = append(r, (v-meas)/meas)
		}
	}
	return r
}

// jacobian returns the residuals at x and their derivatives by the
// parameters not fixed (forward differences in the parameters' scale),
// as columns per parameter (nil for a fixed one).
func (m *calModel) jacobian(x [numCalParams]float64, fixed [numCalParams]bool) ([numCalParams][]float64, []float64, error) {
	var J [numCalParams][]float64
	pred, err := m.predict(x)
	if err != nil {
		return J, nil, err
	}
	r := m.residuals(pred)
	for i := range x {
		if fixed[i] {
			continue
		}
		h := max(1e-2*m.scale[i], 1e-2)
		xp := x
		xp[i] += h
		pp, err := m.predict(xp)
		if err != nil {
			return J, nil, err
		}
		rp := m.residuals(pp)
		col := make([]float64, len(r))
		for k := range r {
			col[k] = (rp[k] - r[k]) / h
		}
		J[i] = col
	}
	return J, r, nil
}

// lower is the least value of parameter i (a step must cost something).
func lower(i int) float64 {
	if CalParam(i) == CalStep {
		return 1e-6
	}
	return 0
}

// upper bounds every parameter (ms): far beyond any real cost, far
// below the plan's time limits.
const calUpper = 1e9

// fit runs bounded Levenberg–Marquardt from x over the free parameters.
func (m *calModel) fit(x [numCalParams]float64, fixed [numCalParams]bool) ([numCalParams]float64, error) {
	var free []int
	for i := range x {
		if !fixed[i] {
			free = append(free, i)
		}
	}
	if len(free) == 0 {
		return x, nil
	}
	J, r, err := m.jacobian(x, fixed)
	if err != nil {
		return x, err
	}
	cost := dot(r, r)
	lambda := 1e-3
	for iter := 0; iter < 100 && cost > 1e-24; iter++ {
		// Normal equations in the parameters' scale; a parameter at a
		// bound whose gradient points out of the box stays there.
		k := len(free)
		A := make([][]float64, k)
		g := make([]float64, k)
		for a, i := range free {
			A[a] = make([]float64, k)
			for b, j := range free {
				A[a][b] = dot(J[i], J[j]) * m.scale[i] * m.scale[j]
			}
			g[a] = dot(J[i], r) * m.scale[i]
		}
		active := make([]bool, k)
		for a, i := range free {
			if (x[i] <= lower(i) && g[a] > 0) || (x[i] >= calUpper && g[a] < 0) {
				active[a] = true
			}
		}
		improved := false
		for !improved && lambda < 1e12 {
			M := make([][]float64, k)
			rhs := make([]float64, k)
			for a := range M {
				M[a] = make([]float64, k)
				for b := range M[a] {
					if !active[a] && !active[b] {
						M[a][b] = A[a][b]
					}
				}
				M[a][a] += lambda*max(A[a][a], 1e-12) + 1e-15
				if !active[a] {
					rhs[a] = -g[a]
				}
			}
			d, ok := solve(M, rhs)
			if !ok {
				lambda *= 4
				continue
			}
			xn := x
			for a, i := range free {
				xn[i] = min(max(x[i]+d[a]*m.scale[i], lower(i)), calUpper)
			}
			if xn == x {
				return x, nil
			}
			pred, err := m.predict(xn)
			if err != nil {
				return x, err
			}
			rn := m.residuals(pred)
			if cn := dot(rn, rn); cn < cost {
				improved = true
				rel := (cost - cn) / cost
				x, cost = xn, cn
				lambda = max(lambda/3, 1e-9)
				if rel < 1e-10 {
					return x, nil
				}
				if J, r, err = m.jacobian(x, fixed); err != nil {
					return x, err
				}
			} else {
				lambda *= 4
			}
		}
		if !improved {
			break
		}
	}
	return x, nil
}

// identify decides which parameters the runs can identify, from the
// Jacobian at x: the columns scaled to unit length, a zero column is a
// parameter no run depends on; a direction of (near) zero singular value
// is a combination the runs cannot see, and the parameter in it that
// fixOrder names first is held fixed, until the rest are independent.
func (m *calModel) identify(J [numCalParams][]float64) (fixed [numCalParams]bool, why [numCalParams]string) {
	var absorbs [numCalParams][]string
	defer func() {
		for i, a := range absorbs {
			if !fixed[i] && len(a) > 0 {
				why[i] = "it may absorb the share of " + joinWords(a) + " (held fixed: not identifiable)"
			}
		}
	}()
	unit := [numCalParams][]float64{}
	for i, col := range J {
		n := math.Sqrt(dot(col, col))
		if !(n > 1e-12) {
			fixed[i] = true
			why[i] = m.noDependence(CalParam(i))
			continue
		}
		unit[i] = make([]float64, len(col))
		for k, v := range col {
			unit[i][k] = v / n
		}
	}
	for {
		var free []int
		for i := range unit {
			if !fixed[i] {
				free = append(free, i)
			}
		}
		if len(free) == 0 {
			return fixed, why
		}
		k := len(free)
		A := make([][]float64, k)
		for a, i := range free {
			A[a] = make([]float64, k)
			for b, j := range free {
				A[a][b] = dot(unit[i], unit[j])
			}
		}
		vals, vecs := symEigen(A)
		lo, hi := 0, 0
		for a := range vals {
			if vals[a] < vals[lo] {
				lo = a
			}
			if vals[a] > vals[hi] {
				hi = a
			}
		}
		rows := len(unit[free[0]])
		if vals[lo] >= calCollinear*calCollinear*vals[hi] && k <= rows {
			return fixed, why
		}
		// The parameter of the null direction to hold fixed.
		pick := -1
		for _, c := range fixOrder {
			for a, i := range free {
				if i == int(c) && math.Abs(vecs[a][lo]) > 0.1 {
					pick = a
				}
			}
			if pick >= 0 {
				break
			}
		}
		if pick < 0 { // cannot happen: a unit eigenvector has a large component
			pick = 0
		}
		j := free[pick]
		// What it moves together with: other parameters whose columns are
		// the same direction (the runs see only their sum); else the rank.
		var with []int
		for _, i := range free {
			if i != j && math.Abs(dot(unit[i], unit[j])) > 1-1e-4 {
				with = append(with, i)
			}
		}
		rank := 0
		for _, v := range vals {
			if v >= calCollinear*calCollinear*vals[hi] {
				rank++
			}
		}
		var names []string
		for _, i := range free {
			names = append(names, CalParam(i).Name())
		}
		fixed[j] = true
		why[j] = m.collinear(CalParam(j), with, rank, names)
		if len(with) == 0 {
			with = append(with, free...)
		}
		for _, i := range with {
			if i != j {
				absorbs[i] = append(absorbs[i], CalParam(j).Name())
			}
		}
	}
}

// noDependence says why no run depends on parameter c.
func (m *calModel) noDependence(c CalParam) string {
	hops, ranks3 := false, false
	for _, r := range m.runs {
		if r.stages() > 1 {
			hops = true
			if r.Devices > 2 {
				ranks3 = true
			}
		}
	}
	switch {
	case (c == CalHop || c == CalSetup || c == CalSetupPerRank) && !hops:
		return "no run hands a latent from one device to another (every run is data parallel or on one device)"
	case c == CalSetupPerRank && !ranks3:
		return "set-up per rank counts ranks beyond two, and no pipeline run has more than two devices"
	}
	return "no run's times change with it"
}

// collinear says why parameter c cannot be told apart from the others:
// with are the parameters that move the runs exactly as it does (none:
// the runs measure only rank combinations of the free parameters named).
func (m *calModel) collinear(c CalParam, with []int, rank int, free []string) string {
	var s string
	if len(with) > 0 {
		var names []string
		for _, i := range with {
			names = append(names, CalParam(i).Name())
		}
		s = "it moves these runs' times exactly as " + joinWords(names) + " does, so the runs see only their sum"
	} else {
		s = fmt.Sprintf("these runs measure only %d independent combination(s) of the %d parameters %s, so a change in it can be matched by changes in the others",
			rank, len(free), joinWords(free))
	}
	sizes := map[int]bool{}
	for _, r := range m.runs {
		sizes[r.Devices] = true
	}
	if len(sizes) == 1 {
		for d := range sizes {
			s += fmt.Sprintf("; every run is on %d device(s)", d)
		}
		if c == CalHop || c == CalSample {
			s += ", and one run size cannot separate per-hop from per-sample cost"
		}
		s += ": add runs on other device counts"
	}
	return s
}

func joinWords(w []string) string {
	switch len(w) {
	case 0:
		return "nothing"
	case 1:
		return w[0]
	}
	return strings.Join(w[:len(w)-1], ", ") + " and " + w[len(w)-1]
}

// result builds the Calibration at the fitted x.
func (m *calModel) result(x [numCalParams]float64, fixed [numCalParams]bool, whys [numCalParams]string) (*Calibration, error) {
	J, r, err := m.jacobian(x, fixed)
	if err != nil {
		return nil, err
	}
	pred, err := m.predict(x)
	if err != nil {
		return nil, err
	}
	c := &Calibration{Notes: m.notes}
	for i, run := range m.runs {
		c.Runs = append(c.Runs, CalRunFit{Run: run, Model: pred[i], Simulated: m.plans[i].Workload.Samples})
	}
	sum := 0.0
	for _, v := range r {
		sum += v * v
		c.Max = max(c.Max, math.Abs(v))
	}
	c.RMS = math.Sqrt(sum / float64(len(r)))

	// Standard errors: s² (JᵀJ)⁻¹ over the fitted parameters, with s² the
	// residuals' variance (sum / (measurements − fitted)).
	var free []int
	for i := range x {
		if !fixed[i] {
			free = append(free, i)
		}
	}
	se := map[int]float64{}
	if k := len(free); k > 0 && len(r) > k {
		A := make([][]float64, k)
		for a, i := range free {
			A[a] = make([]float64, k)
			for b, j := range free {
				A[a][b] = dot(J[i], J[j]) * m.scale[i] * m.scale[j]
			}
		}
		if inv, ok := invert(A); ok {
			s2 := sum / float64(len(r)-k)
			for a, i := range free {
				se[i] = math.Sqrt(max(inv[a][a], 0)*s2) * m.scale[i]
			}
		}
	}
	var heldNames []string
	for i := range x {
		pr := CalParamResult{Param: CalParam(i), Start: m.start[i], Value: x[i], Fitted: !fixed[i], Why: whys[i], StdErr: math.NaN()}
		if v, ok := se[i]; ok {
			pr.StdErr = v
			if v > x[i] && v > 1e-3*x[CalStep] {
				poor := fmt.Sprintf("poorly determined: its standard error (%s) exceeds its value", FormatCalMS(v))
				if pr.Why != "" {
					poor += "; " + pr.Why
				}
				pr.Why = poor
			}
		}
		if fixed[i] {
			heldNames = append(heldNames, CalParam(i).Name())
		}
		c.Params[i] = pr
	}
	// Six significant digits: the fit is not more precise than that.
	for i := range x {
		if x[i] != 0 {
			x[i] = roundSig(x[i], 6)
		}
	}
	c.Profile = m.profile(x, false)
	c.Profile.File = ""
	var fitted []string
	for _, p := range c.Params {
		if p.Fitted {
			fitted = append(fitted, p.Param.Name())
		}
	}
	inputs := m.opt.Inputs
	if len(inputs) == 0 {
		inputs = []string{"runs given in code"}
	}
	c.Profile.Provenance = plan.Provenance{
		Source: "calibrated",
		Date:   m.opt.Date.UTC().Format(time.DateOnly),
		Reference: fmt.Sprintf("vdsim calibrate: %s fitted by bounded least squares to %d measured run(s) of plan %s on %s, starting from %s; inputs: %s",
			joinWords(fitted), len(m.runs), m.base.Name, m.kind, profileName(m.prof, m.base), strings.Join(inputs, ", ")),
	}
	notes := []string{fmt.Sprintf("relative residuals over %d measured metrics: rms %.2f%%, largest %.2f%%.", len(r), 100*c.RMS, 100*c.Max)}
	if len(heldNames) > 0 {
		notes = append(notes, "not identifiable from these runs, kept from the starting profile: "+joinWords(heldNames)+".")
	}
	notes = append(notes, "Fitted: per-sample overhead in sample_last_ms, per-hop cost in the latency_us of transport "+m.transport+"; everything else is the starting profile's.")
	if m.prof.Provenance.Source != "" {
		notes = append(notes, "Starting profile: "+m.prof.ProvenanceString()+".")
	}
	c.Profile.Provenance.Notes = strings.Join(append(notes, c.Notes...), " ")
	c.Simulations = m.sims
	return c, nil
}

func profileName(pr *plan.Profile, p *plan.Plan) string {
	switch {
	case pr.File != "":
		return pr.File
	case p.Costs != "":
		return p.Costs
	}
	return "the plan's profile"
}

// FormatCalMS formats a time in milliseconds for calibration tables, with
// four significant digits ("12.35 ms", "8.2 µs").
func FormatCalMS(v float64) string {
	switch {
	case math.IsNaN(v):
		return "—"
	case v == 0:
		return "0 ms"
	case math.Abs(v) < 0.1:
		return fmt.Sprintf("%.4g µs", v*1e3)
	}
	return fmt.Sprintf("%.4g ms", v)
}

// CalibratedPlan returns a copy of p with the calibrated profile, named
// file costs, resolved again: what a prediction from the calibration
// simulates.
func (c *Calibration) CalibratedPlan(p *plan.Plan, costs string) (*plan.Plan, error) {
	q := p.Clone()
	if err := q.SetProfile(costs, c.Profile); err != nil {
		return nil, err
	}
	return q, nil
}

// roundSig rounds v to n significant digits.
func roundSig(v float64, n int) float64 {
	e := math.Pow(10, float64(n)-math.Ceil(math.Log10(math.Abs(v))))
	return math.Round(v*e) / e
}

func dot(a, b []float64) float64 {
	s := 0.0
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

// solve solves M d = rhs by Gaussian elimination with partial pivoting.
func solve(M [][]float64, rhs []float64) ([]float64, bool) {
	n := len(rhs)
	a := make([][]float64, n)
	for i := range a {
		a[i] = append(append([]float64{}, M[i]...), rhs[i])
	}
	for c := 0; c < n; c++ {
		p := c
		for r := c + 1; r < n; r++ {
			if math.Abs(a[r][c]) > math.Abs(a[p][c]) {
				p = r
			}
		}
		if !(math.Abs(a[p][c]) > 1e-300) {
			return nil, false
		}
		a[c], a[p] = a[p], a[c]
		for r := c + 1; r < n; r++ {
			f := a[r][c] / a[c][c]
			for k := c; k <= n; k++ {
				a[r][k] -= f * a[c][k]
			}
		}
	}
	d := make([]float64, n)
	for r := n - 1; r >= 0; r-- {
		s := a[r][n]
		for k := r + 1; k < n; k++ {
			s -= a[r][k] * d[k]
		}
		d[r] = s / a[r][r]
	}
	for _, v := range d {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, false
		}
	}
	return d, true
}

// invert inverts a small matrix column by column.
func invert(A [][]float64) ([][]float64, bool) {
	n := len(A)
	inv := make([][]float64, n)
	for i := range inv {
		inv[i] = make([]float64, n)
	}
	for c := 0; c < n; c++ {
		e := make([]float64, n)
		e[c] = 1
		col, ok := solve(A, e)
		if !ok {
			return nil, false
		}
		for r := range col {
			inv[r][c] = col[r]
		}
	}
	return inv, true
}

// symEigen returns the eigenvalues of the symmetric matrix A and its
// eigenvectors as columns (vecs[row][col]), by cyclic Jacobi rotations.
func symEigen(A [][]float64) ([]float64, [][]float64) {
	n := len(A)
	a := make([][]float64, n)
	v := make([][]float64, n)
	for i := range a {
		a[i] = append([]float64{}, A[i]...)
		v[i] = make([]float64, n)
		v[i][i] = 1
	}
	for sweep := 0; sweep < 100; sweep++ {
		off := 0.0
		for i := 0; i < n; i++ {
			for j := i + 1; j < n; j++ {
				off += a[i][j] * a[i][j]
			}
		}
		if off < 1e-30 {
			break
		}
		for p := 0; p < n; p++ {
			for q := p + 1; q < n; q++ {
				if math.Abs(a[p][q]) < 1e-300 {
					continue
				}
				theta := (a[q][q] - a[p][p]) / (2 * a[p][q])
				t := math.Copysign(1, theta) / (math.Abs(theta) + math.Sqrt(theta*theta+1))
				c := 1 / math.Sqrt(t*t+1)
				s := t * c
				for k := 0; k < n; k++ {
					akp, akq := a[k][p], a[k][q]
					a[k][p], a[k][q] = c*akp-s*akq, s*akp+c*akq
				}
				for k := 0; k < n; k++ {
					apk, aqk := a[p][k], a[q][k]
					a[p][k], a[q][k] = c*apk-s*aqk, s*apk+c*aqk
				}
				for k := 0; k < n; k++ {
					vkp, vkq := v[k][p], v[k][q]
					v[k][p], v[k][q] = c*vkp-s*vkq, s*vkp+c*vkq
				}
			}
		}
	}
	vals := make([]float64, n)
	for i := range vals {
		vals[i] = a[i][i]
	}
	return vals, v
}
