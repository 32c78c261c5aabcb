package study

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/vdpp/vdpp/plan"
)

// searchPlan writes a small random plan and its profile to a folder and
// loads it: 2–4 devices of two kinds at random speeds, maybe one link of
// its own, 4–8 steps, UNet costs for micro-batches 1 and 2 (a batch of 2
// may cost more than twice one), batch, poisson or interval arrivals.
func searchPlan(t *testing.T, rng *rand.Rand, samples int, jitter float64) *plan.Plan {
	t.Helper()
	dir := t.TempDir()
	costs := fmt.Sprintf(`provenance: {source: estimate, date: 2026-01-01, reference: search test}
model: {family: tiny, frames: 2, latent: {channels: 4, height: 8, width: 8}, dtype: fp32}
devices:
  a: {unet_ms: {1: %.1f, 2: %.1f}, first_call_ms: {1: %.1f}, encode_ms: %.1f, decode_ms: %.1f, host_ms_per_step: 0.5, jitter: %g,
      sample_first_ms: %.1f, sample_last_ms: %.1f, decode_first_ms: [%.1f],
      memory_gb: {unet: 3, runtime: 1, activations_per_sample: 2, encoder: 1, decoder: 1}}
  b: {unet_ms: {1: %.1f}, encode_ms: %.1f, decode_ms: %.1f, jitter: %g, sample_last_ms: %.1f, encode_first_ms: [%.1f, 9],
      memory_gb: {unet: 3, runtime: 1, activations_per_sample: 2, encoder: 1, decoder: 1}}
links:
  pcie: {latency_us: %.0f, bandwidth_gbps: 0.001, setup_ms: %.1f, receive_us: %.0f, setup_ms_per_rank: 2}
  slow: {latency_us: %.0f, bandwidth_gbps: 0.0005, receive_us: %.0f}
`, 10+rng.Float64()*20, 15+rng.Float64()*40, 30+rng.Float64()*40, rng.Float64()*10, rng.Float64()*30, jitter,
		rng.Float64()*3, rng.Float64()*20, 40*rng.Float64(),
		10+rng.Float64()*20, rng.Float64()*10, rng.Float64()*30, jitter, rng.Float64()*20, 20*rng.Float64(),
		rng.Float64()*3000, rng.Float64()*20, rng.Float64()*2000, rng.Float64()*8000, rng.Float64()*2000)
	n := 2 + rng.IntN(3)
	var devs []string
	for i := range n {
		devs = append(devs, fmt.Sprintf("{name: d%d, kind: %s, speed: %g, memory_gb: 10}", i, []string{"a", "b"}[rng.IntN(2)], []float64{1, 1, 1.5}[rng.IntN(3)]))
	}
	links := "{default: pcie}"
	if n > 2 && rng.IntN(2) == 0 {
		links = "{default: pcie, overrides: [{between: [d0, d2], kind: slow}]}"
	}
	pl := fmt.Sprintf(`name: search
model: {family: tiny, frames: 2, latent: {channels: 4, height: 8, width: 8}, dtype: fp32}
sampler: {steps: %d}
devices: [%s]
links: %s
workload: {samples: %d, seed: %d, arrival: %s}
costs: costs.yaml
`, 4+rng.IntN(5), strings.Join(devs, ", "), links, samples, rng.IntN(100),
		[]string{"{kind: batch}", "{kind: batch}", "{kind: poisson, rate: 40}", "{kind: interval, interval_ms: 30}"}[rng.IntN(4)])
	for name, data := range map[string]string{"costs.yaml": costs, "plan.yaml": pl} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p, err := plan.Load(filepath.Join(dir, "plan.yaml"))
	if err != nil {
		t.Fatalf("%v\n%s\n%s", err, pl, costs)
	}
	return p
}

// goalOptions are the options of each goal in the tests, with SLOs and
// targets scaled to the plan so that they bind for some candidates.
func goalOptions(g Goal) SearchOptions {
	o := SearchOptions{Goal: g, RateSamples: 40}
	switch g {
	case GoalRate:
		o.SLOP95NS = 400e6
	case GoalDevices:
		o.TargetThroughput = 12
	case GoalThroughput:
		o.SLOFirstNS = 350e6
	}
	return o
}

// TestSearchEqualsBruteForce: on small random spaces, for every goal, the
// search with its bounds finds the same winner, with the same metrics, as
// simulating every candidate; and every bound holds against the
// simulated metrics.
func TestSearchEqualsBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	pruned := 0
	for trial := range 30 {
		p := searchPlan(t, rng, 1+rng.IntN(15), 0)
		for _, g := range Goals() {
			got, all := searchBoth(t, p, goalOptions(g))
			pruned += got.Pruned - all.Pruned
			checkBounds(t, all)
			a, b := got.Best(), all.Best()
			switch {
			case (a == nil) != (b == nil):
				t.Fatalf("trial %d %s: search found %v, brute force %v", trial, g, a != nil, b != nil)
			case a == nil:
				continue
			case a.Label != b.Label || !reflect.DeepEqual(a.Metrics, b.Metrics) || a.Rate != b.Rate:
				t.Errorf("trial %d %s: search picked %s (rate %g), brute force %s (rate %g)", trial, g, a.Label, a.Rate, b.Label, b.Rate)
			}
		}
	}
	if pruned == 0 {
		t.Error("the bounds set nothing aside: the comparison tested nothing")
	}
}

// searchBoth runs the search with its bounds and as brute force
// (NoPrune), with otherwise the same options.
func searchBoth(t *testing.T, p *plan.Plan, o SearchOptions) (got, all *SearchResult) {
	t.Helper()
	got, err := Search(p, o)
	if err != nil {
		t.Fatal(err)
	}
	o.NoPrune = true
	if all, err = Search(p, o); err != nil {
		t.Fatal(err)
	}
	return got, all
}

// checkBounds: each simulated candidate's throughput and overall
// throughput are at most their bounds and its first-sample latency at
// least its bound.
func checkBounds(t *testing.T, r *SearchResult) {
	t.Helper()
	for _, c := range r.All {
		if c.Metrics == nil || r.Options.Goal == GoalRate {
			continue
		}
		if m := c.Metrics; m.Throughput > c.BoundThroughput*(1+1e-9) || m.FirstLatencyNS < c.BoundFirstNS {
			t.Errorf("%s: throughput %g over its bound %g, or first latency %d under its bound %d",
				c.Label, m.Throughput, c.BoundThroughput, m.FirstLatencyNS, c.BoundFirstNS)
		}
		if m := c.Metrics; m.OverallThroughput > c.BoundOverall*(1+1e-9) {
			t.Errorf("%s: overall throughput %g over its bound %g", c.Label, m.OverallThroughput, c.BoundOverall)
		}
		if c.Metrics.Throughput > c.Capacity*(1+1e-9) && c.Metrics.Samples > 50 {
			t.Errorf("%s: throughput %g over its capacity %g", c.Label, c.Metrics.Throughput, c.Capacity)
		}
	}
}

// TestSearchBoundsWithJitter: with step jitter the bounds, widened by six
// standard deviations, still hold on random plans.
func TestSearchBoundsWithJitter(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 5))
	for range 6 {
		p := searchPlan(t, rng, 12, 0.08)
		r, err := Search(p, SearchOptions{Goal: GoalThroughput, NoPrune: true})
		if err != nil {
			t.Fatal(err)
		}
		checkBounds(t, r)
	}
}

// TestSearchWinnerRoundTrip: the winner written as a plan file loads and
// simulates to the same metrics.
func TestSearchWinnerRoundTrip(t *testing.T) {
	p, err := plan.Load("../configs/svd-14f-320x576-7xa5000.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range []Goal{GoalThroughput, GoalLatency} {
		r, err := Search(p, SearchOptions{Goal: g})
		if err != nil {
			t.Fatal(err)
		}
		best := r.Best()
		dir := t.TempDir()
		b, err := best.Plan.Marshal(dir)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "winner.yaml")
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		q, err := plan.Load(path)
		if err != nil {
			t.Fatalf("%s: the winner does not load: %v", g, err)
		}
		run, err := Simulate(q, false)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(&run.Metrics, best.Metrics) {
			t.Errorf("%s: winner %s simulated again: %+v, in the search %+v", g, best.Label, run.Metrics, *best.Metrics)
		}
	}
}

func TestSearchOptionsRejected(t *testing.T) {
	p, err := plan.Load("../configs/svd-14f-320x576-4xa5000.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		o    SearchOptions
		want string
	}{
		{SearchOptions{Goal: "speed"}, `goal "speed"`},
		{SearchOptions{Goal: GoalRate}, "needs a p95 latency SLO"},
		{SearchOptions{Goal: GoalDevices}, "needs a target throughput"},
		{SearchOptions{Goal: GoalThroughput, MaxDevices: -1}, "max devices -1"},
		{SearchOptions{Goal: GoalThroughput, MicroBatches: []int{0}}, "micro-batch 0"},
		{SearchOptions{Goal: GoalRate, SLOP95NS: 1, RateSamples: 5}, "want 20"},
		{SearchOptions{Goal: GoalRate, SLOP95NS: 1, RateSamples: MaxRateSamples + 1}, "want 20"},
		{SearchOptions{Goal: GoalThroughput, MicroBatches: []int{}}, "no micro-batch sizes"},
	} {
		if _, err := Search(p, c.o); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: err %v, want one with %q", c.o, err, c.want)
		}
	}
}

// TestSearchWideJitter: with jitter so wide that the bounds prove nothing
// (a step may take no time), nothing is set aside by them and the answer
// still equals brute force.
func TestSearchWideJitter(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	p := searchPlan(t, rng, 8, 0.4)
	for _, g := range []Goal{GoalThroughput, GoalRate} {
		o := goalOptions(g)
		o.SLOFirstNS = 0
		got, all := searchBoth(t, p, o)
		if a, b := got.Best(), all.Best(); (a == nil) != (b == nil) || a != nil && a.Label != b.Label {
			t.Errorf("%s: search and brute force disagree", g)
		}
		if got.Best() == nil {
			t.Errorf("%s: nothing found", g)
		}
	}
}

// TestSearchOverallBelow: below OverallBelow samples the search ranks
// every layout by overall throughput, and the reason holds: data parallel
// over all devices with the largest micro-batch has no steady state. At
// or above it the search ranks by steady-state throughput where there is
// one.
func TestSearchOverallBelow(t *testing.T) {
	checked := 0
	for trial := range 12 {
		seed := uint64(trial)
		p := searchPlan(t, rand.New(rand.NewPCG(seed, 9)), 1, 0)
		if p.Workload.Arrival.Kind != plan.ArrivalBatch {
			continue
		}
		mbs := profileBatches(p)
		n := OverallBelow(len(p.Devices), mbs)
		for _, samples := range []int{n - 1, n} {
			q := searchPlan(t, rand.New(rand.NewPCG(seed, 9)), samples, 0)
			o := goalOptions(GoalThroughput)
			o.SLOFirstNS, o.NoPrune = 0, true
			r, err := Search(q, o)
			if err != nil {
				t.Fatal(err)
			}
			if r.Overall != (samples < n) {
				t.Errorf("trial %d, %d samples (threshold %d): Overall %v", trial, samples, n, r.Overall)
			}
			for _, c := range r.All {
				if c.Metrics == nil {
					continue
				}
				if r.Throughput(c) != map[bool]float64{true: c.Metrics.OverallThroughput, false: reached(c.Metrics, false)}[r.Overall] {
					t.Errorf("trial %d: %s ranked by %g", trial, c.Label, r.Throughput(c))
				}
				if samples < n && KindOf(c.Plan) == LayoutDataParallel && c.Devices == len(p.Devices) && c.Plan.Layout.MicroBatch == slices.Max(mbs) {
					checked++
					if !c.Metrics.TooFewSamples {
						t.Errorf("trial %d: %s with %d samples has a steady state", trial, c.Label, samples)
					}
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("no data-parallel candidate over all devices was checked")
	}
}
