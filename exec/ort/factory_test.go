package ort

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vdpp/vdpp/models"
	"github.com/vdpp/vdpp/plan"
)

// TestFactory opens the committed tiny model for each stage of the 2-stage
// plan: the first stage opens the UNet and the encoder, the last the UNet
// and the decoder (all three with all), on the device's provider.
func TestFactory(t *testing.T) {
	p, err := plan.Load(filepath.Join("..", "..", "configs", "tiny-cpu-2stage.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	first, last := p.Pipelines[0].Stages[0], p.Pipelines[0].Stages[1]
	if f := StageFiles(p, first, false); f.UNet == "" || f.Encoder == "" || f.Decoder != "" {
		t.Errorf("first stage opens %+v, want the UNet and the encoder", f)
	}
	if f := StageFiles(p, last, false); f.Encoder != "" || f.Decoder == "" {
		t.Errorf("last stage opens %+v, want the UNet and the decoder", f)
	}
	if f := StageFiles(p, last, true); f.Encoder == "" || f.Decoder == "" {
		t.Errorf("with all, the last stage opens %+v, want all three", f)
	}
	if got := DescribeDevice(p.Devices[0]); got != "cpu, 1 intra-op thread(s)" {
		t.Errorf("DescribeDevice(cpu0) = %q", got)
	}
	if got := DescribeDevice(plan.Device{Provider: plan.ProviderCUDA, Index: 3}); got != "cuda device 3" {
		t.Errorf("DescribeDevice(cuda 3) = %q", got)
	}

	needORT(t)
	if got := Runtime(p); got != "onnxruntime "+Version()+" cpu, intra-op 1" {
		t.Errorf("Runtime = %q", got)
	}
	f := Factory(p, false)
	m, err := f(p.Devices[first.DevIdx], first)
	if err != nil {
		t.Fatal(err)
	}
	defer m.(*Model).Close()
	s := m.(*Model).Shape()
	if s.Frames != p.Model.Frames || s.Height != p.Model.Latent.Height {
		t.Errorf("shape %+v, plan %+v", s, p.Model)
	}
	out := make([]float32, 8*3*128*128)
	if err := m.Decode(models.Shape{Batch: 1, Frames: s.Frames, Channels: s.Channels, Height: s.Height, Width: s.Width}, make([]float32, s.Frames*s.Channels*s.Height*s.Width), out); err == nil {
		t.Error("the first stage decoded: it should not have opened the decoder")
	}
	// A missing file names the device and its provider.
	p.Model.ONNX.UNet = "nope.onnx"
	if _, err := Factory(p, false)(p.Devices[0], first); err == nil || !strings.Contains(err.Error(), "device cpu0 (cpu, 1 intra-op thread(s))") {
		t.Errorf("missing file: %v", err)
	}
}

// TestOneSessionPerGraph: each graph a stage runs is opened once, in one
// ONNX Runtime session (its inputs and outputs come from the ONNX file, not
// from a temporary session): on the 2-stage tiny plan, two sessions per
// stage (UNet and encoder, UNet and decoder), three per stage with all. The
// count is only as good as newSession being the package's one way to make
// a session, so the package's sources are checked for any other.
func TestOneSessionPerGraph(t *testing.T) {
	srcs, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range srcs {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, call := range []string{"GetInputOutputInfo", "NewAdvancedSession", "NewSession[", "NewDynamicSession", "NewDynamicAdvancedSession"} {
			n := strings.Count(string(b), "onnxruntime."+call)
			if call == "NewDynamicAdvancedSession" && f == "model.go" {
				n-- // newSession's own call
			}
			if n != 0 {
				t.Errorf("%s calls onnxruntime.%s outside newSession (%d times): sessions would go uncounted", f, call, n)
			}
		}
	}

	needORT(t)
	p, err := plan.Load(filepath.Join("..", "..", "configs", "tiny-cpu-2stage.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, all := range []bool{false, true} {
		for _, st := range p.Pipelines[0].Stages {
			want := 2
			if all {
				want = 3
			}
			before := sessionsOpened.Load()
			m, err := Factory(p, all)(p.Devices[st.DevIdx], st)
			if err != nil {
				t.Fatal(err)
			}
			got := sessionsOpened.Load() - before
			if err := m.(*Model).Close(); err != nil {
				t.Error(err)
			}
			if got != int64(want) {
				t.Errorf("stage %d (all=%v): %d sessions created, want %d (one per graph)", st.Index, all, got, want)
			}
		}
	}
}
