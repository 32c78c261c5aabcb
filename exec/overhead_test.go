package exec

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vdpp/vdpp/models"
	"github.com/vdpp/vdpp/plan"
	"github.com/vdpp/vdpp/timeline"
)

func TestStepOverhead(t *testing.T) {
	tl := &timeline.Timeline{Meta: timeline.Meta{Devices: []string{"a", "b"}}, Spans: []timeline.Span{
		{Device: "a", Kind: timeline.KindStep, Start: 0, End: 1000},
		{Device: "a", Kind: timeline.KindEncode, Start: 1000, End: 5000},
		{Device: "a", Kind: timeline.KindStep, Start: 5000, End: 6000},
		{Device: "b", Kind: timeline.KindStep, Start: 0, End: 4000},
	}}
	tm := NewUNetTimer()
	for range 4 {
		tm.add("a", 450)
	}
	tm.add("b", 3000)
	got := StepOverhead(tl, tm)
	if len(got) != 2 {
		t.Fatalf("%d devices, want 2", len(got))
	}
	// a: 2000 ns of steps, 1800 in 4 UNet calls: 50 ns per step, 10%.
	if a := got[0]; a.Device != "a" || a.Calls != 4 || a.PerStepNS != 50 || a.Fraction != 0.1 {
		t.Errorf("a: %+v", a)
	}
	all, ok := TotalOverhead(got)
	if !ok || all.Device != "all" || all.Calls != 5 || all.StepNS != 6000 || all.UNetNS != 4800 || all.PerStepNS != 240 || all.Fraction != 0.2 {
		t.Errorf("total: %+v", all)
	}
	if StepOverhead(tl, nil) != nil {
		t.Error("overhead without a timer")
	}
	if StepOverhead(tl, NewUNetTimer()) != nil {
		t.Error("overhead of a timer that timed nothing (the calls ran in other processes)")
	}
	if _, ok := TotalOverhead(nil); ok {
		t.Error("a total of nothing")
	}
}

// closer is a model that records its Close.
type closer struct {
	fakeModel
	closed bool
}

func (c *closer) Close() error { c.closed = true; return nil }

// TestUNetTimerFactory: the models of a wrapped factory time their UNet
// calls by device and still close; a failing factory's error comes through.
func TestUNetTimerFactory(t *testing.T) {
	tm := NewUNetTimer()
	inner := &closer{fakeModel: fakeModel{unet: time.Millisecond}}
	f := tm.Factory(func(plan.Device, plan.Stage) (models.Model, error) { return inner, nil })
	m, err := f(plan.Device{Name: "cpu3"}, plan.Stage{})
	if err != nil {
		t.Fatal(err)
	}
	s := models.Shape{Batch: 1, Frames: 1, Channels: 1, Height: 1, Width: 1}
	in := models.UNetInput{Shape: s, Sample: make([]float32, 2), Timestep: []float32{0}, EncoderHiddenStates: make([]float32, models.Embedding), AddedTimeIDs: make([]float32, 3)}
	for range 2 {
		if err := m.UNet(in, make([]float32, 1)); err != nil {
			t.Fatal(err)
		}
	}
	if d, n := tm.Total("cpu3"); n != 2 || d < 2*time.Millisecond {
		t.Errorf("cpu3: %v in %d calls, want 2 calls of at least 1 ms", d, n)
	}
	closeModels(map[string]models.Model{"cpu3": m})
	if !inner.closed {
		t.Error("the wrapped model was not closed")
	}
	boom := errors.New("boom")
	if _, err := tm.Factory(func(plan.Device, plan.Stage) (models.Model, error) { return nil, boom })(plan.Device{}, plan.Stage{}); !errors.Is(err, boom) {
		t.Errorf("failing factory: %v", err)
	}
}

// TestCheckModelFiles: the files the stages open must exist; required,
// they must be named too; the hint replaces the default advice.
func TestCheckModelFiles(t *testing.T) {
	dir := t.TempDir()
	unet := filepath.Join(dir, "unet.onnx")
	if err := os.WriteFile(unet, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	p := testPlan("files", 4, 1, 1, [][2]int{{0, 1}, {2, 3}})
	p.File = "plan.yaml"
	p.Model.ONNX = plan.ONNXFiles{UNet: unet, Decoder: filepath.Join(dir, "decoder.onnx")}
	if got := ModelFiles(p); len(got) != 3 || got[0] != (ModelFile{"model.onnx.unet", unet}) || got[1].Path != "" || got[2].Field != "model.onnx.decoder" {
		t.Errorf("ModelFiles: %+v", got)
	}
	err := CheckModelFiles(p, FileCheck{})
	if err == nil || err.Error() != "plan.yaml: model.onnx.decoder: model file "+strconv.Quote(filepath.Join(dir, "decoder.onnx"))+" not found: "+HintFixPath {
		t.Errorf("not required: %v", err)
	}
	err = CheckModelFiles(p, FileCheck{Required: true, Hint: "run from the root"})
	if err == nil || !strings.Contains(err.Error(), "plan.yaml: model.onnx.encoder is not set") || !strings.Contains(err.Error(), "not found: run from the root") {
		t.Errorf("required: %v", err)
	}
	p.Model.ONNX = plan.ONNXFiles{}
	if err := CheckModelFiles(p, FileCheck{}); err != nil {
		t.Errorf("a plan without files, for a fake model: %v", err)
	}
}
