package ort

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	onnxruntime "github.com/yalue/onnxruntime_go"

	"github.com/vdpp/vdpp/models"
	"github.com/vdpp/vdpp/models/tiny"
	"github.com/vdpp/vdpp/plan"
)

// gpuLibGlob is where `make ort-gpu` puts the core library of the ONNX
// Runtime build that has a CUDA provider beside it, relative to the
// repository's root. It is named libonnxruntime.so, as the package ships
// it, so that Discover (libGlob) does not take it in place of `make ort`'s.
var gpuLibGlob = filepath.Join("third_party", "onnxruntime-gpu-*", "libonnxruntime.so")

// pairResult is what one library computes for the tiny model.
type pairResult struct {
	Version string
	UNet    [][]float32 // one per sigma of pairSigmas
	Emb     []float32
	Lat     []float32
	Frames  []float32
	// The CUDA provider through Options (appendCUDA: for this CPU build of
	// the core, the CUDA provider library next to it registered as a
	// plugin): the UNet at σ 1 on device 0, or the error of opening the
	// model on it.
	CUDAErr  string
	CUDAUNet []float32
	CUDAOpen time.Duration
	// The CUDA provider library registered as a plugin execution provider
	// (RegisterExecutionProviderLibrary, the route a CPU build of the core
	// has to it): "" or the error.
	RegisterErr string
}

var pairSigmas = []float64{700, 1, 0.002}

// pairInputs are the fixed inputs of every run: UNet inputs per sigma
// (batch 3), two conditioning images, decoder latents (batch 2).
func pairInputs(t testing.TB, cfg tiny.Config) ([]models.UNetInput, []float32, []float32) {
	t.Helper()
	rng := rand.New(rand.NewPCG(21, 22))
	var ins []models.UNetInput
	for _, sigma := range pairSigmas {
		ins = append(ins, unetInput(t, cfg, 3, sigma, rng))
	}
	var images []float32
	for k := range 2 {
		img, err := tiny.ConditioningImage(cfg, k+1)
		if err != nil {
			t.Fatal(err)
		}
		images = append(images, img...)
	}
	s := cfg.Shape(2)
	latents := make([]float32, 2*s.Frames*tiny.Channels*s.Height*s.Width)
	for i := range latents {
		latents[i] = float32(rng.NormFloat64() * 0.7)
	}
	return ins, images, latents
}

// runPair runs the tiny model on the CPU provider of the loaded library
// (and, with cuda, its UNet on the CUDA provider).
func runPair(t testing.TB, cfg tiny.Config, cuda bool) pairResult {
	t.Helper()
	ins, images, latents := pairInputs(t, cfg)
	m := openTiny(t, committed, cfg, Options{IntraOpThreads: 1})
	r := pairResult{Version: Version()}
	for _, in := range ins {
		out := make([]float32, len(in.Sample)/2)
		if err := m.UNet(in, out); err != nil {
			t.Fatal(err)
		}
		r.UNet = append(r.UNet, out)
	}
	s := cfg.Shape(2)
	n0 := tiny.Channels * s.Height * s.Width
	r.Emb, r.Lat = make([]float32, 2*models.Embedding), make([]float32, 2*n0)
	if err := m.Encode(s, images, r.Emb, r.Lat); err != nil {
		t.Fatal(err)
	}
	r.Frames = make([]float32, 2*s.Frames*3*64*s.Height*s.Width)
	if err := m.Decode(s, latents, r.Frames); err != nil {
		t.Fatal(err)
	}
	if !cuda {
		return r
	}
	provider := filepath.Join(filepath.Dir(Library()), "libonnxruntime_providers_cuda.so")
	if err := onnxruntime.RegisterExecutionProviderLibrary("CUDA", provider); err != nil {
		r.RegisterErr = err.Error()
	} else if err := onnxruntime.UnregisterExecutionProviderLibrary("CUDA"); err != nil {
		r.RegisterErr = "unregister: " + err.Error()
	}
	start := time.Now()
	cm, err := Open(tinyFiles(committed), cfg.Shape(1), Options{Provider: plan.ProviderCUDA})
	r.CUDAOpen = time.Since(start)
	if err != nil {
		r.CUDAErr = err.Error()
		return r
	}
	defer cm.Close()
	in := ins[1]
	r.CUDAUNet = make([]float32, len(in.Sample)/2)
	if err := cm.UNet(in, r.CUDAUNet); err != nil {
		r.CUDAErr = "run: " + err.Error()
		r.CUDAUNet = nil
	}
	return r
}

// TestCoreLibraryPair: the core library that `make ort-gpu` fetched
// (ONNX Runtime 1.29, serving the C API 24 that onnxruntime_go needs)
// loads, runs the tiny model on its CPU provider with the outputs of the
// library the other tests load (1.24.3) and of the Go reference, and
// either opens the model on its CUDA provider (and agrees within 1e-3) or
// says plainly why not. A library is loaded once per process, so it runs
// in a child: this test binary again, with envChildLib set. Skipped when
// `make ort-gpu` has not run (CI does not fetch its 330 MB).
func TestCoreLibraryPair(t *testing.T) {
	cfg := tiny.DefaultConfig()
	if lib := os.Getenv(envChildLib); lib != "" {
		if err := Init(lib); err != nil {
			t.Fatal(err)
		}
		data, err := json.Marshal(runPair(t, cfg, true))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(os.Getenv(envChildOut), data, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	lib := gpuLibrary(t)
	needORT(t)
	if samePath(lib, Library()) {
		t.Fatalf("this process already loaded %s: the comparison needs another library here", lib)
	}
	want := runPair(t, cfg, false)

	start := time.Now()
	var got pairResult
	childJSON(t, lib, &got, EnvCUDAPlugin+"=")
	t.Logf("%s: ONNX Runtime %s (this process: %s from %s), child ran in %v", lib, got.Version, want.Version, Library(), time.Since(start).Round(time.Millisecond))
	if !strings.HasPrefix(got.Version, "1.29.") {
		t.Errorf("%s reports ONNX Runtime %q, want 1.29.x", lib, got.Version)
	}

	ref, err := tiny.NewReference(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ins, images, latents := pairInputs(t, cfg)
	compare := func(what string, g, w []float32, atol, rtol float64) {
		t.Helper()
		if len(g) != len(w) {
			t.Errorf("%s: %d values, want %d", what, len(g), len(w))
			return
		}
		e, at := worst(g, w, atol, rtol)
		t.Logf("%s: worst error %.3g of |Δ| ≤ %g + %g·|v|", what, e, atol, rtol)
		if e > 1 {
			t.Errorf("%s[%d]: %g, want %g (%.2f× the tolerance)", what, at, g[at], w[at], e)
		}
	}
	for i, in := range ins {
		refOut := make([]float32, len(in.Sample)/2)
		if err := ref.UNet(in, refOut); err != nil {
			t.Fatal(err)
		}
		if i >= len(got.UNet) {
			t.Fatalf("child returned %d UNet outputs, want %d", len(got.UNet), len(ins))
		}
		compare("unet σ "+fmtSigma(pairSigmas[i])+", "+got.Version+" vs "+want.Version, got.UNet[i], want.UNet[i], 1e-5, 1e-5)
		compare("unet σ "+fmtSigma(pairSigmas[i])+", "+got.Version+" vs Go reference", got.UNet[i], refOut, 1e-4, 1e-4)
	}
	s := cfg.Shape(2)
	refEmb, refLat := make([]float32, len(want.Emb)), make([]float32, len(want.Lat))
	if err := ref.Encode(s, images, refEmb, refLat); err != nil {
		t.Fatal(err)
	}
	refFrames := make([]float32, len(want.Frames))
	if err := ref.Decode(s, latents, refFrames); err != nil {
		t.Fatal(err)
	}
	compare("embedding vs "+want.Version, got.Emb, want.Emb, 1e-6, 1e-5)
	compare("latent vs "+want.Version, got.Lat, want.Lat, 1e-6, 1e-5)
	compare("frames vs "+want.Version, got.Frames, want.Frames, 1e-6, 1e-5)
	compare("embedding vs Go reference", got.Emb, refEmb, 1e-5, 0)
	compare("latent vs Go reference", got.Lat, refLat, 1e-5, 0)
	compare("frames vs Go reference", got.Frames, refFrames, 1e-5, 0)

	// The CUDA provider library loads as a plugin execution provider where
	// CUDA 13 and cuBLAS are installed; elsewhere ONNX Runtime says which
	// library it could not load.
	provider := filepath.Join(filepath.Dir(lib), "libonnxruntime_providers_cuda.so")
	if got.RegisterErr == "" {
		t.Logf("%s registers as a plugin execution provider (its CUDA libraries load)", provider)
	} else {
		t.Logf("%s does not register here: %s", provider, got.RegisterErr)
		if !strings.Contains(got.RegisterErr, provider) {
			t.Errorf("registering %s: error %q does not name it", provider, got.RegisterErr)
		}
	}

	// The CUDA provider through Options: it runs (on a GPU with CUDA 13,
	// cuBLAS and cuDNN 9), or opening the model fails with an error that
	// names the library and the CUDA provider plugin (the 1.29.0 core of
	// `make ort-gpu` is a CPU build, which reaches CUDA only through it)
	// and ONNX Runtime's reason: where the plugin does not register, the
	// library the loader could not find.
	if got.CUDAErr == "" {
		compare("cuda unet σ 1 vs cpu "+want.Version, got.CUDAUNet, want.UNet[1], 1e-3, 1e-3)
		t.Logf("CUDA provider: the tiny model opened in %v and ran", got.CUDAOpen.Round(time.Millisecond))
		return
	}
	t.Logf("CUDA provider through Options not usable (opening took %v): %s", got.CUDAOpen.Round(time.Millisecond), got.CUDAErr)
	say := []string{cudaNotAvailable, lib, provider}
	if missing := missingLibrary(got.RegisterErr); missing != "" {
		say = append(say, "("+missing+" is missing)")
	}
	for _, s := range say {
		if !strings.Contains(got.CUDAErr, s) {
			t.Errorf("CUDA error %q does not say %q", got.CUDAErr, s)
		}
	}
}

func fmtSigma(s float64) string {
	b, _ := json.Marshal(s)
	return string(b)
}
