package tiny

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vdpp/vdpp/models"
)

func mustRef(t *testing.T, cfg Config) *Reference {
	t.Helper()
	r, err := NewReference(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// denoised runs the reference UNet on x (not c_in-scaled) with image latent
// img at sigma and returns x̂0 = c_skip·x + c_out·v.
func denoised(t *testing.T, r *Reference, x, img []float64, sigma float64) []float64 {
	t.Helper()
	cfg := r.Config()
	n0 := Channels * cfg.Height * cfg.Width
	in := models.UNetInput{
		Shape:               cfg.Shape(1),
		Sample:              make([]float32, 2*len(x)),
		Timestep:            []float32{float32(0.25 * math.Log(sigma))},
		EncoderHiddenStates: make([]float32, models.Embedding),
		AddedTimeIDs:        []float32{6, 127, 0.02},
	}
	sigma = math.Exp(4 * float64(in.Timestep[0])) // what the model sees
	cin := 1 / math.Sqrt(sigma*sigma+1)
	for f := range cfg.Frames {
		for i := range n0 {
			in.Sample[f*2*n0+i] = float32(cin * x[f*n0+i])
			if img != nil {
				in.Sample[f*2*n0+n0+i] = float32(img[i])
			}
		}
	}
	v := make([]float32, len(x))
	if err := r.UNet(in, v); err != nil {
		t.Fatal(err)
	}
	cskip, cout := 1/(sigma*sigma+1), -sigma*cin
	x0 := make([]float64, len(x))
	for i := range x0 {
		x0[i] = cskip*float64(float32(cin*x[i]))/cin + cout*float64(v[i])
	}
	return x0
}

func rms(a []float64, b []float32) float64 {
	s := 0.0
	for i := range a {
		e := a[i] - float64(b[i])
		s += e * e
	}
	return math.Sqrt(s / float64(len(a)))
}

// TestReferenceDenoiser checks the exact denoiser's answer in its limits:
// at small σ it returns the template the noisy latent is near; at large σ
// the conditioning image selects the template, and without one x̂0 is the
// mean of the templates.
func TestReferenceDenoiser(t *testing.T) {
	cfg := DefaultConfig()
	r := mustRef(t, cfg)
	ts, err := Templates(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, 8))
	D := cfg.latentSize()
	n0 := Channels * cfg.Height * cfg.Width
	noisy := func(k int, sigma float64) []float64 {
		x := make([]float64, D)
		for i := range x {
			x[i] = float64(ts[k][i]) + sigma*rng.NormFloat64()
		}
		return x
	}
	first := func(k int) []float64 {
		img := make([]float64, n0)
		for i := range img {
			img[i] = float64(ts[k][i])
		}
		return img
	}
	mean := make([]float32, D)
	for _, tk := range ts {
		for i, v := range tk {
			mean[i] += v / float32(len(ts))
		}
	}
	for k := range ts {
		other := (k + 2) % len(ts)
		// Small σ: the data term wins, whatever the conditioning.
		for _, sigma := range []float64{0.002, 0.05} {
			if e := rms(denoised(t, r, noisy(k, sigma), first(other), sigma), ts[k]); e > 1e-6 {
				t.Errorf("template %d, σ %g, conditioned on %d: x̂0 is %.3g (rms) from the template, want ≤ 1e-6", k, sigma, other, e)
			}
		}
		// Large σ: the prior wins.
		x := noisy(other, 700)
		if e := rms(denoised(t, r, x, first(k), 700), ts[k]); e > 1e-4 {
			t.Errorf("σ 700 conditioned on %d: x̂0 is %.3g (rms) from template %d, want ≤ 1e-4", k, e, k)
		}
		// Large σ without conditioning: close to the mean of the templates.
		if e := rms(denoised(t, r, x, nil, 700), mean); e > 0.05 {
			t.Errorf("σ 700 unconditional: x̂0 is %.3g (rms) from the templates' mean, want ≤ 0.05", e)
		}
	}
}

// TestEncodeDecode: the encoder maps each conditioning image to its
// template's first frame; the decoder maps each template back to the 8×8
// block means of its pixels, and the shape moves.
func TestEncodeDecode(t *testing.T) {
	cfg := DefaultConfig()
	r := mustRef(t, cfg)
	ts, err := Templates(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h, w, F := cfg.Height, cfg.Width, cfg.Frames
	H, W := 8*h, 8*w
	n0, np := Channels*h*w, 3*H*W
	var embs [][]float32
	for k := range ts {
		img, err := ConditioningImage(cfg, k)
		if err != nil {
			t.Fatal(err)
		}
		emb, lat := make([]float32, models.Embedding), make([]float32, n0)
		if err := r.Encode(cfg.Shape(1), img, emb, lat); err != nil {
			t.Fatal(err)
		}
		for i, v := range lat {
			if math.Abs(float64(v-ts[k][i])) > 1e-6 {
				t.Fatalf("template %d: latent[%d] = %g, want %g", k, i, v, ts[k][i])
			}
		}
		embs = append(embs, emb)

		px, err := TemplatePixels(cfg, k)
		if err != nil {
			t.Fatal(err)
		}
		frames := make([]float32, F*np)
		if err := r.Decode(cfg.Shape(1), ts[k], frames); err != nil {
			t.Fatal(err)
		}
		for f := range F {
			for c := range 3 {
				for i := range h {
					for j := range w {
						s := 0.0
						for y := 8 * i; y < 8*i+8; y++ {
							for x := 8 * j; x < 8*j+8; x++ {
								s += float64(px[f*np+(c*H+y)*W+x])
							}
						}
						got := frames[f*np+(c*H+8*i)*W+8*j]
						if math.Abs(s/64-float64(got)) > 1e-5 {
							t.Fatalf("template %d frame %d channel %d block (%d,%d): decoded %g, pixel mean %g", k, f, c, i, j, got, s/64)
						}
					}
				}
			}
		}
		c0x, c0y := centroid(frames[:np], H, W)
		c1x, c1y := centroid(frames[(F-1)*np:], H, W)
		if d := math.Hypot(c1x-c0x, c1y-c0y); d < 0.4*float64(min(H, W)) {
			t.Errorf("template %d: the shape moves %.1f pixels, want ≥ %.1f", k, d, 0.4*float64(min(H, W)))
		}
	}
	if d := rms64(embs[0], embs[1]); d == 0 {
		t.Error("templates 0 and 1 have the same image embedding")
	}
}

func rms64(a, b []float32) float64 {
	s := 0.0
	for i := range a {
		e := float64(a[i] - b[i])
		s += e * e
	}
	return math.Sqrt(s / float64(len(a)))
}

// centroid of the pixels brighter than the background (on any channel).
func centroid(px []float32, H, W int) (float64, float64) {
	var sx, sy, n float64
	for y := range H {
		for x := range W {
			for c := range 3 {
				if px[(c*H+y)*W+x] > background+0.2 {
					sx, sy, n = sx+float64(x), sy+float64(y), n+1
					break
				}
			}
		}
	}
	return sx / n, sy / n
}

func TestPseudoInverse(t *testing.T) {
	for i := range 3 {
		for j := range 3 {
			s := 0.0
			for k := range Channels {
				s += pixelMap[i][k] * latentMap[k][j]
			}
			want := 0.0
			if i == j {
				want = 1
			}
			if math.Abs(s-want) > 1e-12 {
				t.Errorf("(A⁺A)[%d][%d] = %g, want %g", i, j, s, want)
			}
		}
	}
}

func TestNearest(t *testing.T) {
	cfg := DefaultConfig()
	ts, err := Templates(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for k, tk := range ts {
		x := append([]float32(nil), tk...)
		x[0] += 0.5
		got, d := Nearest(cfg, x)
		want := 0.5 / math.Sqrt(float64(len(x)))
		if got != k || math.Abs(d-want) > 1e-9 {
			t.Errorf("Nearest(template %d + bump) = %d, %g; want %d, %g", k, got, d, k, want)
		}
	}
	if k, d := Nearest(cfg, make([]float32, 3)); k != -1 || !math.IsInf(d, 1) {
		t.Errorf("Nearest of a wrong-sized latent = %d, %g; want -1, +Inf", k, d)
	}
}

func TestBadInput(t *testing.T) {
	bad := DefaultConfig()
	bad.Frames = 0
	if _, err := NewReference(bad); err == nil {
		t.Error("NewReference with 0 frames: no error")
	}
	bad = DefaultConfig()
	bad.ExtraChannels = 12
	if _, err := BuildUNet(bad); err == nil {
		t.Error("BuildUNet with 12 extra channels: no error")
	}
	if _, err := ConditioningImage(DefaultConfig(), 99); err == nil {
		t.Error("ConditioningImage(99): no error")
	}
	cfg := DefaultConfig()
	r := mustRef(t, cfg)
	in := models.UNetInput{Shape: cfg.Shape(1), Sample: make([]float32, 10)}
	if err := r.UNet(in, make([]float32, 10)); err == nil {
		t.Error("UNet with short inputs: no error")
	}
	s := cfg.Shape(1)
	s.Frames = 3
	if err := r.Decode(s, nil, nil); err == nil {
		t.Error("Decode with 3 frames: no error")
	}
}

// TestGeneratedFilesReproducible regenerates the committed graphs and
// compares the bytes.
func TestGeneratedFilesReproducible(t *testing.T) {
	dir := t.TempDir()
	if err := WriteFiles(dir, DefaultConfig()); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{UNetFile, EncoderFile, DecoderFile} {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(name)
		if err != nil {
			t.Fatalf("%v (regenerate with `go run ./models/tiny/gen -out models/tiny`)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: regenerated file (%d bytes) differs from the committed one (%d bytes): "+
				"run `go run ./models/tiny/gen -out models/tiny`", name, len(got), len(want))
		}
		if len(got) > 4<<20 {
			t.Errorf("%s: %d bytes, want ≤ 4 MiB", name, len(got))
		}
	}
}

// TestDefaultImages: the built-in conditioning cycles through the
// templates' first frames, labelled by template, and refuses a shape the
// tiny model cannot have.
func TestDefaultImages(t *testing.T) {
	cfg := DefaultConfig()
	set, err := DefaultImages(cfg.Shape(1))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 * cfg.Templates {
		k := i % cfg.Templates
		img, err := set.Image(i)
		if err != nil {
			t.Fatal(err)
		}
		want, err := ConditioningImage(cfg, k)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(img, want) {
			t.Errorf("sample %d: not the first frame of template %d", i, k)
		}
		if got, want := set.Label(i), fmt.Sprintf("tiny template %d", k); got != want {
			t.Errorf("sample %d: label %q, want %q", i, got, want)
		}
	}
	bad := cfg.Shape(1)
	bad.Channels = 8
	if _, err := DefaultImages(bad); err == nil || !strings.Contains(err.Error(), "latent channels") {
		t.Errorf("8 channels: error %v, want one about the latent channels", err)
	}
	bad = cfg.Shape(1)
	bad.Height = 1
	if _, err := DefaultImages(bad); err == nil || !strings.Contains(err.Error(), "height") {
		t.Errorf("height 1: error %v, want one about the height", err)
	}
}
