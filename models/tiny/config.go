// Package tiny is the built-in tiny video model: a family of three ONNX
// graphs (image encoder, UNet, decoder) with the input/output contract of an
// SVD UNet exported from diffusers (models.Model and models.UNetInput), whose answer
// is known exactly.
//
// The model knows K template clips: procedurally drawn moving shapes (a
// coloured disc or square crossing a dark background, each template in its
// own direction), F frames each, defined in pixel space [3, 8h, 8w] and
// mapped to latent space [4, h, w] by a fixed linear map (8×8 average
// pooling of RGB into 3 channels plus a luminance channel, after removing
// the background level). The decoder is that map's pseudo-inverse (colour
// mix and nearest 8× upsampling), so decoded frames show the moving shapes.
//
// The UNet is the exact denoiser of those templates: with x = x0 + σ·n,
// its ideal x̂0 is the posterior mean Σ_k w_k·T_k with
// w = softmax(−‖x − T_k‖²/(2σ²) + log prior_k), and the prior selects the
// template whose first frame matches the conditioning image latent:
// log prior_k = ⟨img, T_k[0]⟩/(‖T_k[0]‖·τ), uniform for a zero image latent
// (the unconditional half of classifier-free guidance). The UNet returns
// the v-prediction v = (x̂0 − c_skip·x)/c_out. A sample conditioned on
// template k's first frame therefore ends on template k.
//
// The UNet graph also carries UNet-like compute (residual blocks with
// GroupNorm, SiLU and 3×3 convolutions, spatial and temporal attention)
// whose result is scaled by Config.ExtraScale (1e-6) before it is added, so
// it costs what a small UNet costs without changing the answer measurably.
//
// Reference is the same denoiser in pure Go (float64), without the extra
// compute; the generator in ./gen writes unet.onnx, encoder.onnx and
// decoder.onnx, byte for byte the same on every run.
package tiny

import (
	"errors"
	"fmt"

	"github.com/vdpp/vdpp/models"
)

// Channels is the latent channel count of the tiny model (as SVD's).
const Channels = 4

// Config sizes the tiny model. The zero value is not valid; start from
// DefaultConfig.
type Config struct {
	// Templates is the number K of template clips.
	Templates int
	// Frames is the number of frames F of every clip.
	Frames int
	// Height and Width are the latent's size; pixels are 8× as large.
	Height, Width int
	// Tau is the temperature of the template prior: the smaller, the more
	// sharply the conditioning image selects its template.
	Tau float64
	// ExtraChannels is the channel width of the UNet-like extra compute in
	// the ONNX UNet (a multiple of 8), or 0 for none.
	ExtraChannels int
	// ExtraBlocks is the number of blocks (residual block, spatial
	// attention, temporal attention) of the extra compute.
	ExtraBlocks int
	// ExtraScale multiplies the extra compute's output before it is added
	// to the exact answer.
	ExtraScale float64
	// FP16 makes the generated graphs take and return float16 tensors (the
	// inside stays float32). The Go reference ignores it.
	FP16 bool
}

// DefaultConfig is the tiny model committed in models/tiny: 5 templates of
// 8 frames, latent 4×16×16 (128×128 pixels), extra compute of 3 blocks at
// 64 channels.
func DefaultConfig() Config {
	return Config{
		Templates:     5,
		Frames:        8,
		Height:        16,
		Width:         16,
		Tau:           0.05,
		ExtraChannels: 64,
		ExtraBlocks:   3,
		ExtraScale:    1e-6,
	}
}

// Shape returns the model shape of a call with the given batch.
func (c Config) Shape(batch int) models.Shape {
	return models.Shape{Batch: batch, Frames: c.Frames, Channels: Channels, Height: c.Height, Width: c.Width}
}

// latentSize is F·4·h·w, the size of one clip's latent.
func (c Config) latentSize() int { return c.Frames * Channels * c.Height * c.Width }

// Validate reports the first invalid field of c.
func (c Config) Validate() error {
	var err error
	switch {
	case c.Templates < 1 || c.Templates > 64:
		err = fmt.Errorf("templates: %d, want 1..64", c.Templates)
	case c.Frames < 1 || c.Frames > 256:
		err = fmt.Errorf("frames: %d, want 1..256", c.Frames)
	case c.Height < 2 || c.Height > 256:
		err = fmt.Errorf("height: %d, want 2..256", c.Height)
	case c.Width < 2 || c.Width > 256:
		err = fmt.Errorf("width: %d, want 2..256", c.Width)
	case !(c.Tau > 0):
		err = fmt.Errorf("tau: %g, want > 0", c.Tau)
	case c.ExtraChannels < 0 || c.ExtraChannels%8 != 0:
		err = fmt.Errorf("extra channels: %d, want a multiple of 8 (0 for none)", c.ExtraChannels)
	case c.ExtraBlocks < 0:
		err = fmt.Errorf("extra blocks: %d, want ≥ 0", c.ExtraBlocks)
	case c.ExtraChannels > 0 && !(c.ExtraScale >= 0 && c.ExtraScale <= 1e-3):
		err = fmt.Errorf("extra scale: %g, want 0..1e-3 (it must not change the answer)", c.ExtraScale)
	}
	if err != nil {
		return fmt.Errorf("tiny: config: %w", err)
	}
	return nil
}

var errShape = errors.New("shape mismatch")

// checkShape checks that a call's shape is the model's.
func (c Config) checkShape(s models.Shape) error {
	if s.Batch < 1 || s.Frames != c.Frames || s.Channels != Channels || s.Height != c.Height || s.Width != c.Width {
		return fmt.Errorf("tiny: %w: call shape %+v, model has frames %d, channels %d, latent %dx%d, batch ≥ 1",
			errShape, s, c.Frames, Channels, c.Height, c.Width)
	}
	return nil
}

func checkLen(what string, got, want int) error {
	if got != want {
		return fmt.Errorf("tiny: %s: %w: %d values, want %d", what, errShape, got, want)
	}
	return nil
}
