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
	// Encode turns images [B, 3, 8h, 8w] (values in [-1, 1]) into the image
	// embedding emb [B, 1, 1024] and the image latent lat [B, C, h, w].
	Encode(s Shape, images, emb, lat []float32) error
	// Decode turns latents [B, F, C, h, w] into frames [B, F, 3, 8h, 8w]
	// with values in [-1, 1].
	Decode(s Shape, latents, frames []float32) error
}
