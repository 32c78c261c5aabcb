package study

import (
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/vdpp/vdpp/plan"
	"github.com/vdpp/vdpp/sim"
	"github.com/vdpp/vdpp/timeline"
)

// Bounds of a predicted range (PredictRange).
const (
	// DefaultRangeRuns is how many seeded simulations a range takes.
	DefaultRangeRuns = 40
	// MinRangeRuns and MaxRangeRuns bound the runs: fewer than 10 give no
	// p10 and p90 worth the name; more than 1000 cost without telling more.
	MinRangeRuns = 10
	MaxRangeRuns = 1000
	// MaxRangeSamples is the most samples a plan may have for a range: its
	// runs cost that many times the prediction, so a larger workload gets
	// no range (Range.Note says so) rather than a long wait.
	MaxRangeSamples = 10000
)

// NoSpread is Range.Note for a profile that measured no spread: the range
// would be the point.
const NoSpread = "no spread measured (jitter and drift are 0 in the profile)"

// streamRange is the PCG stream of the workload seed that a range's runs
// draw their jitter seeds and cost scales from (run k from stream
// streamRange+k), apart from arrivals (plan.StreamArrival) and the point
// prediction's jitter.
const streamRange = 0x72616e6765 << 16 // "range", shifted to leave room for the run index

// Quantiles are the 10th, 50th and 90th percentiles of a metric over a
// range's runs (nearest rank: the smallest value with at least p% of the
// runs at or below it).
type Quantiles struct {
	P10 float64 `json:"p10"`
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
}

// Range is a predicted range of a plan's metrics: what Runs simulations of
// the same plan and workload (the same arrivals) give when each draws its
// own step jitter, with the profile's Jitter per device kind, and its own
// cost scale per device kind, uniform within ±Drift of the profile's
// device work (UNet calls, encode and decode, and the first of each). The
// point prediction stays the plan's own simulation; the range says how
// far the measured spread of the costs could move it.
type Range struct {
	// Runs is the number of simulations; 0 when there is no range (Note
	// says why).
	Runs int `json:"runs"`
	// Samples is the workload of each run.
	Samples int `json:"samples"`
	// Spread says in words what varied between the runs: "step jitter
	// 10.5%, cost scale within ±2% per device kind".
	Spread string `json:"spread,omitempty"`
	// Note, when there is no range, says why: NoSpread, or a workload
	// larger than MaxRangeSamples.
	Note string `json:"note,omitempty"`
	// Steady is true when every run had a steady state, so that the range
	// of the steady-state throughput is there (see Throughput).
	Steady bool `json:"steady,omitempty"`
	// Metrics are the quantiles of every metric column
	// (timeline.Columns) by the column's JSONKey, for the columns that
	// have a value in every run.
	Metrics map[string]Quantiles `json:"metrics,omitempty"`
}

// Of returns the quantiles of column col; false when the range has none
// for it.
func (r *Range) Of(col timeline.Column) (Quantiles, bool) {
	if r == nil {
		return Quantiles{}, false
	}
	q, ok := r.Metrics[col.JSONKey()]
	return q, ok
}

// Throughput is the throughput column a range is read by beside metrics
// m (nil: none): the steady-state throughput when every run and m have a
// steady state, else the overall throughput, as
// timeline.ThroughputForRanking chooses.
func (r *Range) Throughput(m *timeline.Metrics) timeline.Column {
	key := "throughput"
	if r == nil || !r.Steady || (m != nil && m.TooFewSamples) {
		key = "overall_throughput"
	}
	col, _ := timeline.LookupColumn(key)
	return col
}

// Headlines are the columns a range is summed up by beside metrics m: the
// first-sample latency and the throughput of Throughput.
func (r *Range) Headlines(m *timeline.Metrics) []timeline.Column {
	first, _ := timeline.LookupColumn("first_latency")
	return []timeline.Column{first, r.Throughput(m)}
}

// RangeCheck is where a measured headline metric fell against a predicted
// range: inside [P10, P90], below or above it.
type RangeCheck struct {
	Column   timeline.Column `json:"-"`
	Key      string          `json:"metric"`
	Measured float64         `json:"measured"`
	Range    Quantiles       `json:"range"`
	// Where is "inside", "below" or "above".
	Where string `json:"where"`
}

// Places a measured value can fall in, against a range.
const (
	Inside = "inside"
	Below  = "below"
	Above  = "above"
)

// Check says where the measured run's first-sample latency and throughput
// (as Throughput chooses) fell against the range: inside [p10, p90], below
// or above. A range without runs, or a metric without a value, gives no
// check for it.
func (r *Range) Check(measured *timeline.Metrics) []RangeCheck {
	if r == nil || r.Runs == 0 {
		return nil
	}
	var out []RangeCheck
	for _, col := range r.Headlines(measured) {
		q, ok := r.Of(col)
		v := col.Get(measured)
		if !ok || math.IsNaN(v) {
			continue
		}
		where := Inside
		switch {
		case v < q.P10:
			where = Below
		case v > q.P90:
			where = Above
		}
		out = append(out, RangeCheck{Column: col, Key: col.Key, Measured: v, Range: q, Where: where})
	}
	return out
}

// PredictRange simulates p (plan.Ready, with a profile) runs times
// (0: DefaultRangeRuns; else within [MinRangeRuns, MaxRangeRuns]) and
// returns the quantiles of its metrics. Run k draws its step jitter from
// a seed of its own and a cost scale per device kind of the plan, uniform
// in [1 − Drift, 1 + Drift], both from the workload seed and k, so that the
// same plan gives the same range, adding runs keeps the earlier ones, and
// the arrivals are the plan's in every run. When no device kind of the
// plan has jitter or drift, or the workload has more than MaxRangeSamples
// samples, nothing is simulated: the Range has no runs and its Note says
// why. w (nil: none) sees the runs as Run 1..runs.
func PredictRange(p *plan.Plan, runs int, w Watch) (*Range, error) {
	if runs == 0 {
		runs = DefaultRangeRuns
	}
	if runs < MinRangeRuns || runs > MaxRangeRuns {
		return nil, fmt.Errorf("study: range: %d runs: want %d to %d", runs, MinRangeRuns, MaxRangeRuns)
	}
	if p.Profile == nil {
		return nil, fmt.Errorf("study: plan %s: %w", p.Name, ErrNoProfile)
	}
	kinds := rangeKinds(p)
	r := &Range{Samples: p.Workload.Samples, Spread: spreadWords(p.Profile, kinds)}
	switch {
	case r.Spread == "":
		r.Note = NoSpread
		return r, nil
	case p.Workload.Samples > MaxRangeSamples:
		r.Note = fmt.Sprintf("not computed: %d samples is more than the %d a range simulates (its %d runs would cost %d times the prediction); "+
			"a prediction with --samples %d or fewer gets one", p.Workload.Samples, MaxRangeSamples, runs, runs, MaxRangeSamples)
		return r, nil
	}
	cols := timeline.Columns()
	values := make([][]float64, len(cols))
	r.Steady = true
	for k := range runs {
		if err := w.start(k+1, runs, p.Workload.Samples); err != nil {
			return nil, err
		}
		q, seed := rangeRun(p, kinds, k)
		acc := timeline.NewAccumulator(q.Devices.Names())
		if _, err := sim.Run(q, sim.Options{Recorder: acc, Check: w.check(k+1, runs), JitterSeed: &seed}); err != nil {
			return nil, fmt.Errorf("study: range run %d of %d: %w", k+1, runs, err)
		}
		m := acc.Result()
		r.Steady = r.Steady && !m.TooFewSamples
		for i, col := range cols {
			values[i] = append(values[i], col.Get(&m))
		}
	}
	r.Runs = runs
	r.Metrics = map[string]Quantiles{}
	for i, col := range cols {
		if q, ok := quantiles(values[i]); ok {
			r.Metrics[col.JSONKey()] = q
		}
	}
	return r, nil
}

// RangeSimulates reports whether PredictRange simulates p: its profile
// has jitter or drift for a device kind of p, and its workload is at most
// MaxRangeSamples samples. A caller that shows progress names the phase
// only then.
func RangeSimulates(p *plan.Plan) bool {
	return p.Profile != nil && spreadWords(p.Profile, rangeKinds(p)) != "" && p.Workload.Samples <= MaxRangeSamples
}

// rangeKinds are the device kinds of p's devices, sorted.
func rangeKinds(p *plan.Plan) []string {
	seen := map[string]bool{}
	for _, d := range p.Devices {
		seen[d.Kind] = true
	}
	return slices.Sorted(maps.Keys(seen))
}

// rangeRun is run k of p's range: p with its profile's costs scaled per
// device kind (kinds, sorted), and the seed of its jitter.
func rangeRun(p *plan.Plan, kinds []string, k int) (*plan.Plan, uint64) {
	rng := rand.New(rand.NewPCG(p.Workload.Seed, streamRange+uint64(k)))
	seed := rng.Uint64()
	prof := p.Profile.Clone()
	for _, kind := range kinds {
		u := 2*rng.Float64() - 1 // drawn for every kind, so that each kind's draw does not depend on the others' drift
		c, ok := prof.Devices[kind]
		if !ok || c.Drift == 0 {
			continue
		}
		prof.Devices[kind] = scaleCosts(c, 1+c.Drift*u)
	}
	q := p.Clone()
	q.Profile = prof
	return q, seed
}

// scaleCosts returns c with its device work (UNet calls, first calls,
// encode, decode and their first calls) scaled by s; host work and memory
// stay.
func scaleCosts(c plan.DeviceCosts, s float64) plan.DeviceCosts {
	scale := func(m map[int]float64) map[int]float64 {
		if m == nil {
			return nil
		}
		out := make(map[int]float64, len(m))
		for b, v := range m {
			out[b] = v * s
		}
		return out
	}
	c.UNetMS, c.FirstCallMS = scale(c.UNetMS), scale(c.FirstCallMS)
	c.EncodeMS *= s
	c.DecodeMS *= s
	c.EncodeFirstMS = scaleCalls(c.EncodeFirstMS, s)
	c.DecodeFirstMS = scaleCalls(c.DecodeFirstMS, s)
	return c
}

// quantiles are the p10, p50 and p90 of vs by nearest rank; false when a
// value is missing (NaN) or infinite.
func quantiles(vs []float64) (Quantiles, bool) {
	if len(vs) == 0 {
		return Quantiles{}, false
	}
	for _, v := range vs {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return Quantiles{}, false
		}
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	at := func(p float64) float64 {
		i := int(math.Ceil(p/100*float64(len(s)))) - 1
		return s[min(max(i, 0), len(s)-1)]
	}
	return Quantiles{P10: at(10), P50: at(50), P90: at(90)}, true
}

// spreadWords says what a range of p's kinds varies, "" when nothing does:
// "step jitter 10.5%, cost scale within ±2% per device kind"; values that
// differ between kinds are named per kind.
func spreadWords(pr *plan.Profile, kinds []string) string {
	var parts []string
	jit := perKind(pr, kinds, func(c plan.DeviceCosts) float64 { return c.Jitter })
	drift := perKind(pr, kinds, func(c plan.DeviceCosts) float64 { return c.Drift })
	if jit != "" {
		parts = append(parts, "step jitter "+jit)
	}
	if drift != "" {
		parts = append(parts, "cost scale within ±"+drift+" per device kind")
	}
	switch {
	case len(parts) == 0:
		return ""
	case jit == "":
		parts = append(parts, "no step jitter in the profile")
	case drift == "":
		parts = append(parts, "no cost-scale drift in the profile")
	}
	return strings.Join(parts, ", ")
}

// perKind is the value get reads off each kind's costs, as a percentage:
// one value when the kinds agree, else "KIND VALUE" for each; "" when all
// are 0.
func perKind(pr *plan.Profile, kinds []string, get func(plan.DeviceCosts) float64) string {
	var vals []string
	some, same := false, true
	for i, k := range kinds {
		v := get(pr.Devices[k])
		some = some || v != 0
		same = same && (i == 0 || v == get(pr.Devices[kinds[0]]))
		vals = append(vals, k+" "+percent(v))
	}
	switch {
	case !some:
		return ""
	case same:
		return percent(get(pr.Devices[kinds[0]]))
	}
	return "(" + strings.Join(vals, ", ") + ")"
}

// percent is a fraction as a percentage with up to three significant
// digits: 0.105 → "10.5%", 0.02 → "2%".
func percent(v float64) string {
	return fmt.Sprintf("%.3g%%", v*100)
}

// AddRange predicts the range of the comparison's plan (PredictRange,
// runs as there) for as many samples as the prediction has, and checks
// the measurement against it: c.Range and c.RangeChecks. Without a plan
// or its profile it does nothing. The comparison is not changed when it
// fails.
func (c *Comparison) AddRange(runs int, w Watch) error {
	p := c.Plan
	if p == nil || p.Profile == nil {
		return nil
	}
	if n := c.Predicted.Metrics.Samples; n > 0 && n != p.Workload.Samples {
		p = p.Clone()
		if err := p.Apply(plan.Overrides{Samples: &n}); err != nil {
			return fmt.Errorf("study: range: with the prediction's %d samples: %w", n, err)
		}
	}
	r, err := PredictRange(p, runs, w)
	if err != nil {
		return err
	}
	c.Range, c.RangeChecks = r, r.Check(&c.Measured.Metrics)
	return nil
}

// scaleCalls is v with each call's time multiplied by s (a copy).
func scaleCalls(v []float64, s float64) []float64 {
	if len(v) == 0 {
		return nil
	}
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = x * s
	}
	return out
}
