package sim

import (
	"fmt"

	"github.com/vdpp/vdpp/plan"
	"github.com/vdpp/vdpp/timeline"
)

// spec describes a test plan: replicas pipelines of len(stepMS) stages each,
// pipeline r's stage k on device r*S+k (or on device k when shared), each
// device of its own kind so that its costs can differ.
type spec struct {
	stepMS  []float64 // per stage: one UNet step
	steps   []int     // per stage: number of steps
	firstMS []float64 // per stage: first UNet call (0: same as a step)
	speed   []float64 // per stage: device speed (0: 1)
	hostMS  float64
	encMS   float64 // on stage 0
	decMS   float64 // on the last stage
	// a device's first encode and decode (0: none)
	encFirstMS, decFirstMS []float64
	linkUS                 float64 // transfer latency (pure delay when bwGBps is 0)
	bwGBps                 float64
	setupMS                float64
	// per-sample host work on the first and last stage, receive time per
	// hand-off, link set-up per rank beyond two
	firstHostMS, lastHostMS, recvUS, setupRankMS float64
	jitter                                       float64
	replicas                                     int
	shared                                       bool // all pipelines on the same S devices, rotated
	samples                                      int
	mb                                           int
	handoff                                      plan.Handoff
	arrival                                      plan.Arrival
	seed                                         uint64
	memGB                                        float64
}

func (s spec) plan() *plan.Plan {
	S := len(s.stepMS)
	R := max(s.replicas, 1)
	p := &plan.Plan{
		Name:     "test",
		Model:    plan.Model{Family: "tiny", Frames: 2, Latent: plan.Latent{Channels: 4, Height: 8, Width: 8}, Dtype: "fp16"},
		Layout:   plan.Layout{Replicas: R, MicroBatch: s.mb, Handoff: s.handoff},
		Links:    plan.Links{Default: "wire"},
		Workload: plan.Workload{Samples: s.samples, Arrival: s.arrival, Seed: s.seed},
		Profile: &plan.Profile{
			Provenance: plan.Provenance{Source: "estimate", Date: "2025-01-01", Reference: "test"},
			Devices:    map[string]plan.DeviceCosts{},
			Links:      map[string]plan.LinkCosts{"wire": {LatencyUS: s.linkUS, BandwidthGBps: s.bwGBps, SetupMS: s.setupMS, ReceiveUS: s.recvUS, SetupMSPerRank: s.setupRankMS}},
		},
	}
	total := 0
	for _, n := range s.steps {
		total += n
	}
	p.Sampler.Steps = total
	nd := S * R
	if s.shared {
		nd = S
	}
	for d := 0; d < nd; d++ {
		k := d % S
		kind := fmt.Sprintf("k%d", k)
		dev := plan.Device{Name: fmt.Sprintf("gpu%d", d), Kind: kind, MemoryGB: s.memGB}
		if s.speed != nil {
			dev.Speed = s.speed[k]
		}
		p.Devices = append(p.Devices, dev)
		c := plan.DeviceCosts{
			UNetMS:        map[int]float64{1: s.stepMS[k]},
			EncodeMS:      s.encMS,
			DecodeMS:      s.decMS,
			EncodeFirstMS: s.encFirstMS,
			DecodeFirstMS: s.decFirstMS,
			HostMSPerStep: s.hostMS,
			SampleFirstMS: s.firstHostMS,
			SampleLastMS:  s.lastHostMS,
			Jitter:        s.jitter,
			Memory:        plan.MemoryCosts{UNet: 3, Encoder: 1.5, Decoder: 0.5, Runtime: 1, ActivationsPerSample: 2},
		}
		if s.firstMS != nil && s.firstMS[k] > 0 {
			c.FirstCallMS = map[int]float64{1: s.firstMS[k]}
		}
		p.Profile.Devices[kind] = c
	}
	var pipes []plan.Pipeline
	for r := 0; r < R; r++ {
		pl := plan.Pipeline{Index: r}
		first := 0
		for k := 0; k < S; k++ {
			d := r*S + k
			if s.shared {
				d = (r + k) % S
			}
			pl.Stages = append(pl.Stages, plan.Stage{
				Pipeline: r, Index: k, Device: p.Devices[d].Name, DevIdx: d,
				First: plan.StepIndex(first), Last: plan.StepIndex(first + s.steps[k] - 1),
			})
			first += s.steps[k]
		}
		pipes = append(pipes, pl)
	}
	// Device kinds must follow the stage a device holds when shared and rotated.
	if s.shared {
		for d := range p.Devices {
			p.Devices[d].Kind = "k0"
		}
		c := p.Profile.Devices["k0"]
		p.Profile.Devices = map[string]plan.DeviceCosts{"k0": c}
	}
	p.EnsureDefaults()
	if err := p.UsePipelines(pipes); err != nil {
		panic(fmt.Sprintf("spec.plan: %v", err))
	}
	return p
}

func ms(v float64) int64 { return int64(v * 1e6) }

func run(tb interface {
	Helper()
	Fatalf(string, ...any)
}, p *plan.Plan) *Result {
	tb.Helper()
	r, err := Run(p, Options{Trace: true})
	if err != nil {
		tb.Fatalf("run: %v", err)
	}
	return r
}

// doneTimes returns the completion time of every sample, by id.
func doneTimes(tl *timeline.Timeline) map[int]int64 {
	m := map[int]int64{}
	for _, s := range tl.Samples {
		m[s.ID] = s.Done
	}
	return m
}

// busyNS is the busy time (encode, step, decode) of each device.
func busyNS(tl *timeline.Timeline) map[string]int64 {
	m := map[string]int64{}
	for _, s := range tl.Spans {
		if timeline.Busy(s.Kind) {
			m[s.Device] += s.End - s.Start
		}
	}
	return m
}
