package tiny

import (
	"fmt"
	"math"
	"path/filepath"

	"github.com/vdpp/vdpp/internal/atomicfile"

	"github.com/vdpp/vdpp/models"
	"github.com/vdpp/vdpp/models/onnx"
)

// Opset is the ONNX opset of the generated graphs.
const Opset = 17

// producer is written into every generated model.
const producer = "vdpp models/tiny"

// File names of the generated graphs in a model directory.
const (
	UNetFile    = "unet.onnx"
	EncoderFile = "encoder.onnx"
	DecoderFile = "decoder.onnx"
)

// Names of the graphs' inputs and outputs. The UNet's inputs are those of
// an SVD UNet exported from diffusers.
const (
	InSample              = "sample"
	InTimestep            = "timestep"
	InEncoderHiddenStates = "encoder_hidden_states"
	InAddedTimeIDs        = "added_time_ids"
	OutSample             = "out_sample"
	InImage               = "image"
	OutImageEmbeds        = "image_embeds"
	OutImageLatent        = "image_latent"
	InLatent              = "latent"
	OutFrames             = "frames"
)

// graph wraps onnx.Builder with the tiny model's conventions: a symbolic
// batch dimension, fixed other dimensions, float16 I/O when asked.
type graph struct {
	*onnx.Builder
	fp16 bool
	rng  *rng
}

func newGraph(name string, cfg Config, seed uint64) *graph {
	return &graph{Builder: onnx.NewBuilder(name), fp16: cfg.FP16, rng: newRNG(seed)}
}

func dims(d ...int) []onnx.Dim {
	out := []onnx.Dim{{Param: "batch"}}
	for _, v := range d {
		out = append(out, onnx.Dim{Value: int64(v)})
	}
	return out
}

// input declares a float input [batch, d...] and returns the name of its
// float32 value.
func (g *graph) input(name string, d ...int) string {
	if !g.fp16 {
		return g.Input(name, onnx.Float, dims(d...)...)
	}
	g.Input(name, onnx.Float16, dims(d...)...)
	return g.Op("Cast", []string{name}, onnx.IntAttr("to", int64(onnx.Float)))
}

// output declares the float32 value src as output name [batch, d...].
func (g *graph) output(name, src string, d ...int) {
	if g.fp16 {
		g.OpTo(name, "Cast", []string{src}, onnx.IntAttr("to", int64(onnx.Float16)))
		g.Output(name, onnx.Float16, dims(d...)...)
		return
	}
	g.OpTo(name, "Identity", []string{src})
	g.Output(name, onnx.Float, dims(d...)...)
}

func (g *graph) model(doc string) []byte {
	m := g.Model(Opset, producer)
	m.DocString = doc
	return m.Marshal()
}

func i64(v ...int) []int64 {
	out := make([]int64, len(v))
	for i, x := range v {
		out[i] = int64(x)
	}
	return out
}

func f32(v []float64) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x)
	}
	return out
}

// BuildEncoder returns the encoder graph: image [B, 3, 8h, 8w] →
// image_embeds [B, 1, 1024], image_latent [B, 4, h, w].
func BuildEncoder(cfg Config) ([]byte, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	h, w := cfg.Height, cfg.Width
	g := newGraph("tiny_encoder", cfg, 0)
	img := g.input(InImage, 3, 8*h, 8*w)
	// lat = A·(avgpool8(img) − background) as one 8×8 stride-8 convolution.
	wt := make([]float32, 0, Channels*3*64)
	bias := make([]float32, Channels)
	for o := range Channels {
		for c := range 3 {
			for range 64 {
				wt = append(wt, float32(latentMap[o][c]/64))
			}
			bias[o] -= float32(latentMap[o][c] * background)
		}
	}
	lat := g.Op("Conv", []string{img,
		g.Floats("enc_w", i64(Channels, 3, 8, 8), wt),
		g.Floats("enc_b", i64(Channels), bias)},
		onnx.IntsAttr("kernel_shape", 8, 8), onnx.IntsAttr("strides", 8, 8))
	mean := g.Op("ReduceMean", []string{lat}, onnx.IntsAttr("axes", 2, 3), onnx.IntAttr("keepdims", 0))
	em := embedMatrix()
	flat := make([]float64, 0, Channels*models.Embedding)
	for _, row := range em {
		flat = append(flat, row...)
	}
	emb := g.Op("MatMul", []string{mean, g.Floats("embed", i64(Channels, models.Embedding), f32(flat))})
	emb = g.Op("Reshape", []string{emb, g.ints("emb_shape", -1, 1, models.Embedding)})
	g.output(OutImageEmbeds, emb, 1, models.Embedding)
	g.output(OutImageLatent, lat, Channels, h, w)
	return g.model("tiny model image encoder: image [B,3,8h,8w] in [-1,1] → image_embeds [B,1,1024], image_latent [B,4,h,w]"), nil
}

// BuildDecoder returns the decoder graph: latent [B, F, 4, h, w] →
// frames [B, F, 3, 8h, 8w] in [-1, 1].
func BuildDecoder(cfg Config) ([]byte, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	F, h, w := cfg.Frames, cfg.Height, cfg.Width
	g := newGraph("tiny_decoder", cfg, 0)
	lat := g.input(InLatent, F, Channels, h, w)
	x := g.Op("Reshape", []string{lat, g.ints("lat_shape", -1, Channels, h, w)})
	// rgb = A⁺·lat + background, repeated over 8×8 blocks: one transposed
	// convolution with an 8×8 stride-8 kernel.
	wt := make([]float32, 0, Channels*3*64)
	for o := range Channels {
		for c := range 3 {
			for range 64 {
				wt = append(wt, float32(pixelMap[c][o]))
			}
		}
	}
	bias := []float32{background, background, background}
	px := g.Op("ConvTranspose", []string{x,
		g.Floats("dec_w", i64(Channels, 3, 8, 8), wt),
		g.Floats("dec_b", i64(3), bias)},
		onnx.IntsAttr("kernel_shape", 8, 8), onnx.IntsAttr("strides", 8, 8))
	px = g.Op("Clip", []string{px, g.Scalar("lo", -1), g.Scalar("hi", 1)})
	px = g.Op("Reshape", []string{px, g.ints("frames_shape", -1, F, 3, 8*h, 8*w)})
	g.output(OutFrames, px, F, 3, 8*h, 8*w)
	return g.model("tiny model decoder: latent [B,F,4,h,w] → frames [B,F,3,8h,8w] in [-1,1]"), nil
}

// BuildUNet returns the UNet graph (the contract of models.UNetInput):
// sample [B, F, 8, h, w], timestep [B], encoder_hidden_states [B, 1, 1024],
// added_time_ids [B, 3] → out_sample [B, F, 4, h, w]. The batch is dynamic;
// F, h and w are fixed.
func BuildUNet(cfg Config) ([]byte, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ts, err := Templates(cfg)
	if err != nil {
		return nil, err
	}
	F, h, w, K := cfg.Frames, cfg.Height, cfg.Width, cfg.Templates
	D, n0 := cfg.latentSize(), Channels*h*w
	g := newGraph("tiny_unet", cfg, 0x7e5_0001)
	sample := g.input(InSample, F, 2*Channels, h, w)
	timestep := g.input(InTimestep)
	ehs := g.input(InEncoderHiddenStates, 1, models.Embedding)
	ids := g.input(InAddedTimeIDs, 3)

	// Preconditioning from σ = exp(4·t).
	t2 := g.Op("Reshape", []string{timestep, g.ints("col", -1, 1)})
	sigma := g.Op("Exp", []string{g.Op("Mul", []string{t2, g.Scalar("four", 4)})})
	s2 := g.Op("Mul", []string{sigma, sigma})
	s2p1 := g.Op("Add", []string{s2, g.Scalar("one", 1)})
	invCIn := g.Op("Sqrt", []string{s2p1})
	cSkip := g.Op("Reciprocal", []string{s2p1})
	cOut := g.Op("Neg", []string{g.Op("Div", []string{sigma, invCIn})})
	invS2 := g.Op("Reciprocal", []string{s2})

	// x = sample[:, :, :4] / c_in, flattened to [B, D].
	xs := g.Op("Slice", []string{sample, g.ints("x_start", 0), g.ints("x_end", Channels), g.ints("x_axes", 2)})
	x := g.Op("Mul", []string{g.Op("Reshape", []string{xs, g.ints("flat", -1, D)}), invCIn})
	// img = sample[:, 0, 4:8], flattened to [B, 4hw].
	im := g.Op("Slice", []string{sample, g.ints("img_start", 0, Channels), g.ints("img_end", 1, 2*Channels), g.ints("img_axes", 1, 2)})
	img := g.Op("Reshape", []string{im, g.ints("img_flat", -1, n0)})

	// Constants: templates [K, D], their transpose [D, K], ‖T_k‖²/2 [K],
	// and the prior's first frames / (‖T_k[0]‖·τ) as [4hw, K].
	tm := make([]float32, 0, K*D)
	tt := make([]float32, K*D)
	half := make([]float32, K)
	pr := make([]float32, n0*K)
	for k, t := range ts {
		tm = append(tm, t...)
		var nn, n00 float64
		for i, v := range t {
			tt[i*K+k] = v
			nn += float64(v) * float64(v)
			if i < n0 {
				n00 += float64(v) * float64(v)
			}
		}
		half[k] = float32(nn / 2)
		for i := range n0 {
			pr[i*K+k] = float32(float64(t[i]) / (math.Sqrt(n00) * cfg.Tau))
		}
	}
	// Logits: (x·T_k − ‖T_k‖²/2)/σ² + log prior_k; the ‖x‖² term is the
	// same for every k and cancels in the softmax, which keeps float32
	// exact enough at σ = 700.
	dots := g.Op("MatMul", []string{x, g.Floats("templates_t", i64(D, K), tt)})
	ll := g.Op("Mul", []string{g.Op("Sub", []string{dots, g.Floats("half_norm", i64(K), half)}), invS2})
	lp := g.Op("MatMul", []string{img, g.Floats("prior", i64(n0, K), pr)})
	wts := g.Op("Softmax", []string{g.Op("Add", []string{ll, lp})}, onnx.IntAttr("axis", -1))
	x0 := g.Op("MatMul", []string{wts, g.Floats("templates", i64(K, D), tm)})
	v := g.Op("Div", []string{g.Op("Sub", []string{x0, g.Op("Mul", []string{x, cSkip})}), cOut})
	v = g.Op("Reshape", []string{v, g.ints("out_shape", -1, F, Channels, h, w)})

	if cfg.ExtraChannels > 0 {
		extra := g.extra(cfg, sample, t2, ehs, ids)
		v = g.Op("Add", []string{v, extra})
	}
	g.output(OutSample, v, F, Channels, h, w)
	return g.model(fmt.Sprintf("tiny model UNet: exact denoiser of %d template clips (v-prediction, EDM/SVD preconditioning) "+
		"plus UNet-like compute (%d blocks × %d channels) scaled by %g", K, cfg.ExtraBlocks, cfg.ExtraChannels, cfg.ExtraScale)), nil
}

// weights returns n values uniform in ±√(3/fanIn) (unit-variance outputs
// for unit-variance inputs).
func (g *graph) weights(n, fanIn int, gain float64) []float32 {
	a := gain * math.Sqrt(3/float64(fanIn))
	out := make([]float32, n)
	for i := range out {
		out[i] = float32(a * g.rng.uniform())
	}
	return out
}

func (g *graph) conv3(x string, cin, cout int) string {
	return g.Op("Conv", []string{x,
		g.Floats("conv_w", i64(cout, cin, 3, 3), g.weights(cout*cin*9, cin*9, 1)),
		g.Floats("conv_b", i64(cout), make([]float32, cout))},
		onnx.IntsAttr("kernel_shape", 3, 3), onnx.IntsAttr("pads", 1, 1, 1, 1))
}

// groupNorm normalises x [N, C, h, w] over 8 groups (unit affine), the way
// exporters lower GroupNorm: InstanceNormalization on [N, 8, C/8·h·w].
func (g *graph) groupNorm(x string, c, h, w int) string {
	const groups = 8
	r := g.Op("Reshape", []string{x, g.ints("gn_in", 0, groups, -1)})
	ones := make([]float32, groups)
	for i := range ones {
		ones[i] = 1
	}
	r = g.Op("InstanceNormalization", []string{r, g.Floats("gn_scale", i64(groups), ones),
		g.Floats("gn_bias", i64(groups), make([]float32, groups))}, onnx.FloatAttr("epsilon", 1e-5))
	return g.Op("Reshape", []string{r, g.ints("gn_out", 0, c, h, w)})
}

func (g *graph) silu(x string) string {
	return g.Op("Mul", []string{x, g.Op("Sigmoid", []string{x})})
}

// attention is single-head self-attention over tokens x [N, T, C].
func (g *graph) attention(x string, c int) string {
	proj := func(in string) string {
		return g.Op("MatMul", []string{in, g.Floats("attn_w", i64(c, c), g.weights(c*c, c, 1))})
	}
	q, k, v := proj(x), proj(x), proj(x)
	kt := g.Op("Transpose", []string{k}, onnx.IntsAttr("perm", 0, 2, 1))
	s := g.Op("Mul", []string{g.Op("MatMul", []string{q, kt}), g.Scalar("attn_scale", float32(1/math.Sqrt(float64(c))))})
	p := g.Op("Softmax", []string{s}, onnx.IntAttr("axis", -1))
	return proj(g.Op("MatMul", []string{p, v}))
}

// extra builds the UNet-like compute on sample [B, F, 8, h, w] and returns
// its output [B, F, 4, h, w], already scaled by cfg.ExtraScale.
func (g *graph) extra(cfg Config, sample, t2, ehs, ids string) string {
	F, h, w, C := cfg.Frames, cfg.Height, cfg.Width, cfg.ExtraChannels
	hw := h * w
	x := g.Op("Reshape", []string{sample, g.ints("frames_in", -1, 2*Channels, h, w)})
	x = g.conv3(x, 2*Channels, C)

	// Conditioning embedding (timestep, added time ids, image embedding),
	// added per channel as SVD adds its time embedding.
	e := g.Op("MatMul", []string{t2, g.Floats("temb_t", i64(1, C), g.weights(C, 1, 1))})
	e = g.Op("Add", []string{e, g.Op("MatMul", []string{ids, g.Floats("temb_ids", i64(3, C), g.weights(3*C, 3, 1.0/128))})})
	eh := g.Op("Reshape", []string{ehs, g.ints("ehs_flat", -1, models.Embedding)})
	e = g.Op("Add", []string{e, g.Op("MatMul", []string{eh, g.Floats("temb_ehs", i64(models.Embedding, C), g.weights(models.Embedding*C, models.Embedding, 1))})})
	e = g.Op("Reshape", []string{g.silu(e), g.ints("temb_shape", -1, 1, C, 1)})
	x = g.Op("Reshape", []string{x, g.ints("bf_c_hw", -1, F, C, hw)})
	x = g.Op("Add", []string{x, e})
	x = g.Op("Reshape", []string{x, g.ints("nchw", -1, C, h, w)})

	for range cfg.ExtraBlocks {
		// Residual block.
		r := g.conv3(g.silu(g.groupNorm(x, C, h, w)), C, C)
		r = g.conv3(g.silu(g.groupNorm(r, C, h, w)), C, C)
		x = g.Op("Add", []string{x, r})

		// Spatial attention: tokens are the h·w positions of one frame.
		a := g.Op("Reshape", []string{g.groupNorm(x, C, h, w), g.ints("sp_in", 0, C, hw)})
		a = g.Op("Transpose", []string{a}, onnx.IntsAttr("perm", 0, 2, 1))
		a = g.attention(a, C)
		a = g.Op("Transpose", []string{a}, onnx.IntsAttr("perm", 0, 2, 1))
		x = g.Op("Add", []string{x, g.Op("Reshape", []string{a, g.ints("sp_out", 0, C, h, w)})})

		// Temporal attention: tokens are the F frames at one position.
		a = g.Op("Reshape", []string{g.groupNorm(x, C, h, w), g.ints("tm_in", -1, F, C, hw)})
		a = g.Op("Transpose", []string{a}, onnx.IntsAttr("perm", 0, 3, 1, 2))
		a = g.Op("Reshape", []string{a, g.ints("tm_tok", -1, F, C)})
		a = g.attention(a, C)
		a = g.Op("Reshape", []string{a, g.ints("tm_back", -1, hw, F, C)})
		a = g.Op("Transpose", []string{a}, onnx.IntsAttr("perm", 0, 2, 3, 1))
		x = g.Op("Add", []string{x, g.Op("Reshape", []string{a, g.ints("tm_out", -1, C, h, w)})})
	}
	x = g.conv3(g.silu(g.groupNorm(x, C, h, w)), C, Channels)
	x = g.Op("Reshape", []string{x, g.ints("extra_shape", -1, F, Channels, h, w)})
	return g.Op("Mul", []string{x, g.Scalar("extra_scale", float32(cfg.ExtraScale))})
}

// Files are the paths of a tiny model's three graphs in dir.
func Files(dir string) (unet, encoder, decoder string) {
	return filepath.Join(dir, UNetFile), filepath.Join(dir, EncoderFile), filepath.Join(dir, DecoderFile)
}

// WriteFiles generates the three graphs of cfg into dir (unet.onnx,
// encoder.onnx, decoder.onnx), each written atomically.
func WriteFiles(dir string, cfg Config) error {
	builds := []struct {
		name  string
		build func(Config) ([]byte, error)
	}{
		{UNetFile, BuildUNet}, {EncoderFile, BuildEncoder}, {DecoderFile, BuildDecoder},
	}
	for _, b := range builds {
		data, err := b.build(cfg)
		if err != nil {
			return err
		}
		if err := atomicfile.Write(filepath.Join(dir, b.name), data); err != nil {
			return err
		}
	}
	return nil
}

// ints adds a 1-D int64 constant (a shape, axes, starts…).
func (g *graph) ints(name string, v ...int) string { return g.Ints(name, i64(v...)...) }
