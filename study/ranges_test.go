package study

import (
	"maps"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/vdpp/vdpp/plan"
	"github.com/vdpp/vdpp/sim"
	"github.com/vdpp/vdpp/timeline"
)

// withSpread is p with every device kind's jitter and drift set.
func withSpread(p *plan.Plan, jitter, drift float64) *plan.Plan {
	q := p.Clone()
	prof := *p.Profile
	prof.Devices = maps.Clone(p.Profile.Devices)
	for k, c := range prof.Devices {
		c.Jitter, c.Drift = jitter, drift
		prof.Devices[k] = c
	}
	q.Profile = &prof
	return q
}

func predictRange(t *testing.T, p *plan.Plan, runs int) *Range {
	t.Helper()
	r, err := PredictRange(p, runs, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func width(t *testing.T, r *Range, key string) float64 {
	t.Helper()
	col, _ := timeline.LookupColumn(key)
	q, ok := r.Of(col)
	if !ok {
		t.Fatalf("range has no %s: %+v", key, r.Metrics)
	}
	return q.P90 - q.P10
}

// Every quantile is ordered, the same seed gives the same range, and the
// range knows the headline metrics.
func TestRangeOrderedAndDeterministic(t *testing.T) {
	p := withSpread(load(t, simTestdata+"microbatch-poisson-replicas.yaml"), 0.1, 0.05)
	r := predictRange(t, p, MinRangeRuns)
	if r.Runs != MinRangeRuns || r.Note != "" || r.Samples != p.Workload.Samples {
		t.Fatalf("range %+v", r)
	}
	for key, q := range r.Metrics {
		if !(q.P10 <= q.P50 && q.P50 <= q.P90) {
			t.Errorf("%s: quantiles out of order %+v", key, q)
		}
	}
	for _, col := range r.Headlines(nil) {
		if _, ok := r.Of(col); !ok {
			t.Errorf("no range for %s", col.Key)
		}
	}
	if again := predictRange(t, p, MinRangeRuns); !reflect.DeepEqual(r, again) {
		t.Errorf("same plan, another range:\n%+v\n%+v", r, again)
	}
	if !strings.Contains(r.Spread, "step jitter 10%") || !strings.Contains(r.Spread, "±5%") {
		t.Errorf("spread %q", r.Spread)
	}
	q := p.Clone()
	q.Workload.Seed++
	if other := predictRange(t, q, MinRangeRuns); reflect.DeepEqual(r.Metrics, other.Metrics) {
		t.Error("another seed gave the same range")
	}
}

// The range widens as the jitter grows (on one device, where the first
// sample's latency is the sum of its own steps) and as the drift grows.
func TestRangeWidensWithSpread(t *testing.T) {
	one := withSamples(t, load(t, "../configs/svd-14f-320x576-1xa5000.yaml"), 3)
	prev := 0.0
	for _, j := range []float64{0.02, 0.05, 0.1, 0.2} {
		w := width(t, predictRange(t, withSpread(one, j, 0), MinRangeRuns), "first_latency")
		if !(w > prev) {
			t.Errorf("jitter %g: first-latency range %g wide, not wider than %g", j, w, prev)
		}
		prev = w
	}
	p := withSamples(t, load(t, ref7), 8)
	prevLat, prevTput := 0.0, 0.0
	for _, d := range []float64{0.01, 0.03, 0.1, 0.3} {
		r := predictRange(t, withSpread(p, 0, d), MinRangeRuns)
		wl, wt := width(t, r, "first_latency"), width(t, r, r.Throughput(nil).Key)
		if !(wl > prevLat && wt > prevTput) {
			t.Errorf("drift %g: ranges %g (latency), %g (throughput), not wider than %g, %g", d, wl, wt, prevLat, prevTput)
		}
		prevLat, prevTput = wl, wt
	}
}

// Without jitter or drift there is no range; as both shrink the range
// closes on the point prediction.
func TestRangeCollapsesToThePoint(t *testing.T) {
	p := withSamples(t, load(t, ref7), 8)
	r := predictRange(t, withSpread(p, 0, 0), 0)
	if r.Runs != 0 || r.Note != NoSpread || r.Metrics != nil || r.Spread != "" || RangeSimulates(withSpread(p, 0, 0)) {
		t.Errorf("no spread: %+v", r)
	}
	if !RangeSimulates(withSpread(p, 0, 0.01)) || !RangeSimulates(withSpread(p, 0.01, 0)) {
		t.Error("a spread that RangeSimulates does not simulate")
	}
	point, err := Simulate(p, false)
	if err != nil {
		t.Fatal(err)
	}
	r = predictRange(t, withSpread(p, 1e-12, 1e-12), MinRangeRuns)
	for _, col := range timeline.Columns() {
		q, ok := r.Of(col)
		want := col.Get(&point.Metrics)
		if math.IsNaN(want) {
			continue
		}
		if !ok {
			t.Errorf("%s: no range", col.Key)
			continue
		}
		for _, v := range []float64{q.P10, q.P50, q.P90} {
			if math.Abs(v-want) > 1e-6*math.Abs(want)+1e-9 {
				t.Errorf("%s: range %+v, point %g", col.Key, q, want)
				break
			}
		}
	}
}

// Each run of a range draws its own jitter but keeps the plan's arrivals;
// no run changes the plan's profile.
func TestRangeRunsKeepArrivals(t *testing.T) {
	p := withSpread(load(t, simTestdata+"microbatch-poisson-replicas.yaml"), 0.2, 0)
	base, err := sim.Run(p, sim.Options{Trace: true})
	if err != nil {
		t.Fatal(err)
	}
	releases := func(tl *timeline.Timeline) []int64 {
		out := make([]int64, len(tl.Samples))
		for _, s := range tl.Samples {
			out[s.ID] = s.Release
		}
		return out
	}
	want := releases(base.Timeline)
	seeds := map[uint64]bool{}
	var spans [][]timeline.Span
	for k := range 4 {
		q, seed := rangeRun(p, rangeKinds(p), k)
		seeds[seed] = true
		res, err := sim.Run(q, sim.Options{Trace: true, JitterSeed: &seed})
		if err != nil {
			t.Fatal(err)
		}
		if got := releases(res.Timeline); !reflect.DeepEqual(got, want) {
			t.Errorf("run %d: releases %v, want %v", k, got, want)
		}
		spans = append(spans, res.Timeline.Spans)
	}
	if len(seeds) != 4 || reflect.DeepEqual(spans[0], spans[1]) {
		t.Error("the runs did not draw their own jitter")
	}
	d := withSpread(p, 0, 0.5)
	before := d.Profile.Devices["k0"].UNetMS[1]
	q, _ := rangeRun(d, rangeKinds(d), 0)
	if after := q.Profile.Devices["k0"].UNetMS[1]; d.Profile.Devices["k0"].UNetMS[1] != before || after == before {
		t.Errorf("unet_ms of k0 at batch 1: %g in the plan, %g in the range run, %g before", d.Profile.Devices["k0"].UNetMS[1], after, before)
	}
}

func TestRangeLimits(t *testing.T) {
	p := withSpread(withSamples(t, load(t, ref7), 4), 0.1, 0)
	for _, runs := range []int{-1, MinRangeRuns - 1, MaxRangeRuns + 1} {
		if _, err := PredictRange(p, runs, nil); err == nil || !strings.Contains(err.Error(), "runs") {
			t.Errorf("%d runs: %v", runs, err)
		}
	}
	big := withSamples(t, p, MaxRangeSamples+1)
	r := predictRange(t, big, 0)
	if r.Runs != 0 || !strings.Contains(r.Note, "not computed") || RangeSimulates(big) {
		t.Errorf("%d samples: %+v", MaxRangeSamples+1, r)
	}
	if _, err := PredictRange(&plan.Plan{Name: "x"}, 0, nil); err == nil {
		t.Error("no profile: no error")
	}
}

// A measurement inside, below and above the range, made by stretching the
// prediction: the range comes from a ±5% cost scale.
func TestCompareRangeChecks(t *testing.T) {
	p := withSpread(withSamples(t, load(t, ref7), 6), 0, 0.05)
	pred := predicted(t, p)
	for _, c := range []struct {
		num, den            int64
		latency, throughput string
	}{
		{1, 1, Inside, Inside},
		{3, 2, Above, Below},
		{2, 3, Below, Above},
	} {
		cmp, err := Compare(pred, stretched(pred, c.num, c.den), p, day)
		if err != nil {
			t.Fatal(err)
		}
		if err := cmp.AddRange(MinRangeRuns, nil); err != nil {
			t.Fatal(err)
		}
		if cmp.Range == nil || len(cmp.RangeChecks) != 2 {
			t.Fatalf("stretch %d/%d: range %+v, checks %+v", c.num, c.den, cmp.Range, cmp.RangeChecks)
		}
		lat, tput := cmp.RangeChecks[0], cmp.RangeChecks[1]
		if lat.Key != "first_latency" || lat.Where != c.latency || tput.Where != c.throughput {
			t.Errorf("stretch %d/%d: %s %s, %s %s; want %s, %s", c.num, c.den, lat.Key, lat.Where, tput.Key, tput.Where, c.latency, c.throughput)
		}
		if want := cmp.Range.Throughput(&cmp.Measured.Metrics).Key; tput.Key != want {
			t.Errorf("throughput checked as %s, want %s", tput.Key, want)
		}
	}
	// Without a plan there is nothing to range over.
	cmp, err := Compare(pred, stretched(pred, 1, 1), nil, day)
	if err != nil {
		t.Fatal(err)
	}
	if err := cmp.AddRange(0, nil); err != nil || cmp.Range != nil {
		t.Errorf("no plan: range %+v, %v", cmp.Range, err)
	}
}

func TestQuantilesNearestRank(t *testing.T) {
	vs := []float64{10, 1, 9, 2, 8, 3, 7, 4, 6, 5}
	if q, ok := quantiles(vs); !ok || q != (Quantiles{1, 5, 9}) {
		t.Errorf("quantiles %+v %v", q, ok)
	}
	if _, ok := quantiles([]float64{1, math.NaN()}); ok {
		t.Error("NaN gave quantiles")
	}
}

// The cost scale reaches every device time of the profile that the
// device's speed sets, and no host time: a new time in DeviceCosts must
// be placed in one list or the other here.
func TestScaleCostsFields(t *testing.T) {
	scaled := map[string]bool{"unet_ms": true, "first_call_ms": true, "encode_ms": true, "decode_ms": true, "encode_first_ms": true, "decode_first_ms": true}
	kept := map[string]bool{"host_ms_per_step": true, "sample_first_ms": true, "sample_last_ms": true}
	var c plan.DeviceCosts
	v := reflect.ValueOf(&c).Elem()
	for i := range v.NumField() {
		switch f := v.Field(i); f.Kind() {
		case reflect.Float64:
			f.SetFloat(1)
		case reflect.Map:
			if f.Type() == reflect.TypeFor[map[int]float64]() {
				f.Set(reflect.ValueOf(map[int]float64{1: 1}))
			}
		}
	}
	got := reflect.ValueOf(scaleCosts(c, 2))
	for i := range v.NumField() {
		name, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("yaml"), ",")
		var val float64
		switch f := got.Field(i); {
		case f.Kind() == reflect.Float64:
			val = f.Float()
		case f.Type() == reflect.TypeFor[map[int]float64]():
			val = f.Interface().(map[int]float64)[1]
		default:
			continue
		}
		switch {
		case scaled[name] && val != 2:
			t.Errorf("%s: %g, want it scaled to 2", name, val)
		case kept[name] && val != 1:
			t.Errorf("%s: %g, want it kept at 1", name, val)
		case !scaled[name] && !kept[name] && strings.HasSuffix(name, "_ms"):
			t.Errorf("%s: a time the cost scale does not know: scale it in scaleCosts or keep it, and list it here", name)
		}
	}
	if c.UNetMS[1] != 1 {
		t.Error("scaleCosts changed its argument's map")
	}
}
