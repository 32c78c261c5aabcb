package plan

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
)

// costPlan builds a resolved-ready plan over devices with the given
// speeds and kinds, with a profile that has two device kinds.
func costPlan(steps int, speeds []float64, kinds []string, profile *Profile) *Plan {
	p := &Plan{
		Model:    Model{Family: "svd", Frames: 14, Latent: Latent{4, 40, 72}},
		Sampler:  Sampler{Steps: steps},
		Workload: Workload{Samples: 1},
		Layout:   Layout{Assignment: "balanced"},
		Profile:  profile,
	}
	for i := range speeds {
		p.Devices = append(p.Devices, Device{Name: fmt.Sprintf("gpu%d", i), Kind: kinds[i], Speed: speeds[i]})
	}
	p.EnsureDefaults()
	return p
}

// bottleneck is the slowest stage's StageNS.
func bottleneck(t *testing.T, p *Plan, pl Pipeline) int64 {
	t.Helper()
	var worst int64
	for _, st := range pl.Stages {
		ns, ok := p.StageNS(st)
		if !ok {
			t.Fatalf("no stage time for %+v", st)
		}
		worst = max(worst, ns)
	}
	return worst
}

// bruteForce tries every split of n steps over the devices (each at least
// one) and returns the smallest bottleneck.
func bruteForce(p *Plan, n int) int64 {
	s := len(p.Devices)
	enc, dec := 0, s-1
	if p.Layout.EncodeOn == "last" {
		enc = s - 1
	}
	if p.Layout.DecodeOn == "first" {
		dec = 0
	}
	best := int64(1 << 62)
	sizes := make([]int, s)
	var rec func(i, left int, worst int64)
	// Stage i runs on device i; its neighbours are devices i-1 and i+1.
	nb := func(i int) (int, int) {
		prev, next := i-1, i+1
		if next == s {
			next = -1
		}
		return prev, next
	}
	rec = func(i, left int, worst int64) {
		if i == s-1 {
			prev, next := nb(i)
			t, _ := p.stageNS(i, left, i == enc, i == dec, prev, next)
			best = min(best, max(worst, t))
			return
		}
		for k := 1; k <= left-(s-1-i); k++ {
			sizes[i] = k
			prev, next := nb(i)
			t, _ := p.stageNS(i, k, i == enc, i == dec, prev, next)
			rec(i+1, left-k, max(worst, t))
		}
	}
	rec(0, n, 0)
	return best
}

// TestBalancedOptimal compares the balanced assignment with brute force on
// random small plans: heterogeneous speeds and kinds, encode and decode on
// either end, micro-batches that interpolate step times.
func TestBalancedOptimal(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 400 {
		prof := &Profile{File: "test", Devices: map[string]DeviceCosts{
			"a": {UNetMS: map[int]float64{1: 50 + rng.Float64()*300, 4: 900}, EncodeMS: rng.Float64() * 500, DecodeMS: rng.Float64() * 2000, HostMSPerStep: rng.Float64() * 5},
			"b": {UNetMS: map[int]float64{1: 50 + rng.Float64()*300}, EncodeMS: rng.Float64() * 500, DecodeMS: rng.Float64() * 2000},
		}}
		s := 1 + rng.IntN(5)
		n := s + rng.IntN(12-s)
		speeds, kinds := make([]float64, s), make([]string, s)
		for i := range speeds {
			speeds[i] = []float64{0.5, 1, 1, 1.5, 2}[rng.IntN(5)]
			kinds[i] = []string{"a", "b"}[rng.IntN(2)]
		}
		p := costPlan(n, speeds, kinds, prof)
		if p.Layout.Replicas == len(p.Devices) { // one stage per pipeline: either end
			p.Layout.EncodeOn = []End{EndFirst, EndLast}[rng.IntN(2)]
			p.Layout.DecodeOn = []End{EndFirst, EndLast}[rng.IntN(2)]
		}
		p.Layout.MicroBatch = 1 + rng.IntN(3)
		// Hops that matter: up to a few hundred ms per latent, blocking or
		// buffered, so the split must weigh transfers against compute.
		prof.Links = map[string]LinkCosts{DefaultLink: {LatencyUS: rng.Float64() * 3e5, BandwidthGBps: 0.001 + rng.Float64()*0.01}}
		p.Layout.Handoff = []Handoff{HandoffBlocking, HandoffBuffered}[rng.IntN(2)]
		if err := p.Resolve(); err != nil {
			t.Fatalf("trial %d: %v", trial, err)
		}
		checkCovers(t, p)
		got, want := bottleneck(t, p, p.Pipelines[0]), bruteForce(p, n)
		if got != want {
			t.Fatalf("trial %d (%d steps, speeds %v, kinds %v): balanced bottleneck %d ns, brute force %d ns; stages %+v",
				trial, n, speeds, kinds, got, want, p.Pipelines[0].Stages)
		}
	}
}

func TestBalancedByHand(t *testing.T) {
	prof := &Profile{File: "test", Devices: map[string]DeviceCosts{"a": {UNetMS: map[int]float64{1: 100}}}}
	// One device twice as fast: it takes twice the steps. 30 steps at
	// 100 ms: 20 steps at 50 ms and 10 at 100 ms, 1 s each.
	p := costPlan(30, []float64{2, 1}, []string{"a", "a"}, prof)
	if err := p.Resolve(); err != nil {
		t.Fatal(err)
	}
	if st := p.Pipelines[0].Stages; st[0].Steps() != 20 || st[1].Steps() != 10 {
		t.Errorf("speeds 2 and 1: steps %d and %d, want 20 and 10", st[0].Steps(), st[1].Steps())
	}
	// Equal devices, no encode or decode: as even as the even split.
	p = costPlan(28, []float64{1, 1, 1}, []string{"a", "a", "a"}, prof)
	if err := p.Resolve(); err != nil {
		t.Fatal(err)
	}
	if got := []int{p.Pipelines[0].Stages[0].Steps(), p.Pipelines[0].Stages[1].Steps(), p.Pipelines[0].Stages[2].Steps()}; !equalInts(got, []int{10, 9, 9}) {
		t.Errorf("28 steps on 3 equal devices: %v, want [10 9 9]", got)
	}
	// Decode of 250 ms (2.5 steps) on the last of 2 devices, 20 steps:
	// stage times 100k and 100(20-k)+250; the best split is k=11 (1.1 s,
	// 1.15 s), since k=12 gives 1.2 s and k=10 gives 1.25 s.
	prof.Devices["a"] = DeviceCosts{UNetMS: map[int]float64{1: 100}, DecodeMS: 250}
	p = costPlan(20, []float64{1, 1}, []string{"a", "a"}, prof)
	if err := p.Resolve(); err != nil {
		t.Fatal(err)
	}
	if st := p.Pipelines[0].Stages; st[0].Steps() != 11 || st[1].Steps() != 9 {
		t.Errorf("decode on last: steps %d and %d, want 11 and 9", st[0].Steps(), st[1].Steps())
	}
}

// TestStageNS checks stage times of the 4-GPU reference plan by hand:
// 7 steps × 300 ms, + 80 ms encode on the first, + 812.5 ms decode on the
// last, + each blocking hop in and out: 15 µs + one fp16 latent of
// 14×4×40×72 elements at 22 GB/s over pcie4. Buffered, the hops overlap
// with compute and drop out.
func TestStageNS(t *testing.T) {
	p, err := Load("../configs/svd-14f-320x576-4xa5000.yaml")
	if err != nil {
		t.Fatal(err)
	}
	hop := int64(math.Round(15e3 + 14*4*40*72*2/22.0))
	compute := []int64{2_180_000_000, 2_100_000_000, 2_100_000_000, 2_912_500_000}
	want := []int64{compute[0] + hop, compute[1] + 2*hop, compute[2] + 2*hop, compute[3] + hop}
	for i, st := range p.Pipelines[0].Stages {
		if got, ok := p.StageNS(st); !ok || got != want[i] {
			t.Errorf("blocking stage %d: %d ns, want %d", i, got, want[i])
		}
	}
	p.Layout.Handoff = HandoffBuffered
	for i, st := range p.Pipelines[0].Stages {
		if got, ok := p.StageNS(st); !ok || got != compute[i] {
			t.Errorf("buffered stage %d: %d ns, want %d", i, got, compute[i])
		}
	}
	// 3.05 unet + 0.5 runtime + 1.5 activations + 1.26 encoder on stage 0.
	if got, _ := p.StageMemoryGB(p.Pipelines[0].Stages[0]); got < 6.31-1e-9 || got > 6.31+1e-9 {
		t.Errorf("stage 0 memory %g GiB, want 6.31", got)
	}
}

func TestHops(t *testing.T) {
	p, err := Load("../configs/svd-14f-320x576-7xa5000.yaml")
	if err != nil {
		t.Fatal(err)
	}
	hops := p.Hops(p.Pipelines[0])
	if len(hops) != 6 || hops[3] != (Hop{"gpu3", "gpu4", "cross-socket"}) || hops[0] != (Hop{"gpu0", "gpu1", "pcie4"}) {
		t.Errorf("hops %+v", hops)
	}
}

// TestEndsOfMultiStagePipelines: encoding must come before the first step
// and decoding after the last, so a multi-stage pipeline rejects the other
// ends with the field's position, while a one-stage pipeline takes either.
func TestEndsOfMultiStagePipelines(t *testing.T) {
	data, err := os.ReadFile("../configs/svd-14f-320x576-7xa5000.yaml")
	if err != nil {
		t.Fatal(err)
	}
	base := strings.ReplaceAll(string(data), "costs: profiles/", "costs: ../configs/profiles/")
	for _, c := range []struct{ field, from, to string }{
		{"layout.encode_on", "encode_on: first", "encode_on: last"},
		{"layout.decode_on", "decode_on: last", "decode_on: first"},
	} {
		src := strings.Replace(base, c.from, c.to, 1)
		_, err := Parse([]byte(src), "ends.yaml")
		if err == nil || !strings.Contains(err.Error(), c.field+": ") || !strings.Contains(err.Error(), "several stages") {
			t.Errorf("%s: got %v, want an error at %s", c.to, err, c.field)
		}
		// Seven one-stage pipelines (data parallel): first and last are one stage.
		one := strings.Replace(src, "replicas: 1", "replicas: 7", 1)
		if _, err := Parse([]byte(one), "ends1.yaml"); err != nil {
			t.Errorf("%s on one-stage pipelines: %v", c.to, err)
		}
	}
}

// TestPipelineStageNS: a candidate pipeline, not in the plan, gets the
// same stage times as when it is the plan's layout.
func TestPipelineStageNS(t *testing.T) {
	p, err := Load("../configs/svd-14f-320x576-4xa5000.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cand := p.Pipelines[0]
	want := make([]int64, len(cand.Stages))
	for i, st := range cand.Stages {
		want[i], _ = p.StageNS(st)
	}
	p.Pipelines = nil // the candidate is no longer in the plan
	for i := range cand.Stages {
		if got, ok := p.PipelineStageNS(cand, i, 1); !ok || got != want[i] {
			t.Errorf("stage %d: %d ns, want %d", i, got, want[i])
		}
	}
	if got, _ := p.StageNS(cand.Stages[1]); got >= want[1] {
		t.Errorf("StageNS of a stage outside the plan counts hops: %d ns, with hops %d", got, want[1])
	}
	if _, ok := p.PipelineStageNS(cand, 9, 1); ok {
		t.Error("stage 9 of 4 reports ok")
	}
}
