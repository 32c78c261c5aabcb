package models_test

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/vdpp/vdpp/models"
	"github.com/vdpp/vdpp/models/tiny"
)

// refNoised is the reference computed here: image + strength·ε with ε
// drawn from PCG(seed, 2⁶³ | sample), value by value.
func refNoised(seed uint64, sample int, strength float64, image []float32) []float32 {
	r := rand.New(rand.NewPCG(seed, 1<<63|uint64(sample)))
	out := make([]float32, len(image))
	for k, v := range image {
		out[k] = float32(float64(v) + strength*r.NormFloat64())
	}
	return out
}

func testImage(n int, phase float64) []float32 {
	img := make([]float32, n)
	for k := range img {
		img[k] = float32(math.Sin(float64(k)*0.013 + phase))
	}
	return img
}

// TestAugmentImageReference: AugmentImage is image + strength·ε with ε
// from the sample's noise augmentation stream, bit for bit; ε is standard
// normal, differs between samples, and is not the latent noise.
func TestAugmentImageReference(t *testing.T) {
	const seed, sample, strength = 42, 3, 0.02
	img := testImage(3*128*128, 0)
	got := make([]float32, len(img))
	models.AugmentImage(seed, sample, strength, img, got)
	if want := refNoised(seed, sample, strength, img); !slices.Equal(got, want) {
		t.Fatal("AugmentImage differs from image + strength·ε(PCG(seed, 2⁶³|sample))")
	}
	var sum, sq float64
	eps := make([]float64, len(img))
	for k := range img {
		eps[k] = (float64(got[k]) - float64(img[k])) / strength
		sum += eps[k]
		sq += eps[k] * eps[k]
	}
	n := float64(len(img))
	mean, std := sum/n, math.Sqrt(sq/n-(sum/n)*(sum/n))
	if math.Abs(mean) > 0.03 || math.Abs(std-1) > 0.03 {
		t.Errorf("ε has mean %.4f and std %.4f, want ≈ 0 and 1", mean, std)
	}
	latent := make([]float32, len(img))
	models.Noise(seed, sample, latent)
	if math.Abs(float64(latent[0])-eps[0]) < 1e-3 && math.Abs(float64(latent[1])-eps[1]) < 1e-3 {
		t.Error("ε is the latent noise of the sample: the streams must differ")
	}
	other := make([]float32, len(img))
	models.AugmentImage(seed, sample+1, strength, img, other)
	if slices.Equal(got, other) {
		t.Error("samples 3 and 4 get the same ε")
	}
	same := slices.Clone(img)
	models.AugmentImage(seed, sample, 0, img, same)
	if !slices.Equal(same, img) {
		t.Error("strength 0 changed the image")
	}
	inPlace := slices.Clone(img)
	models.AugmentImage(seed, sample, strength, inPlace, inPlace)
	if !slices.Equal(inPlace, got) {
		t.Error("AugmentImage in place differs")
	}
}

// encodeLog records the images each Encode call receives.
type encodeLog struct {
	models.Model
	images [][]float32
}

func (e *encodeLog) Encode(s models.Shape, images, emb, lat []float32) error {
	e.images = append(e.images, slices.Clone(images))
	return e.Model.Encode(s, images, emb, lat)
}

// TestEncodeConditioningReference: on the tiny model's Go reference, a
// batch of two samples gets the embedding of its clean images and the
// latent of its images noised as refNoised computes here; strength 0 is
// one encode of the clean images.
func TestEncodeConditioningReference(t *testing.T) {
	cfg := tiny.DefaultConfig()
	ref, err := tiny.NewReference(cfg)
	if err != nil {
		t.Fatal(err)
	}
	const seed, strength = 7, 0.1
	ids := []int{3, 8}
	s := cfg.Shape(2)
	px := 3 * 64 * s.Height * s.Width
	frame := s.Channels * s.Height * s.Width
	images := append(testImage(px, 0), testImage(px, 1)...)
	orig := slices.Clone(images)

	// The reference: the clean images' embedding, the noised images' latent.
	noised := append(refNoised(seed, ids[0], strength, images[:px]), refNoised(seed, ids[1], strength, images[px:])...)
	wantEmb, cleanLat := make([]float32, 2*models.Embedding), make([]float32, 2*frame)
	if err := ref.Encode(s, images, wantEmb, cleanLat); err != nil {
		t.Fatal(err)
	}
	wantLat := make([]float32, 2*frame)
	if err := ref.Encode(s, noised, make([]float32, 2*models.Embedding), wantLat); err != nil {
		t.Fatal(err)
	}
	if slices.Equal(wantLat, cleanLat) {
		t.Fatal("the noised images have the clean images' latent: the test proves nothing")
	}

	log := &encodeLog{Model: ref}
	emb, lat := make([]float32, 2*models.Embedding), make([]float32, 2*frame)
	if err := models.EncodeConditioning(log, s, images, seed, ids, strength, emb, lat); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(emb, wantEmb) {
		t.Error("embedding is not the clean images' embedding")
	}
	if !slices.Equal(lat, wantLat) {
		t.Error("latent is not the latent of image + strength·ε")
	}
	if !slices.Equal(images, orig) {
		t.Error("EncodeConditioning modified the caller's images")
	}
	if len(log.images) != 2 || !slices.Equal(log.images[0], images) || !slices.Equal(log.images[1], noised) {
		t.Errorf("the encoder received %d calls, want the clean images then the noised ones", len(log.images))
	}

	log.images = nil
	if err := models.EncodeConditioning(log, s, images, seed, ids, 0, emb, lat); err != nil {
		t.Fatal(err)
	}
	if len(log.images) != 1 || !slices.Equal(lat, cleanLat) || !slices.Equal(emb, wantEmb) {
		t.Errorf("strength 0: %d encoder calls, want one on the clean images", len(log.images))
	}
	if err := models.EncodeConditioning(log, s, images, seed, ids[:1], strength, emb, lat); err == nil {
		t.Error("one sample id for a batch of two: no error")
	}
}
