// Package models is what the planner, simulator and executor share about
// a video diffusion model: the SVD-style UNet contract (Model, UNetInput,
// Shape), sigma schedules (KarrasSigmas; Step, Sigma and Timestep are
// different types), the Euler sampler with classifier-free guidance
// (Sampler), conditioning images (ImageSet), their encoding with noise
// augmentation (EncodeConditioning, AugmentImage) and the encoding of decoded
// frames as videos (EncodeVideo). Its subpackages hold the families: tiny
// (the built-in model whose answer is known), family (the registry: what
// each family brings), images (PNG/JPEG files as conditioning images) and
// onnx (the graph builder the tiny model's generator uses).
//
// Sampling one clip with any Model (exec/ort's ONNX Runtime sessions, or
// the tiny model's pure-Go reference):
//
//	sig, _ := models.KarrasSigmas(28, 0.002, 700, 7)
//	cfg := models.SamplerConfig{Frames: 8, Channels: 4, Height: 16, Width: 16, Sigmas: sig, TimeIDs: [3]float32{6, 127, 0.02}}
//	smp, _ := models.NewSampler(m, cfg)
//	shape := models.Shape{Batch: 1, Frames: 8, Channels: 4, Height: 16, Width: 16}
//	cond := models.Conditioning{Embedding: make([]float32, models.Embedding), ImageLatent: make([]float32, 4*16*16)}
//	_ = models.EncodeConditioning(m, shape, image, seed, []int{0}, 0.02, cond.Embedding, cond.ImageLatent) // image: [3, 128, 128] in [-1, 1], noise_aug 0.02
//	st := smp.Start(seed, 0, cond)                              // noise from (seed, sample) only
//	_ = smp.Run([]*models.State{st}, 0, models.Step(cfg.Steps())) // or a stage's range of steps
//	frames := make([]float32, 8*3*128*128)
//	_ = m.Decode(shape, st.X, frames)
//	video, _ := models.EncodeVideo(frames, 8, 128, 128, 10) // GIF and PNG frames
//
// A pipeline stage runs Sampler.Step over its range of steps and hands the
// States on; the result does not depend on where the split falls.
package models
