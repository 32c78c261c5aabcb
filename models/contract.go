package models

// Embedding is the width of the image embedding (CLIP image encoder output)
// that the SVD UNet takes as encoder_hidden_states [B, 1, Embedding].
const Embedding = 1024

// Shape is the shape of one call: batch, frames, latent channels and the
// latent's height and width. Pixel size is 8× the latent's.
type Shape struct {
	Batch, Frames, Channels, Height, Width int
}

// UNetInput is one UNet call laid out as an SVD UNet exported from diffusers
// expects it. All tensors are row-major float32 (a backend converts to fp16
// where the model needs it).
//
//	Sample              [B, F, 2·C, h, w]  c_in-scaled noisy latent ++ image latent (channel axis)
//	Timestep            [B]                0.25·ln σ
//	EncoderHiddenStates [B, 1, 1024]       image embedding (zeros for the unconditional half)
//	AddedTimeIDs        [B, 3]             fps−1, motion bucket, noise augmentation
type UNetInput struct {
	Shape               Shape // Channels is the output channel count C (4 for SVD)
	Sample              []float32
	Timestep            []float32
	EncoderHiddenStates []float32
	AddedTimeIDs        []float32
}

// Model runs the three parts of an SVD-style model. Implementations: the
// ONNX Runtime backend in exec, the pure-Go reference of the tiny model here,
// and fakes in tests.
type Model interface {
	// UNet writes the v-prediction [B, F, C, h, w] for in into out.
	UNet(in UNetInput, out []float32) error
	// Encode turns images [B, 3, 8h, 8w] into the image embedding emb
	// [B, 1, 1024] and the image latent lat [B, C, h, w]. It is one graph
	// that computes both from the images it is given; the executor calls it
	// through EncodeConditioning, so with the plan's model.noise_aug = a the
	// encoder receives:
	//
	//	a = 0: the conditioning image x (values in [-1, 1]); emb and lat are used
	//	a > 0: first x, of which only emb is used (the CLIP embedding of
	//	       the clean image), then x + a·ε, of which only lat is used
	//	       (the VAE latent of the noised image); ε ~ N(0, 1) of x's shape
	//	       from the sample's NoiseAugStream, so values may leave [-1, 1]
	//
	// as the reference SVD pipeline does (its image latent is not scaled
	// by the VAE's scaling factor, and a is also the third added_time_id).
	Encode(s Shape, images, emb, lat []float32) error
	// Decode turns latents [B, F, C, h, w] into frames [B, F, 3, 8h, 8w]
	// with values in [-1, 1].
	Decode(s Shape, latents, frames []float32) error
}
