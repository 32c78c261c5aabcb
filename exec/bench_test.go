package exec

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vdpp/vdpp/models"
	"github.com/vdpp/vdpp/plan"
)

// nullModel returns at once: everything a run spends is the executor's.
type nullModel struct{ unet *atomic.Int64 }

func (m nullModel) UNet(in models.UNetInput, out []float32) error {
	t0 := time.Now()
	clear(out)
	m.unet.Add(int64(time.Since(t0)))
	return nil
}
func (nullModel) Encode(s models.Shape, images, emb, lat []float32) error { return nil }
func (nullModel) Decode(s models.Shape, latents, frames []float32) error  { return nil }

// BenchmarkOverheadPerStep measures the executor's own time per sampler
// step (sampler math, copies, hand-offs, tracing; everything but the UNet
// call) on a 2-stage pipeline at the tiny model's default shape (8 frames,
// 4×16×16, CFG on), as overhead-ns/step.
func BenchmarkOverheadPerStep(b *testing.B) {
	const steps, samples = 28, 8
	p := testPlan("bench", steps, samples, 1, [][2]int{{0, 13}, {14, 27}})
	p.Model.Frames = 8
	p.Model.Latent = plan.Latent{Channels: 4, Height: 16, Width: 16}
	var unet atomic.Int64
	f := func(d plan.Device, st plan.Stage) (models.Model, error) { return nullModel{&unet}, nil }
	img := make([]float32, 3*64*16*16)
	opts := Options{Images: func(int) ([]float32, error) { return img, nil }}
	var total time.Duration
	for b.Loop() {
		t0 := time.Now()
		if _, err := Run(context.Background(), p, f, opts); err != nil {
			b.Fatal(err)
		}
		total += time.Since(t0)
	}
	// Two stages run at once: per step, the busy time of both stages
	// (≈ 2 × wall time at steady state) is an upper bound; report wall
	// time per step of one sample through one stage, the conservative view.
	perStep := float64(total-time.Duration(unet.Load())/2) / float64(b.N*samples*steps)
	b.ReportMetric(perStep*2, "overhead-ns/step")
	b.ReportMetric(0, "ns/op")
}
