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

// EnsureDefaults fills every field left out with its default. A field the
// file writes is never defaulted, whatever its value: "replicas: 0" or
// "speed: 0" stay 0, for Validate to reject, and "motion_bucket: 0" is 0.
// (A plan built in code has no file, and a zero field there is left out.)
// It does not check anything; Validate does. Defaults:
//
//   - model.dtype: fp16 for family svd, fp32 for tiny (CPU runtimes are
//     fastest in fp32); model.fps 7; model.motion_bucket 127
//   - sampler: kind euler-karras, sigma_min 0.002, sigma_max 700, rho 7
//   - devices: name gpuN (cpuN for kind cpu) by position; speed 1;
//     threads 1; provider cpu for kind cpu, else cuda; index (the CUDA
//     device of a cuda device, and of a cpu device under transport nccl,
//     see TakesIndex): the device's position among such devices on its
//     host (devices without a host count together), unless written
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
	if p.unset("links.default", p.Links.Default == "") {
		p.Links.Default = DefaultLink
	}
	if p.unset("transport", p.Transport == "") {
		p.Transport = TransportInproc
	}
	if p.unset("workload.arrival.kind", p.Workload.Arrival.Kind == "") {
		p.Workload.Arrival.Kind = ArrivalBatch
	}
}

// unset reports whether a field takes its default: it is zero and the
// file does not write it.
func (p *Plan) unset(path string, zero bool) bool {
	if !zero {
		return false
	}
	_, written := p.pos[path]
	return !written
}

func (p *Plan) defaultModel() {
	m := &p.Model
	if p.unset("model.dtype", m.Dtype == "") {
		m.Dtype = "fp16"
		if m.Family == "tiny" {
			m.Dtype = "fp32"
		}
	}
	if p.unset("model.fps", m.FPS == 0) {
		m.FPS = DefaultFPS
	}
	if p.unset("model.motion_bucket", m.MotionBucket == 0) {
		m.MotionBucket = DefaultMotion
	}
	s := &p.Sampler
	if p.unset("sampler.kind", s.Kind == "") {
		s.Kind = DefaultSamplerKind
	}
	if p.unset("sampler.sigma_min", s.SigmaMin == 0) {
		s.SigmaMin = DefaultSigmaMin
	}
	if p.unset("sampler.sigma_max", s.SigmaMax == 0) {
		s.SigmaMax = DefaultSigmaMax
	}
	if p.unset("sampler.rho", s.Rho == 0) {
		s.Rho = DefaultRho
	}
}

func (p *Plan) defaultDevices() {
	for i := range p.Devices {
		d := &p.Devices[i]
		at := fmt.Sprintf("devices[%d].", i)
		if p.unset(at+"name", d.Name == "") {
			prefix := "gpu"
			if d.Kind == "cpu" {
				prefix = "cpu"
			}
			d.Name = fmt.Sprintf("%s%d", prefix, i)
		}
		if p.unset(at+"speed", d.Speed == 0) {
			d.Speed = 1
		}
		if p.unset(at+"threads", d.Threads == 0) {
			d.Threads = 1
		}
		if p.unset(at+"provider", d.Provider == "") {
			d.Provider = ProviderCUDA
			if d.Kind == "cpu" {
				d.Provider = ProviderCPU
			}
		}
	}
	p.defaultIndexes()
}

// TakesIndex reports whether device d runs on a CUDA device, whose id is
// d.Index: a cuda device, and under transport nccl a cpu device too (its
// stage computes on the CPU, and NCCL hands its latents through the CUDA
// device d.Index).
func (p *Plan) TakesIndex(d Device) bool {
	return d.Provider == ProviderCUDA || (d.Provider == ProviderCPU && p.Transport == TransportNCCL)
}

// defaultIndexes gives every device that takes a CUDA index (TakesIndex)
// and whose index is unset its position among such devices on its host
// (devices without a host count together), so that each machine's devices
// number from 0.
func (p *Plan) defaultIndexes() {
	next := map[string]int{}
	for i := range p.Devices {
		d := &p.Devices[i]
		if !p.TakesIndex(*d) {
			continue
		}
		h := HostKey(d.Host)
		if p.unset(fmt.Sprintf("devices[%d].index", i), d.Index == 0) {
			d.Index = next[h]
		}
		next[h]++
	}
}

func (p *Plan) defaultLayout() {
	l := &p.Layout
	if p.unset("layout.assignment", l.Assignment == "") {
		l.Assignment = AssignEven
		if len(l.Stages) > 0 || len(l.Pipelines) > 0 {
			l.Assignment = AssignExplicit
		}
	}
	if p.unset("layout.replicas", l.Replicas == 0) {
		l.Replicas = 1
		if len(l.Pipelines) > 0 {
			l.Replicas = len(l.Pipelines)
		}
	}
	if p.unset("layout.encode_on", l.EncodeOn == "") {
		l.EncodeOn = EndFirst
	}
	if p.unset("layout.decode_on", l.DecodeOn == "") {
		l.DecodeOn = EndLast
	}
	if p.unset("layout.micro_batch", l.MicroBatch == 0) {
		l.MicroBatch = 1
	}
	if p.unset("layout.handoff", l.Handoff == "") {
		l.Handoff = HandoffBlocking
	}
	if p.unset("layout.dispatch", l.Dispatch == "") {
		l.Dispatch = DispatchRoundRobin
	}
}
