package study

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/vdpp/vdpp/plan"
)

// mixedPlan is 8 devices of two kinds (4 × a5000, 4 × a6000 at 1.3× the
// speed, one cross-socket link), SVD 14 frames at 320×576, 28 steps,
// micro-batches 1–4 in the profile.
func mixedPlan(tb testing.TB) *plan.Plan {
	dir := tb.TempDir()
	costs := `provenance: {source: estimate, date: 2026-12-01, reference: benchmark of the layout search}
model: {family: svd, frames: 14, latent: {channels: 4, height: 40, width: 72}, dtype: fp16}
devices:
  a5000: {unet_ms: {1: 300, 2: 560, 3: 830, 4: 1100}, first_call_ms: {1: 800}, encode_ms: 80, decode_ms: 812.5,
          memory_gb: {unet: 3.05, encoder: 1.26, decoder: 0.2, runtime: 0.5, activations_per_sample: 1.5}}
  a6000: {unet_ms: {1: 230, 2: 430, 3: 640, 4: 850}, first_call_ms: {1: 700}, encode_ms: 65, decode_ms: 640,
          memory_gb: {unet: 3.05, encoder: 1.26, decoder: 0.2, runtime: 0.5, activations_per_sample: 1.5}}
links:
  pcie4: {latency_us: 15, bandwidth_gbps: 22}
  cross-socket: {latency_us: 25, bandwidth_gbps: 12}
`
	pl := `name: mixed-8
model: {family: svd, frames: 14, latent: {channels: 4, height: 40, width: 72}, dtype: fp16}
sampler: {steps: 28}
devices:
  - {name: gpu0, kind: a5000, memory_gb: 24}
  - {name: gpu1, kind: a5000, memory_gb: 24}
  - {name: gpu2, kind: a5000, memory_gb: 24}
  - {name: gpu3, kind: a5000, memory_gb: 24}
  - {name: gpu4, kind: a6000, memory_gb: 48}
  - {name: gpu5, kind: a6000, memory_gb: 48}
  - {name: gpu6, kind: a6000, memory_gb: 48}
  - {name: gpu7, kind: a6000, memory_gb: 48}
links: {default: pcie4, overrides: [{between: [gpu3, gpu4], kind: cross-socket}]}
workload: {samples: 40}
costs: costs.yaml
`
	for name, data := range map[string]string{"costs.yaml": costs, "plan.yaml": pl} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	p, err := plan.Load(filepath.Join(dir, "plan.yaml"))
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// BenchmarkSearch runs the full search over 8 mixed devices and reports
// the candidates weighed per second, how many there were, how many the
// bounds set aside and how many were simulated (the rest are duplicates
// by cost or do not fit); run it with -cpu 1 for one core.
func BenchmarkSearch(b *testing.B) {
	for _, g := range []Goal{GoalThroughput, GoalLatency} {
		b.Run(string(g), func(b *testing.B) {
			p := mixedPlan(b)
			var cands, pruned, simulated int
			for b.Loop() {
				r, err := Search(p, SearchOptions{Goal: g})
				if err != nil {
					b.Fatal(err)
				}
				cands, pruned, simulated = len(r.All), r.Pruned, r.Simulated
			}
			b.ReportMetric(float64(cands)*float64(b.N)/b.Elapsed().Seconds(), "candidates/s")
			b.ReportMetric(float64(cands), "candidates")
			b.ReportMetric(float64(pruned), "set-aside-by-bounds")
			b.ReportMetric(float64(simulated), "simulated")
		})
	}
}
