package plan

import "fmt"

// Defaults filled by EnsureDefaults.
const (
	DefaultSamplerKind = "euler-karras"
	DefaultSigmaMin    = 0.002
	DefaultSigmaMax    = 700.0
	DefaultRho         = 7.0
	DefaultFPS         = 7
	DefaultMotion      = 127
	DefaultLink        = "default"
)

// EnsureDefaults fills every field left empty (zero) with its default. It
// does not check anything; Validate does. Defaults:
//
//   - model.dtype: fp16 for family svd, fp32 for tiny (CPU runtimes are
//     fastest in fp32); model.fps 7; model.motion_bucket 127
//   - sampler: kind euler-karras, sigma_min 0.002, sigma_max 700, rho 7
//   - devices: name gpuN (cpuN for kind cpu) by position; speed 1;
//     threads 1; provider cpu for kind cpu, else cuda; cuda index: the
//     device's position among the cuda devices, unless written
//   - layout: assignment explicit when stages or pipelines are given, else
//     even; replicas the number of explicit pipelines, else 1; encode_on
//     first; decode_on last; micro_batch 1; handoff blocking; dispatch
//     round-robin
//   - links.default "default"; transport inproc; workload.arrival.kind batch
//
// Steps, samples, frames and the latent shape have no default: they are
// the question the plan asks.
func (p *Plan) EnsureDefaults() {
	p.defaulted = true
	p.defaultModel()
	p.defaultDevices()
	p.defaultLayout()
	if p.Links.Default == "" {
		p.Links.Default = DefaultLink
	}
	if p.Transport == "" {
		p.Transport = TransportInproc
	}
	if p.Workload.Arrival.Kind == "" {
		p.Workload.Arrival.Kind = ArrivalBatch
	}
}

func (p *Plan) defaultModel() {
	m := &p.Model
	if m.Dtype == "" {
		m.Dtype = "fp16"
		if m.Family == "tiny" {
			m.Dtype = "fp32"
		}
	}
	if m.FPS == 0 {
		m.FPS = DefaultFPS
	}
	if m.MotionBucket == 0 {
		m.MotionBucket = DefaultMotion
	}
	s := &p.Sampler
	if s.Kind == "" {
		s.Kind = DefaultSamplerKind
	}
	if s.SigmaMin == 0 {
		s.SigmaMin = DefaultSigmaMin
	}
	if s.SigmaMax == 0 {
		s.SigmaMax = DefaultSigmaMax
	}
	if s.Rho == 0 {
		s.Rho = DefaultRho
	}
}

func (p *Plan) defaultDevices() {
	cuda := 0
	for i := range p.Devices {
		d := &p.Devices[i]
		if d.Name == "" {
			prefix := "gpu"
			if d.Kind == "cpu" {
				prefix = "cpu"
			}
			d.Name = fmt.Sprintf("%s%d", prefix, i)
		}
		if d.Speed == 0 {
			d.Speed = 1
		}
		if d.Threads == 0 {
			d.Threads = 1
		}
		if d.Provider == "" {
			d.Provider = ProviderCUDA
			if d.Kind == "cpu" {
				d.Provider = ProviderCPU
			}
		}
		if d.Provider == ProviderCUDA {
			if _, written := p.pos[fmt.Sprintf("devices[%d].index", i)]; !written && d.Index == 0 {
				d.Index = cuda
			}
			cuda++
		}
	}
}

func (p *Plan) defaultLayout() {
	l := &p.Layout
	if l.Assignment == "" {
		l.Assignment = AssignEven
		if len(l.Stages) > 0 || len(l.Pipelines) > 0 {
			l.Assignment = AssignExplicit
		}
	}
	if l.Replicas == 0 {
		l.Replicas = 1
		if len(l.Pipelines) > 0 {
			l.Replicas = len(l.Pipelines)
		}
	}
	if l.EncodeOn == "" {
		l.EncodeOn = EndFirst
	}
	if l.DecodeOn == "" {
		l.DecodeOn = EndLast
	}
	if l.MicroBatch == 0 {
		l.MicroBatch = 1
	}
	if l.Handoff == "" {
		l.Handoff = HandoffBlocking
	}
	if l.Dispatch == "" {
		l.Dispatch = DispatchRoundRobin
	}
}
