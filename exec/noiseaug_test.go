package exec

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/vdpp/vdpp/models"
	"github.com/vdpp/vdpp/plan"
)

// imageLog records, in order, the images its model is asked to encode.
type imageLog struct {
	*fakeModel
	mu     *sync.Mutex
	images *[][]float32
}

func (l imageLog) Encode(s models.Shape, images, emb, lat []float32) error {
	l.mu.Lock()
	*l.images = append(*l.images, slices.Clone(images))
	l.mu.Unlock()
	return l.fakeModel.Encode(s, images, emb, lat)
}

// TestNoiseAug: with model.noise_aug > 0 the encode stage gives the encoder
// each sample's image and then that image + noise_aug·ε, ε drawn here from
// PCG(seed, 2⁶³ | sample) as the reference; the videos differ from those
// without noise augmentation, and every layout and micro-batch size gives
// byte-identical videos.
func TestNoiseAug(t *testing.T) {
	const steps, samples, strength = 5, 4, 0.05
	layouts := []struct {
		name  string
		split [][][2]int
	}{
		{"1 stage", [][][2]int{{{0, 4}}}},
		{"2 stages", [][][2]int{{{0, 1}, {2, 4}}}},
		{"2 replicas x 2", [][][2]int{{{0, 2}, {3, 4}}, {{0, 0}, {1, 4}}}},
	}
	run := func(name string, mb int, aug float64, split [][][2]int, f Factory) map[string][]byte {
		p := testPlan(name, steps, samples, mb, split...)
		p.Model.NoiseAug = aug
		dir := t.TempDir()
		res, err := runPlan(t, p, f, Options{OutDir: dir})
		if err != nil {
			t.Fatalf("%s mb %d noise_aug %g: %v", name, mb, aug, err)
		}
		if res.Done != samples {
			t.Fatalf("%s: %d samples done, want %d", name, res.Done, samples)
		}
		return readOutputs(t, dir)
	}

	// The reference: what the encoder receives in a 1-stage, micro-batch 1
	// run (samples in order, two encodes each).
	var mu sync.Mutex
	var seen [][]float32
	logged := func(d plan.Device, st plan.Stage) (models.Model, error) {
		return imageLog{fakeModel: &fakeModel{}, mu: &mu, images: &seen}, nil
	}
	base := run("1 stage", 1, strength, layouts[0].split, logged)
	p := testPlan("ref", steps, samples, 1, layouts[0].split...)
	images := fakeImages(p)
	if len(seen) != 2*samples {
		t.Fatalf("%d encoder calls, want %d (the clean and the noised image of each sample)", len(seen), 2*samples)
	}
	for i := range samples {
		img, _ := images(i)
		r := rand.New(rand.NewPCG(p.Workload.Seed, 1<<63|uint64(i)))
		want := make([]float32, len(img))
		for k, v := range img {
			want[k] = float32(float64(v) + strength*r.NormFloat64())
		}
		if !slices.Equal(seen[2*i], img) {
			t.Errorf("sample %d: the first encode is not of the image as given", i)
		}
		if !slices.Equal(seen[2*i+1], want) {
			t.Errorf("sample %d: the second encode is not of image + noise_aug·ε", i)
		}
	}

	plain := run("1 stage", 1, 0, layouts[0].split, fakeFactory(fakeModel{}))
	if bytes.Equal(plain["sample_00000/sample.json"], base["sample_00000/sample.json"]) {
		t.Error("noise_aug changed nothing in sample 0's final latent")
	}
	for _, mb := range []int{1, 2} {
		for _, l := range layouts {
			got := run(l.name, mb, strength, l.split, fakeFactory(fakeModel{}))
			if len(got) != len(base) {
				t.Errorf("mb %d %s: %d files, want %d", mb, l.name, len(got), len(base))
			}
			for k, v := range base {
				if !bytes.Equal(got[k], v) {
					t.Errorf("mb %d %s: %s differs from the 1-stage micro-batch 1 run", mb, l.name, k)
				}
			}
		}
	}
}
