package ort

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/vdpp/vdpp/exec"
	"github.com/vdpp/vdpp/models"
	"github.com/vdpp/vdpp/plan"
)

// Factory returns the exec.Factory that opens one ONNX Runtime model per
// stage device of p: the cpu provider with the device's threads as
// intra-op threads and one inter-op thread, or cuda on the device's index
// (the library's own CUDA provider, or the CUDA provider library
// registered as a plugin: see Options.CUDADevice), with the graphs the
// stage runs (StageFiles). With all, every stage opens
// all three graphs (a profile measures each part on every device).
func Factory(p *plan.Plan, all bool) exec.Factory {
	return func(d plan.Device, st plan.Stage) (models.Model, error) {
		shape := models.Shape{
			Batch:    p.Layout.MicroBatch,
			Frames:   p.Model.Frames,
			Channels: p.Model.Latent.Channels,
			Height:   p.Model.Latent.Height,
			Width:    p.Model.Latent.Width,
		}
		opts := Options{Provider: d.Provider, InterOpThreads: 1}
		switch d.Provider {
		case plan.ProviderCUDA:
			opts.CUDADevice = d.Index
		default:
			opts.IntraOpThreads = d.Threads
		}
		m, err := Open(StageFiles(p, st, all), shape, opts)
		if err != nil {
			return nil, fmt.Errorf("device %s (%s): %w", d.Name, DescribeDevice(d), err)
		}
		return m, nil
	}
}

// StageFiles are the model files a stage opens: the UNet always, the
// encoder on the stage that encodes, the decoder on the one that decodes;
// all three with all.
func StageFiles(p *plan.Plan, st plan.Stage, all bool) Files {
	f := Files{UNet: p.Path(p.Model.ONNX.UNet)}
	if st.Encode || all {
		f.Encoder = p.Path(p.Model.ONNX.Encoder)
	}
	if st.Decode || all {
		f.Decoder = p.Path(p.Model.ONNX.Decoder)
	}
	return f
}

// DescribeDevice names a device's provider and its threads or index:
// "cpu, 1 intra-op thread(s)", "cuda device 0".
func DescribeDevice(d plan.Device) string {
	if d.Provider == plan.ProviderCUDA {
		return fmt.Sprintf("cuda device %d", d.Index)
	}
	return fmt.Sprintf("cpu, %d intra-op thread(s)", d.Threads)
}

// Runtime names the runtime the stages of p run on, for a profile's
// provenance: "onnxruntime 1.24.3 cpu, intra-op 1" (the providers, and the
// cpu devices' intra-op thread counts). The library must be loaded.
func Runtime(p *plan.Plan) string {
	providers := map[string]bool{}
	threads := map[int]bool{}
	for _, pl := range p.Pipelines {
		for _, st := range pl.Stages {
			d := p.Devices[st.DevIdx]
			providers[string(d.Provider)] = true
			if d.Provider != plan.ProviderCUDA {
				threads[d.Threads] = true
			}
		}
	}
	names := make([]string, 0, len(providers))
	for k := range providers {
		names = append(names, k)
	}
	sort.Strings(names)
	s := "onnxruntime " + Version() + " " + strings.Join(names, "+")
	if len(threads) > 0 {
		var ts []string
		for t := range threads {
			ts = append(ts, strconv.Itoa(t))
		}
		sort.Strings(ts)
		s += ", intra-op " + strings.Join(ts, "/")
	}
	return s
}
