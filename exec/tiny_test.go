package exec

import (
	"context"
	"sync"
	"testing"

	"github.com/vdpp/vdpp/models"
	"github.com/vdpp/vdpp/models/tiny"
	"github.com/vdpp/vdpp/plan"
)

// decodeSpy records the final latents the decode stage receives.
type decodeSpy struct {
	models.Model
	mu   *sync.Mutex
	seen *[][]float32
}

func (d decodeSpy) Decode(s models.Shape, latents, frames []float32) error {
	d.mu.Lock()
	n := len(latents) / s.Batch
	for b := 0; b < s.Batch; b++ {
		*d.seen = append(*d.seen, append([]float32(nil), latents[b*n:(b+1)*n]...))
	}
	d.mu.Unlock()
	return d.Model.Decode(s, latents, frames)
}

// TestTinyReferenceLandsOnTemplates runs the tiny model's Go reference
// through a 2-stage pipeline with the tiny model's built-in conditioning
// (sample i gets template i mod K): every sample must end on its template.
func TestTinyReferenceLandsOnTemplates(t *testing.T) {
	p := testPlan("tiny", 12, 5, 1, [][2]int{{0, 4}, {5, 11}})
	cfg := tiny.DefaultConfig()
	p.Model.Family = "tiny"
	p.Model.Frames = cfg.Frames
	p.Model.Latent = plan.Latent{Channels: tiny.Channels, Height: cfg.Height, Width: cfg.Width}
	var mu sync.Mutex
	var seen [][]float32
	f := func(d plan.Device, st plan.Stage) (models.Model, error) {
		r, err := tiny.NewReference(cfg)
		return decodeSpy{Model: r, mu: &mu, seen: &seen}, err
	}
	// The conditioning is the caller's: here the tiny model's built-in
	// images, as vdexec gives them.
	set, err := tiny.DefaultImages(cfg.Shape(1))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	res, err := Run(context.Background(), p, f, Options{OutDir: dir, Images: set.Image, Conditioning: set.Label})
	if err != nil {
		t.Fatal(err)
	}
	if res.Done != 5 || len(seen) != 5 {
		t.Fatalf("%d samples done, %d decoded; want 5", res.Done, len(seen))
	}
	got := map[int]bool{}
	for _, lat := range seen {
		k, dist := tiny.Nearest(cfg, lat)
		got[k] = true
		if dist > 0.05 {
			t.Errorf("a sample ends %.3g (rms) from its nearest template %d", dist, k)
		}
	}
	if len(got) != cfg.Templates {
		t.Errorf("samples landed on templates %v, want each of the %d templates once", got, cfg.Templates)
	}
	files := readOutputs(t, dir)
	if string(files["sample_00003/sample.json"]) == "" || len(files) != 5*(cfg.Frames+2) {
		t.Errorf("%d output files, want %d", len(files), 5*(cfg.Frames+2))
	}
}
