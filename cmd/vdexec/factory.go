package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/vdpp/vdpp/exec"
	"github.com/vdpp/vdpp/exec/ort"
	"github.com/vdpp/vdpp/models"
	"github.com/vdpp/vdpp/plan"
)

// locateDefault returns the directory the embedded default plan's relative
// paths (../models/tiny/*.onnx) resolve against: the configs folder of the
// repository that holds the current directory (searched upwards) or the
// executable (bin/vdexec → ../configs). When none has the model files it
// returns "configs", so that messages name the path a user would expect.
func locateDefault() string {
	var roots []string
	if wd, err := os.Getwd(); err == nil {
		for d := wd; ; d = filepath.Dir(d) {
			roots = append(roots, d)
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	if exe, err := os.Executable(); err == nil {
		roots = append(roots, filepath.Dir(filepath.Dir(exe)))
	}
	probe, err := probeDefault()
	if err == nil {
		for _, r := range roots {
			dir := filepath.Join(r, "configs")
			if _, err := os.Stat(filepath.Join(dir, probe)); err == nil {
				return dir
			}
		}
	}
	return "configs"
}

// defaultProbe is the UNet path of the embedded default plan, relative to
// its folder; loaded once.
var defaultProbe struct {
	once sync.Once
	path string
	err  error
}

// probeDefault returns the relative UNet path of the embedded plan.
func probeDefault() (string, error) {
	defaultProbe.once.Do(func() {
		p, err := plan.LoadFS(defaultPlan.FS, defaultPlan.Name)
		if err != nil {
			defaultProbe.err = err
			return
		}
		defaultProbe.path = p.Model.ONNX.UNet
	})
	return defaultProbe.path, defaultProbe.err
}

// stageFiles are the model files a stage opens: the UNet always, the
// encoder on the stage that encodes, the decoder on the one that decodes;
// all three when all is set (profiling measures each part on every device).
func stageFiles(p *plan.Plan, st plan.Stage, all bool) ort.Files {
	f := ort.Files{UNet: p.Path(p.Model.ONNX.UNet)}
	if st.Encode || all {
		f.Encoder = p.Path(p.Model.ONNX.Encoder)
	}
	if st.Decode || all {
		f.Decoder = p.Path(p.Model.ONNX.Decoder)
	}
	return f
}

// checkModelFiles checks that every model file the plan's stages open
// (all three with all) exists, and says what to pass when it does not.
func checkModelFiles(p *plan.Plan, all bool) error {
	need := []struct{ field, path string }{{"model.onnx.unet", p.Model.ONNX.UNet}}
	for _, pl := range p.Pipelines {
		for _, st := range pl.Stages {
			if st.Encode || all {
				need = append(need, struct{ field, path string }{"model.onnx.encoder", p.Model.ONNX.Encoder})
			}
			if st.Decode || all {
				need = append(need, struct{ field, path string }{"model.onnx.decoder", p.Model.ONNX.Decoder})
			}
		}
	}
	seen := map[string]bool{}
	var errs []error
	for _, n := range need {
		if seen[n.field] {
			continue
		}
		seen[n.field] = true
		if n.path == "" {
			errs = append(errs, fmt.Errorf("%s: %s is not set: the executor needs the model's ONNX file there (paths are relative to the plan file)", p.File, n.field))
			continue
		}
		path := p.Path(n.path)
		if _, err := os.Stat(path); err != nil {
			hint := "fix the path in the plan (relative to the plan file's folder)"
			if p.Model.Family == "tiny" {
				hint += "; the tiny model's files are committed in models/tiny (regenerate with `go run ./models/tiny/gen`)"
			}
			if p.File == defaultPlan.Name {
				hint = "run vdexec from the repository root, or pass the plan file itself: vdexec run configs/" + defaultPlanName
			}
			errs = append(errs, fmt.Errorf("%s: %s: model file %s not found: %s", p.File, n.field, path, hint))
		}
	}
	return errors.Join(errs...)
}

// ortFactory opens one ONNX Runtime model per stage device: the CPU
// provider with the device's threads as intra-op threads and one inter-op
// thread, or CUDA on the device's index. When timer is not nil the models
// add the time of their UNet calls to it, per device. With all, every
// stage opens all three graphs (see stageFiles).
func ortFactory(p *plan.Plan, timer *unetTimer, all bool) exec.Factory {
	return func(d plan.Device, st plan.Stage) (models.Model, error) {
		shape := models.Shape{
			Batch:    p.Layout.MicroBatch,
			Frames:   p.Model.Frames,
			Channels: p.Model.Latent.Channels,
			Height:   p.Model.Latent.Height,
			Width:    p.Model.Latent.Width,
		}
		opts := ort.Options{Provider: string(d.Provider), InterOpThreads: 1}
		switch d.Provider {
		case plan.ProviderCUDA:
			opts.CUDADevice = d.Index
		default:
			opts.IntraOpThreads = d.Threads
		}
		m, err := ort.Open(stageFiles(p, st, all), shape, opts)
		if err != nil {
			return nil, fmt.Errorf("device %s (%s): %w", d.Name, describeProvider(d), err)
		}
		if timer == nil {
			return m, nil
		}
		return &timedModel{Model: m, add: timer.adder(d.Name)}, nil
	}
}

// describeProvider names a device's provider and its threads or index.
func describeProvider(d plan.Device) string {
	if d.Provider == "cuda" {
		return fmt.Sprintf("cuda device %d", d.Index)
	}
	return fmt.Sprintf("cpu, %d intra-op thread(s)", d.Threads)
}

// unetTimer sums the time spent inside UNet calls per device, so that a
// run can report the executor's own overhead per step (step time outside
// the UNet call).
type unetTimer struct {
	mu    sync.Mutex
	total map[string]time.Duration
	calls map[string]int
}

func newUNetTimer() *unetTimer {
	return &unetTimer{total: map[string]time.Duration{}, calls: map[string]int{}}
}

func (t *unetTimer) adder(dev string) func(time.Duration) {
	return func(d time.Duration) {
		t.mu.Lock()
		t.total[dev] += d
		t.calls[dev]++
		t.mu.Unlock()
	}
}

// get returns the total UNet time and call count of a device.
func (t *unetTimer) get(dev string) (time.Duration, int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.total[dev], t.calls[dev]
}

// timedModel times the UNet calls of a model.
type timedModel struct {
	models.Model
	add func(time.Duration)
}

func (m *timedModel) UNet(in models.UNetInput, out []float32) error {
	t := time.Now()
	err := m.Model.UNet(in, out)
	m.add(time.Since(t))
	return err
}

// Close closes the wrapped model.
func (m *timedModel) Close() error {
	if c, ok := m.Model.(io.Closer); ok {
		return c.Close()
	}
	return nil
}
