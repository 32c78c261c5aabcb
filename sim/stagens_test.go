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
