package sim

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/vdpp/vdpp/plan"
)

// TestSteadyStageMatchesPlan checks that the simulator and plan.StageNS
// (which the balanced assignment minimises) agree on what one micro-batch
// costs a stage: device speed scales the UNet, encode and decode, not the
// host's time per step. A single-stage pipeline without warm-up finishes a
// sample every StageNS once it is busy.
func TestSteadyStageMatchesPlan(t *testing.T) {
	dir := t.TempDir()
	costs := `provenance: {source: estimate, date: 2026-01-01, reference: test}
model: {family: tiny, frames: 2, latent: {channels: 4, height: 8, width: 8}, dtype: fp16}
devices:
  k: {unet_ms: {1: 39}, encode_ms: 8, decode_ms: 26, host_ms_per_step: 1.5}
links:
  wire: {latency_us: 1, bandwidth_gbps: 10}
`
	pl := `name: stagens
model: {family: tiny, frames: 2, latent: {channels: 4, height: 8, width: 8}, dtype: fp16}
sampler: {steps: 4}
devices: [{name: d0, kind: k, speed: 1.6}]
links: {default: wire}
workload: {samples: 3}
costs: costs.yaml
`
	if err := os.WriteFile(filepath.Join(dir, "costs.yaml"), []byte(costs), 0o644); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "plan.yaml")
	if err := os.WriteFile(path, []byte(pl), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := plan.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	want, ok := p.StageNS(p.Pipelines[0].Stages[0])
	if !ok {
		t.Fatal("plan.StageNS: no stage time")
	}
	res, err := Run(p, Options{Trace: true})
	if err != nil {
		t.Fatal(err)
	}
	var done []int64
	for _, s := range res.Timeline.Samples {
		done = append(done, s.Done)
	}
	for i := 1; i < len(done); i++ {
		if got := done[i] - done[i-1]; got != want {
			t.Errorf("completion gap %d: %d ns, plan.StageNS says %d ns", i, got, want)
		}
	}
}

// TestSteadyStageMatchesPlanRounding checks that plan.StageNS and the
// simulator agree to the nanosecond when device speed does not divide the
// costs evenly (each UNet call is rounded to whole nanoseconds once, as the
// simulator schedules it), with and without micro-batches.
func TestSteadyStageMatchesPlanRounding(t *testing.T) {
	cases := []spec{
		{stepMS: []float64{10}, steps: []int{3}, speed: []float64{3}, samples: 4, mb: 1},
		{stepMS: []float64{10}, steps: []int{7}, speed: []float64{3}, hostMS: 0.0000004, encMS: 1, decMS: 2, samples: 4, mb: 1},
		{stepMS: []float64{7}, steps: []int{5}, speed: []float64{1.7}, hostMS: 0.25, encMS: 1, decMS: 1, samples: 6, mb: 2},
	}
	for i, s := range cases {
		p := s.plan()
		want, ok := p.StageNS(p.Pipelines[0].Stages[0])
		if !ok {
			t.Fatalf("case %d: plan.StageNS: no stage time", i)
		}
		r := run(t, p)
		var done []int64
		for _, smp := range r.Timeline.Samples {
			if len(done) == 0 || smp.Done != done[len(done)-1] {
				done = append(done, smp.Done)
			}
		}
		if len(done) < 3 {
			t.Fatalf("case %d: %d distinct completion times, want at least 3", i, len(done))
		}
		// From the second micro-batch on, the device is warm.
		if got := done[2] - done[1]; got != want {
			t.Errorf("case %d: completion gap %d ns, plan.StageNS says %d ns", i, got, want)
		}
	}
}

// TestSteadyStageWithHops checks plan.StageNS's hand-off terms against the
// simulator on two-stage pipelines whose hops are as long as a step or
// longer: once the pipeline is full, a sample completes every slowest
// StageNS, blocking (a stage is busy while it receives and sends) and
// buffered (transfers overlap compute; a link slower than compute sets
// the pace).
func TestSteadyStageWithHops(t *testing.T) {
	cases := []struct {
		name    string
		handoff plan.Handoff
		stepMS  []float64
		linkUS  float64
	}{
		{"blocking, compute-bound", plan.HandoffBlocking, []float64{10, 14}, 3000},
		{"blocking, first stage slow", plan.HandoffBlocking, []float64{20, 5}, 4000},
		{"buffered, compute-bound", plan.HandoffBuffered, []float64{10, 14}, 3000},
		{"buffered, link-bound", plan.HandoffBuffered, []float64{10, 14}, 60000},
	}
	for _, c := range cases {
		s := spec{stepMS: c.stepMS, steps: []int{2, 2}, linkUS: c.linkUS, samples: 12, handoff: c.handoff}
		p := s.plan()
		var want int64
		for _, st := range p.Pipelines[0].Stages {
			ns, ok := p.StageNS(st)
			if !ok {
				t.Fatalf("%s: no StageNS", c.name)
			}
			want = max(want, ns)
		}
		res := run(t, p)
		done := doneTimes(res.Timeline)
		for i := 6; i < s.samples; i++ { // full pipeline, set-up long paid
			if got := done[i] - done[i-1]; got != want {
				t.Errorf("%s: completion gap %d: %d ns, slowest plan.StageNS %d ns", c.name, i, got, want)
			}
		}
	}
}
