package ort

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/vdpp/vdpp/models"
	"github.com/vdpp/vdpp/models/onnx"
	"github.com/vdpp/vdpp/models/tiny"
)

// committed is the directory of the committed tiny model.
var committed = filepath.Join("..", "..", "models", "tiny")

// needORT loads the ONNX Runtime library, or fails the test (skips it
// with VDPP_ORT_OPTIONAL=1): NeedForTest.
func needORT(t testing.TB) {
	t.Helper()
	NeedForTest(t)
}

func tinyFiles(dir string) Files {
	u, e, d := tiny.Files(dir)
	return Files{UNet: u, Encoder: e, Decoder: d}
}

func openTiny(t testing.TB, dir string, cfg tiny.Config, opts Options) *Model {
	t.Helper()
	m, err := Open(tinyFiles(dir), cfg.Shape(1), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Error(err)
		}
	})
	return m
}

// unetInput builds a batch of UNet inputs at noise level sigma: batch
// element b is template b%K plus noise (even b) or pure noise (odd b), and
// its image latent is a template's first frame, zero, or random.
func unetInput(t testing.TB, cfg tiny.Config, batch int, sigma float64, rng *rand.Rand) models.UNetInput {
	t.Helper()
	ts, err := tiny.Templates(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Shape(batch)
	n0 := tiny.Channels * s.Height * s.Width
	in := models.UNetInput{
		Shape:               s,
		Sample:              make([]float32, batch*s.Frames*2*n0),
		Timestep:            make([]float32, batch),
		EncoderHiddenStates: make([]float32, batch*models.Embedding),
		AddedTimeIDs:        make([]float32, batch*3),
	}
	cin := 1 / math.Sqrt(sigma*sigma+1)
	for b := range batch {
		in.Timestep[b] = float32(0.25 * math.Log(sigma))
		tk := ts[b%len(ts)]
		img := make([]float64, n0)
		switch b % 3 {
		case 0:
			for i := range img {
				img[i] = float64(ts[(b+1)%len(ts)][i])
			}
		case 2:
			for i := range img {
				img[i] = rng.NormFloat64()
			}
		}
		for f := range s.Frames {
			for i := range n0 {
				x := sigma * rng.NormFloat64()
				if b%2 == 0 {
					x += float64(tk[f*n0+i])
				} else {
					x = math.Sqrt(sigma*sigma+1) * rng.NormFloat64()
				}
				base := (b*s.Frames+f)*2*n0 + i
				in.Sample[base] = float32(cin * x)
				in.Sample[base+n0] = float32(img[i])
			}
		}
		for j := range models.Embedding {
			in.EncoderHiddenStates[b*models.Embedding+j] = float32(rng.NormFloat64() * 0.1)
		}
		copy(in.AddedTimeIDs[3*b:], []float32{6, 127, 0.02})
	}
	return in
}

// closeTo reports the worst |got − want| / (atol + rtol·|want|).
func worst(got, want []float32, atol, rtol float64) (float64, int) {
	w, at := 0.0, -1
	for i := range got {
		e := math.Abs(float64(got[i])-float64(want[i])) / (atol + rtol*math.Abs(float64(want[i])))
		if e > w || math.IsNaN(e) {
			w, at = e, i
		}
	}
	return w, at
}

// TestUNetMatchesReference: the committed ONNX UNet equals the Go reference
// within |Δv| ≤ 1e-4 + 1e-4·|v| at σ from 700 down to 0.002, batch 3.
func TestUNetMatchesReference(t *testing.T) {
	needORT(t)
	cfg := tiny.DefaultConfig()
	ref, err := tiny.NewReference(cfg)
	if err != nil {
		t.Fatal(err)
	}
	m := openTiny(t, committed, cfg, Options{IntraOpThreads: 1})
	rng := rand.New(rand.NewPCG(1, 2))
	for _, sigma := range []float64{700, 50, 1, 0.01, 0.002} {
		in := unetInput(t, cfg, 3, sigma, rng)
		got := make([]float32, len(in.Sample)/2)
		want := make([]float32, len(got))
		if err := m.UNet(in, got); err != nil {
			t.Fatal(err)
		}
		if err := ref.UNet(in, want); err != nil {
			t.Fatal(err)
		}
		w, at := worst(got, want, 1e-4, 1e-4)
		t.Logf("sigma %g: worst error %.3g of the tolerance", sigma, w)
		if w > 1 {
			t.Errorf("sigma %g: onnx %g, reference %g at %d (%.2f× the tolerance)", sigma, got[at], want[at], at, w)
		}
	}
}

// BenchmarkUNet times one UNet call of the committed tiny model at its
// default shape on one intra-op thread.
func BenchmarkUNet(b *testing.B) {
	needORT(b)
	cfg := tiny.DefaultConfig()
	m := openTiny(b, committed, cfg, Options{IntraOpThreads: 1, InterOpThreads: 1})
	for _, batch := range []int{1, 2} {
		b.Run(fmt.Sprintf("batch%d", batch), func(b *testing.B) {
			in := unetInput(b, cfg, batch, 1, rand.New(rand.NewPCG(3, 4)))
			out := make([]float32, len(in.Sample)/2)
			for b.Loop() {
				if err := m.UNet(in, out); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(b.Elapsed().Seconds()*1000/float64(b.N), "ms/call")
		})
	}
}

// TestEncodeDecodeMatchReference: the committed encoder and decoder equal
// the Go reference within 1e-5 (absolute), batch 2.
func TestEncodeDecodeMatchReference(t *testing.T) {
	needORT(t)
	cfg := tiny.DefaultConfig()
	ref, err := tiny.NewReference(cfg)
	if err != nil {
		t.Fatal(err)
	}
	m := openTiny(t, committed, cfg, Options{IntraOpThreads: 1})
	s := cfg.Shape(2)
	var images []float32
	for k := range 2 {
		img, err := tiny.ConditioningImage(cfg, k+1)
		if err != nil {
			t.Fatal(err)
		}
		images = append(images, img...)
	}
	n0 := tiny.Channels * s.Height * s.Width
	emb, lat := make([]float32, 2*models.Embedding), make([]float32, 2*n0)
	wantEmb, wantLat := make([]float32, len(emb)), make([]float32, len(lat))
	if err := m.Encode(s, images, emb, lat); err != nil {
		t.Fatal(err)
	}
	if err := ref.Encode(s, images, wantEmb, wantLat); err != nil {
		t.Fatal(err)
	}
	if w, at := worst(emb, wantEmb, 1e-5, 0); w > 1 {
		t.Errorf("embedding[%d]: onnx %g, reference %g", at, emb[at], wantEmb[at])
	}
	if w, at := worst(lat, wantLat, 1e-5, 0); w > 1 {
		t.Errorf("latent[%d]: onnx %g, reference %g", at, lat[at], wantLat[at])
	}

	rng := rand.New(rand.NewPCG(5, 6))
	latents := make([]float32, 2*s.Frames*n0)
	for i := range latents {
		latents[i] = float32(rng.NormFloat64() * 0.7)
	}
	np := 3 * 64 * s.Height * s.Width
	frames, want := make([]float32, 2*s.Frames*np), make([]float32, 2*s.Frames*np)
	if err := m.Decode(s, latents, frames); err != nil {
		t.Fatal(err)
	}
	if err := ref.Decode(s, latents, want); err != nil {
		t.Fatal(err)
	}
	if w, at := worst(frames, want, 1e-5, 0); w > 1 {
		t.Errorf("frames[%d]: onnx %g, reference %g", at, frames[at], want[at])
	}
}

// TestFP16 generates the tiny model with float16 inputs and outputs (and no
// extra compute) and checks that it matches the reference within float16
// precision: |Δv| ≤ 0.02 + 0.01·|v| at σ 1 and 50.
func TestFP16(t *testing.T) {
	needORT(t)
	cfg := tiny.DefaultConfig()
	cfg.FP16 = true
	cfg.ExtraChannels = 0
	dir := t.TempDir()
	if err := tiny.WriteFiles(dir, cfg); err != nil {
		t.Fatal(err)
	}
	m := openTiny(t, dir, cfg, Options{IntraOpThreads: 1})
	if !m.FP16() {
		t.Fatal("FP16() = false for a float16 model")
	}
	ref, err := tiny.NewReference(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(9, 10))
	for _, sigma := range []float64{50, 1} {
		in := unetInput(t, cfg, 2, sigma, rng)
		// Round the inputs to float16 first, so both see the same values.
		for _, v := range [][]float32{in.Sample, in.Timestep, in.EncoderHiddenStates, in.AddedTimeIDs} {
			for i := range v {
				v[i] = halfRound(v[i])
			}
		}
		got, want := make([]float32, len(in.Sample)/2), make([]float32, len(in.Sample)/2)
		if err := m.UNet(in, got); err != nil {
			t.Fatal(err)
		}
		if err := ref.UNet(in, want); err != nil {
			t.Fatal(err)
		}
		if w, at := worst(got, want, 0.02, 0.01); w > 1 {
			t.Errorf("sigma %g: onnx fp16 %g, reference %g at %d", sigma, got[at], want[at], at)
		}
	}
	img, _ := tiny.ConditioningImage(cfg, 0)
	emb, lat := make([]float32, models.Embedding), make([]float32, tiny.Channels*cfg.Height*cfg.Width)
	wantLat := make([]float32, len(lat))
	if err := m.Encode(cfg.Shape(1), img, emb, lat); err != nil {
		t.Fatal(err)
	}
	if err := ref.Encode(cfg.Shape(1), img, make([]float32, models.Embedding), wantLat); err != nil {
		t.Fatal(err)
	}
	if w, at := worst(lat, wantLat, 0.01, 0.01); w > 1 {
		t.Errorf("fp16 latent[%d]: onnx %g, reference %g", at, lat[at], wantLat[at])
	}
}

// TestExtraComputeIsLive: with a large ExtraScale the extra compute moves
// the answer, so it is really in the graph (and not optimised away).
func TestExtraComputeIsLive(t *testing.T) {
	needORT(t)
	cfg := tiny.DefaultConfig()
	cfg.ExtraBlocks = 1
	cfg.ExtraScale = 1e-3
	dir := t.TempDir()
	if err := tiny.WriteFiles(dir, cfg); err != nil {
		t.Fatal(err)
	}
	m := openTiny(t, dir, cfg, Options{IntraOpThreads: 1})
	ref, err := tiny.NewReference(cfg)
	if err != nil {
		t.Fatal(err)
	}
	in := unetInput(t, cfg, 1, 1, rand.New(rand.NewPCG(11, 12)))
	got, want := make([]float32, len(in.Sample)/2), make([]float32, len(in.Sample)/2)
	if err := m.UNet(in, got); err != nil {
		t.Fatal(err)
	}
	if err := ref.UNet(in, want); err != nil {
		t.Fatal(err)
	}
	if w, _ := worst(got, want, 1e-4, 0); w < 1 {
		t.Errorf("extra compute at scale 1e-3 changes v by at most %.3g, want > 1e-4", w*1e-4)
	}
}

func halfRound(v float32) float32 {
	return onnx.Float16ToFloat32(onnx.Float32ToFloat16(v))
}

// TestOpenErrors: the contract is checked at Open, with messages that name
// the input and both shapes.
func TestOpenErrors(t *testing.T) {
	needORT(t)
	cfg := tiny.DefaultConfig()
	wrong := cfg.Shape(1)
	wrong.Frames = 14
	_, err := Open(tinyFiles(committed), wrong, Options{})
	if err == nil || !strings.Contains(err.Error(), `input "sample"`) || !strings.Contains(err.Error(), "[B 14 8 16 16]") ||
		!strings.Contains(err.Error(), "[? 8 8 16 16]") {
		t.Errorf("Open at 14 frames: error %v, want one naming input \"sample\", [? 8 8 16 16] and [B 14 8 16 16]", err)
	}
	// The decoder given as the UNet.
	_, d, _ := tiny.Files(committed)
	if _, err := Open(Files{UNet: d}, cfg.Shape(1), Options{}); err == nil || !strings.Contains(err.Error(), "unet") {
		t.Errorf("Open with the encoder as UNet: error %v, want a unet contract error", err)
	}
	if _, err := Open(Files{UNet: filepath.Join(t.TempDir(), "none.onnx")}, cfg.Shape(1), Options{}); err == nil {
		t.Error("Open of a missing file: no error")
	}
	if _, err := Open(tinyFiles(committed), cfg.Shape(1), Options{Provider: "tpu"}); err == nil || !strings.Contains(err.Error(), "provider") {
		t.Errorf("Open with provider tpu: error %v", err)
	}

	m := openTiny(t, committed, cfg, Options{IntraOpThreads: 1})
	in := unetInput(t, cfg, 1, 1, rand.New(rand.NewPCG(1, 1)))
	if err := m.UNet(in, make([]float32, 3)); err == nil {
		t.Error("UNet with a short output buffer: no error")
	}
	in.Timestep = nil
	if err := m.UNet(in, make([]float32, len(in.Sample)/2)); err == nil {
		t.Error("UNet without a timestep: no error")
	}
	um, err := Open(Files{UNet: tinyFiles(committed).UNet}, cfg.Shape(1), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer um.Close()
	if err := um.Decode(cfg.Shape(1), nil, nil); !errors.Is(err, ErrNotOpened) {
		t.Errorf("Decode on a UNet-only model: error %v, want ErrNotOpened", err)
	}
}

// TestCUDAUnavailable: on a CPU-only library the cuda provider fails with
// a message that says what to do. (Skipped where the library has CUDA.)
func TestCUDAUnavailable(t *testing.T) {
	needORT(t)
	cfg := tiny.DefaultConfig()
	m, err := Open(tinyFiles(committed), cfg.Shape(1), Options{Provider: "cuda"})
	if err == nil {
		m.Close()
		t.Skip("this ONNX Runtime library has a working CUDA provider")
	}
	if !strings.Contains(err.Error(), "CUDA execution provider not available") || !strings.Contains(err.Error(), "provider: cpu") {
		t.Errorf("cuda on a CPU-only library: error %q", err)
	}
}

func TestInitErrors(t *testing.T) {
	needORT(t)
	if err := Init(filepath.Join(t.TempDir(), "libother.so")); err == nil || !strings.Contains(err.Error(), "already loaded") {
		t.Errorf("Init with another library: error %v, want 'already loaded'", err)
	}
	if err := Init(Library()); err != nil {
		t.Errorf("Init again with the same library: %v", err)
	}
	if v := Version(); !strings.HasPrefix(v, "1.") {
		t.Errorf("Version() = %q", v)
	}
}

func TestCheckLib(t *testing.T) {
	if err := checkLib(""); !errors.Is(err, ErrNoLibrary) || !strings.Contains(err.Error(), "make ort") {
		t.Errorf("checkLib(\"\") = %v, want ErrNoLibrary mentioning make ort", err)
	}
	missing := filepath.Join(t.TempDir(), "libonnxruntime.so.1")
	if err := checkLib(missing); err == nil || !strings.Contains(err.Error(), missing) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("checkLib(missing) = %v, want a not-exist error naming the path", err)
	}
}

// TestSampleLandsOnTemplate runs the sampler (20 Euler steps, CFG 1→3)
// through ONNX Runtime for two samples conditioned on templates 0 and 3
// (encoded by the ONNX encoder): each must end on its template, within an
// RMS distance of 1e-5, and its decoded frames must match the reference's.
func TestSampleLandsOnTemplate(t *testing.T) {
	needORT(t)
	cfg := tiny.DefaultConfig()
	m := openTiny(t, committed, cfg, Options{IntraOpThreads: 1})
	ref, err := tiny.NewReference(cfg)
	if err != nil {
		t.Fatal(err)
	}
	sigmas, err := models.KarrasSigmas(20, 0.002, 700, 7)
	if err != nil {
		t.Fatal(err)
	}
	sc := models.SamplerConfig{
		Frames: cfg.Frames, Channels: tiny.Channels, Height: cfg.Height, Width: cfg.Width,
		Sigmas: sigmas, CFG: &models.Guidance{Min: 1, Max: 3}, TimeIDs: [3]float32{6, 127, 0.02},
	}
	smp, err := models.NewSampler(m, sc)
	if err != nil {
		t.Fatal(err)
	}
	ks := []int{0, 3}
	var batch []*models.State
	n0 := tiny.Channels * cfg.Height * cfg.Width
	for i, k := range ks {
		img, err := tiny.ConditioningImage(cfg, k)
		if err != nil {
			t.Fatal(err)
		}
		cond := models.Conditioning{Embedding: make([]float32, models.Embedding), ImageLatent: make([]float32, n0)}
		if err := m.Encode(cfg.Shape(1), img, cond.Embedding, cond.ImageLatent); err != nil {
			t.Fatal(err)
		}
		batch = append(batch, smp.Start(42, i, cond))
	}
	if err := smp.Run(batch, 0, models.Step(sc.Steps())); err != nil {
		t.Fatal(err)
	}
	np := 3 * 64 * cfg.Height * cfg.Width
	for i, st := range batch {
		k, d := tiny.Nearest(cfg, st.X)
		t.Logf("sample %d: template %d at rms %.3g", i, k, d)
		if k != ks[i] || d > 1e-5 {
			t.Errorf("sample %d conditioned on template %d ended on template %d at rms distance %.3g, want %d within 1e-5", i, ks[i], k, d, ks[i])
		}
		got, want := make([]float32, cfg.Frames*np), make([]float32, cfg.Frames*np)
		if err := m.Decode(cfg.Shape(1), st.X, got); err != nil {
			t.Fatal(err)
		}
		if err := ref.Decode(cfg.Shape(1), st.X, want); err != nil {
			t.Fatal(err)
		}
		if w, at := worst(got, want, 1e-5, 0); w > 1 {
			t.Errorf("sample %d: decoded frame value %d: onnx %g, reference %g", i, at, got[at], want[at])
		}
	}
}

// TestConcurrentCalls: one Model used from several goroutines (run with
// -race) gives the same answers as sequential calls.
func TestConcurrentCalls(t *testing.T) {
	needORT(t)
	cfg := tiny.DefaultConfig()
	m := openTiny(t, committed, cfg, Options{IntraOpThreads: 1})
	rng := rand.New(rand.NewPCG(13, 14))
	var ins []models.UNetInput
	var want [][]float32
	for i := range 4 {
		in := unetInput(t, cfg, 1+i%2, 1, rng)
		out := make([]float32, len(in.Sample)/2)
		if err := m.UNet(in, out); err != nil {
			t.Fatal(err)
		}
		ins, want = append(ins, in), append(want, out)
	}
	var wg sync.WaitGroup
	errs := make([]error, len(ins))
	for i := range ins {
		wg.Go(func() {
			out := make([]float32, len(want[i]))
			if errs[i] = m.UNet(ins[i], out); errs[i] == nil {
				for j := range out {
					if out[j] != want[i][j] {
						errs[i] = fmt.Errorf("call %d: value %d: %g, sequential %g", i, j, out[j], want[i][j])
						return
					}
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

// TestCheckLibNotORT: another shared library (the libc this test runs
// with) once gave "Error looking up OrtGetApiBase in ...: " with an empty
// tail; a file that is no library gave the loader's "file too short". Both
// now say plainly that the file is not an ONNX Runtime library, and how to
// get one.
func TestCheckLibNotORT(t *testing.T) {
	text := filepath.Join(t.TempDir(), "libonnxruntime.so.1")
	if err := os.WriteFile(text, []byte("not a library\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	files := []string{text}
	if libc := loadedLibc(); libc != "" {
		files = append(files, libc)
	} else {
		t.Log("no libc in /proc/self/maps: checking only a text file")
	}
	for _, f := range files {
		err := checkLib(f)
		if err == nil {
			t.Errorf("checkLib(%s): no error", f)
			continue
		}
		for _, w := range []string{f, "is not an ONNX Runtime library", "make ort"} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("checkLib(%s) = %v; want it to say %q", f, err, w)
			}
		}
	}
}

// loadedLibc is the path of the libc.so.6 this process has mapped, or "".
func loadedLibc() string {
	data, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(data), "\n") {
		if i := strings.Index(line, "/"); i >= 0 && strings.HasSuffix(line, "/libc.so.6") {
			return line[i:]
		}
	}
	return ""
}
