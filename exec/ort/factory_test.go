package ort

import (
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
