package tiny

import (
	"fmt"
	"math"

	"github.com/vdpp/vdpp/models"
)

// embedSeed seeds the fixed projection from the pooled latent to the
// image embedding.
const embedSeed = 0x5eed_e3b0

// Reference is the tiny model in pure Go (float64 arithmetic): the exact
// template denoiser, without the ONNX UNet's extra compute, plus the
// encoder and decoder maps. It implements models.Model and is safe for
// concurrent use.
type Reference struct {
	cfg   Config
	t     [][]float64 // templates, K × D
	prior [][]float64 // first frames / (‖first frame‖·τ), K × 4hw
	embed [][]float64 // Channels × models.Embedding
}

var _ models.Model = (*Reference)(nil)

// NewReference returns the Go reference of the tiny model with config cfg.
func NewReference(cfg Config) (*Reference, error) {
	ts, err := Templates(cfg)
	if err != nil {
		return nil, err
	}
	r := &Reference{cfg: cfg, embed: embedMatrix()}
	n0 := Channels * cfg.Height * cfg.Width
	for _, t := range ts {
		t64 := make([]float64, len(t))
		for i, v := range t {
			t64[i] = float64(v)
		}
		r.t = append(r.t, t64)
		p, norm := make([]float64, n0), 0.0
		for _, v := range t64[:n0] {
			norm += v * v
		}
		for i := range p {
			p[i] = t64[i] / (math.Sqrt(norm) * cfg.Tau)
		}
		r.prior = append(r.prior, p)
	}
	return r, nil
}

// embedMatrix is the fixed projection [Channels, Embedding], uniform in
// [-1, 1] from a splitmix64 stream.
func embedMatrix() [][]float64 {
	g := newRNG(embedSeed)
	m := make([][]float64, Channels)
	for c := range m {
		m[c] = make([]float64, models.Embedding)
		for j := range m[c] {
			m[c][j] = float64(float32(g.uniform()))
		}
	}
	return m
}

// Config returns the model's config.
func (r *Reference) Config() Config { return r.cfg }

// denoise writes the ideal x̂0 [F, 4, h, w] of one batch element: x is the
// noisy latent (not c_in-scaled), img the image latent [4, h, w].
func (r *Reference) denoise(x, img []float64, sigma float64, x0 []float64) {
	K := len(r.t)
	logits := make([]float64, K)
	maxL := math.Inf(-1)
	for k, t := range r.t {
		d := 0.0
		for i, v := range t {
			e := x[i] - v
			d += e * e
		}
		p := 0.0
		for i, v := range r.prior[k] {
			p += img[i] * v
		}
		logits[k] = -d/(2*sigma*sigma) + p
		maxL = math.Max(maxL, logits[k])
	}
	sum := 0.0
	for k := range logits {
		logits[k] = math.Exp(logits[k] - maxL)
		sum += logits[k]
	}
	clear(x0)
	for k, t := range r.t {
		wk := logits[k] / sum
		for i, v := range t {
			x0[i] += wk * v
		}
	}
}

// UNet writes the v-prediction of the exact template denoiser for in into
// out (see the package doc).
func (r *Reference) UNet(in models.UNetInput, out []float32) error {
	s := in.Shape
	if err := r.cfg.checkShape(s); err != nil {
		return err
	}
	B, D := s.Batch, r.cfg.latentSize()
	n0 := Channels * s.Height * s.Width
	for _, c := range []struct {
		what      string
		got, want int
	}{
		{"sample", len(in.Sample), 2 * B * D},
		{"timestep", len(in.Timestep), B},
		{"encoder hidden states", len(in.EncoderHiddenStates), B * models.Embedding},
		{"added time ids", len(in.AddedTimeIDs), 3 * B},
		{"output", len(out), B * D},
	} {
		if err := checkLen("unet: "+c.what, c.got, c.want); err != nil {
			return err
		}
	}
	x := make([]float64, D)
	x0 := make([]float64, D)
	img := make([]float64, n0)
	for b := range B {
		sigma := math.Exp(4 * float64(in.Timestep[b]))
		if !(sigma > 0) || math.IsInf(sigma, 0) {
			return fmt.Errorf("tiny: unet: timestep %g of batch element %d gives sigma %g", in.Timestep[b], b, sigma)
		}
		s2p1 := sigma*sigma + 1
		scale := math.Sqrt(s2p1) // 1/c_in
		smp := in.Sample[b*2*D : (b+1)*2*D]
		for f := range s.Frames {
			for i := range n0 {
				x[f*n0+i] = float64(smp[f*2*n0+i]) * scale
			}
		}
		for i := range n0 {
			img[i] = float64(smp[n0+i]) // frame 0, channels 4..7
		}
		r.denoise(x, img, sigma, x0)
		cSkip, cOut := 1/s2p1, -sigma/scale
		o := out[b*D : (b+1)*D]
		for i := range o {
			o[i] = float32((x0[i] - cSkip*x[i]) / cOut)
		}
	}
	return nil
}

// Encode maps images [B, 3, 8h, 8w] to the image embedding [B, 1, 1024]
// (the spatial mean of the latent through a fixed projection) and the image
// latent [B, 4, h, w].
func (r *Reference) Encode(s models.Shape, images, emb, lat []float32) error {
	if err := r.cfg.checkShape(s); err != nil {
		return err
	}
	n0 := Channels * s.Height * s.Width
	np := 3 * 64 * s.Height * s.Width
	if err := checkLen("encode: images", len(images), s.Batch*np); err != nil {
		return err
	}
	if err := checkLen("encode: embedding", len(emb), s.Batch*models.Embedding); err != nil {
		return err
	}
	if err := checkLen("encode: latent", len(lat), s.Batch*n0); err != nil {
		return err
	}
	px := make([]float64, np)
	l := make([]float64, n0)
	hw := s.Height * s.Width
	for b := range s.Batch {
		for i := range px {
			px[i] = float64(images[b*np+i])
		}
		r.cfg.encodeImage(px, l)
		var mean [Channels]float64
		for i, v := range l {
			lat[b*n0+i] = float32(v)
			mean[i/hw] += v / float64(hw)
		}
		for j := range models.Embedding {
			v := 0.0
			for c := range Channels {
				v += mean[c] * r.embed[c][j]
			}
			emb[b*models.Embedding+j] = float32(v)
		}
	}
	return nil
}

// Decode maps latents [B, F, 4, h, w] to frames [B, F, 3, 8h, 8w] in
// [-1, 1].
func (r *Reference) Decode(s models.Shape, latents, frames []float32) error {
	if err := r.cfg.checkShape(s); err != nil {
		return err
	}
	n0 := Channels * s.Height * s.Width
	np := 3 * 64 * s.Height * s.Width
	n := s.Batch * s.Frames
	if err := checkLen("decode: latents", len(latents), n*n0); err != nil {
		return err
	}
	if err := checkLen("decode: frames", len(frames), n*np); err != nil {
		return err
	}
	l := make([]float64, n0)
	for i := range n {
		for j := range l {
			l[j] = float64(latents[i*n0+j])
		}
		r.cfg.decodeLatent(l, frames[i*np:(i+1)*np])
	}
	return nil
}

// rng is a splitmix64 stream: fixed by its algorithm, so generated weights
// are the same on every Go version and machine.
type rng struct{ s uint64 }

func newRNG(seed uint64) *rng { return &rng{s: seed} }

func (g *rng) next() uint64 {
	g.s += 0x9e3779b97f4a7c15
	z := g.s
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// uniform returns a value uniform in [-1, 1).
func (g *rng) uniform() float64 {
	return float64(g.next()>>11)/(1<<52) - 1
}
