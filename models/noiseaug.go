package models

import (
	"fmt"
	"math/rand/v2"
)

// NoiseAugStream is the PCG stream of the conditioning image's noise
// augmentation: ε of sample i under seed s is drawn, in row-major order of
// the image [3, 8h, 8w], as rand.NormFloat64 from
// rand.New(rand.NewPCG(s, NoiseAugStream|uint64(i))). The latent noise
// (Noise) is drawn from rand.NewPCG(s, uint64(i)); sample ids are below
// 2⁶³, so the two streams never meet, and noise augmentation changes no
// latent noise: outputs stay reproducible from (seed, sample) alone.
const NoiseAugStream uint64 = 1 << 63

// AugmentImage writes image + strength·ε into dst (dst may be image), with
// ε ~ N(0, 1) of the image's shape from sample's NoiseAugStream under
// seed: each value is float32(float64(image[k]) + strength·ε_k), as the
// reference SVD pipeline noises the image before its VAE encode
// (image + noise_aug_strength·randn). strength 0 copies image.
func AugmentImage(seed uint64, sample int, strength float64, image, dst []float32) {
	dst = dst[:len(image)]
	if strength == 0 {
		copy(dst, image)
		return
	}
	r := rand.New(rand.NewPCG(seed, NoiseAugStream|uint64(sample)))
	for k, v := range image {
		dst[k] = float32(float64(v) + strength*r.NormFloat64())
	}
}

// EncodeConditioning encodes the conditioning images [B, 3, 8h, 8w] of the
// samples (len B: their ids) as the reference SVD pipeline does: the image
// embedding emb [B, 1, 1024] comes from the images as given, the image
// latent lat [B, C, h, w] from the images noised by AugmentImage at
// strength (the plan's model.noise_aug) under seed. With strength 0 the
// encoder runs once on the images; otherwise twice, with the same batch:
// on the images (its latent output is discarded) and on the noised images
// (its embedding output is discarded). images is not modified.
func EncodeConditioning(m Model, s Shape, images []float32, seed uint64, samples []int, strength float64, emb, lat []float32) error {
	if strength == 0 {
		return m.Encode(s, images, emb, lat)
	}
	if len(samples) != s.Batch || len(images)%max(s.Batch, 1) != 0 {
		return fmt.Errorf("models: encode conditioning: %d sample ids and %d image values for a batch of %d", len(samples), len(images), s.Batch)
	}
	if err := m.Encode(s, images, emb, make([]float32, len(lat))); err != nil {
		return err
	}
	px := len(images) / s.Batch
	noised := make([]float32, len(images))
	for b, id := range samples {
		AugmentImage(seed, id, strength, images[b*px:(b+1)*px], noised[b*px:(b+1)*px])
	}
	return m.Encode(s, noised, make([]float32, len(emb)), lat)
}
