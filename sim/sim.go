package sim

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"

	"github.com/vdpp/vdpp/plan"
	"github.com/vdpp/vdpp/timeline"
)

// Options controls what a run keeps.
type Options struct {
	// Trace keeps the full timeline in Result.Timeline. Without it, spans and
	// samples only go to Recorder, and memory does not grow with the sample
	// count.
	Trace bool
	// Recorder, if set, receives every span and sample record as the run
	// produces them (for example a streaming metrics accumulator).
	Recorder timeline.Recorder
}

// Result is what a run produced.
type Result struct {
	// Timeline is the full timeline; nil unless Options.Trace.
	Timeline *timeline.Timeline
	// Memory is the per-device memory table (see Memory).
	Memory []DeviceMemory
	// Events is the number of events the engine processed.
	Events int64
	// Makespan is the time the last sample completed, in ns from the start.
	Makespan int64
	// Samples is the number of samples simulated.
	Samples int
	// Meta is the timeline metadata: plan name, source "sim", devices in
	// plan order, profile provenance, notes on the model choices.
	Meta timeline.Meta
}

// Handoff modes (plan layout.handoff).
const (
	HandoffBlocking = "blocking"
	HandoffBuffered = "buffered"
)

// Arrival kinds (plan workload.arrival.kind).
const (
	ArrivalBatch    = "batch"
	ArrivalPoisson  = "poisson"
	ArrivalInterval = "interval"
)

// PCG stream constants: arrivals and jitter draw from separate streams of
// the same seed, so turning jitter on does not move the arrivals.
const (
	streamArrival = 0x61727269766c // "arrivl"
	streamJitter  = 0x6a6974746572 // "jitter"
)

// Run simulates a resolved plan (Plan.Pipelines and Plan.Profile filled)
// and returns what happened. A plan that does not fit in device memory
// returns a *MemoryError and is not simulated. Run is deterministic: the
// same plan gives the same spans, in the same order, byte for byte.
func Run(p *plan.Plan, opts Options) (*Result, error) {
	if p == nil {
		return nil, fmt.Errorf("sim: run: nil plan")
	}
	mem, err := checkMemory(p)
	if err != nil {
		return nil, err
	}
	e, err := newEngine(p)
	if err != nil {
		return nil, err
	}
	res := &Result{Memory: mem, Samples: e.nSamples, Meta: e.meta}
	rec := opts.Recorder
	if opts.Trace {
		res.Timeline = &timeline.Timeline{Meta: e.meta, Spans: []timeline.Span{}, Samples: []timeline.Sample{}}
		if rec != nil {
			rec = tee{res.Timeline, rec}
		} else {
			rec = res.Timeline
		}
	}
	e.rec = rec
	if err := e.run(); err != nil {
		return nil, err
	}
	res.Events = e.events
	res.Makespan = e.makespan
	return res, nil
}

type tee [2]timeline.Recorder

func (t tee) AddSpan(s timeline.Span)     { t[0].AddSpan(s); t[1].AddSpan(s) }
func (t tee) AddSample(s timeline.Sample) { t[0].AddSample(s); t[1].AddSample(s) }

// ProvenanceString renders a profile's provenance in one line, as the
// timeline's Meta.Profile records it.
func ProvenanceString(pr *plan.Profile) string {
	if pr == nil {
		return ""
	}
	v := pr.Provenance
	var parts []string
	if v.Source != "" {
		parts = append(parts, v.Source)
	}
	if v.Date != "" {
		parts = append(parts, v.Date)
	}
	if v.Machine != "" {
		parts = append(parts, "on "+v.Machine)
	}
	if v.Runtime != "" {
		parts = append(parts, "("+v.Runtime+")")
	}
	if v.Reference != "" {
		parts = append(parts, "from "+v.Reference)
	}
	if pr.File != "" {
		parts = append(parts, "["+pr.File+"]")
	}
	return strings.Join(parts, " ")
}

// newEngine checks that the plan can run and precomputes every cost.
func newEngine(p *plan.Plan) (*engine, error) {
	errf := func(format string, a ...any) error {
		return fmt.Errorf("sim: plan %q: "+format, append([]any{p.Name}, a...)...)
	}
	pr := p.Profile
	if pr == nil {
		return nil, errf("no cost profile (set costs)")
	}
	if len(p.Pipelines) == 0 {
		return nil, errf("no pipelines (the plan's layout is not resolved)")
	}
	e := &engine{}
	// Layout.
	e.mb = p.Layout.MicroBatch
	switch {
	case e.mb == 0:
		e.mb = 1
	case e.mb < 0:
		return nil, errf("layout.micro_batch: %d is negative", e.mb)
	}
	switch p.Layout.Handoff {
	case "", HandoffBlocking:
		e.blocking = true
	case HandoffBuffered:
	default:
		return nil, errf("layout.handoff: unknown mode %q (want blocking or buffered)", p.Layout.Handoff)
	}
	// Workload.
	w := p.Workload
	if w.Samples < 1 {
		return nil, errf("workload.samples: %d, want at least 1", w.Samples)
	}
	if w.Samples > maxArg {
		return nil, errf("workload.samples: %d is too many (at most %d)", w.Samples, maxArg)
	}
	e.nSamples = w.Samples
	switch w.Arrival.Kind {
	case "", ArrivalBatch:
		e.arrival = arrBatch
	case ArrivalPoisson:
		if !(w.Arrival.Rate > 0) || math.IsInf(w.Arrival.Rate, 0) {
			return nil, errf("workload.arrival.rate: %v samples/s, want a positive rate for poisson arrivals", w.Arrival.Rate)
		}
		e.arrival = arrPoisson
		e.rate = w.Arrival.Rate
		e.arrRng = rand.New(rand.NewPCG(w.Seed, streamArrival))
	case ArrivalInterval:
		if !(w.Arrival.IntervalMS >= 0) || math.IsInf(w.Arrival.IntervalMS, 0) {
			return nil, errf("workload.arrival.interval_ms: %v, want a finite value >= 0", w.Arrival.IntervalMS)
		}
		e.arrival = arrInterval
		e.intervalMS = w.Arrival.IntervalMS
	default:
		return nil, errf("workload.arrival.kind: unknown kind %q (want batch, poisson or interval)", w.Arrival.Kind)
	}
	e.jitRng = rand.New(rand.NewPCG(w.Seed, streamJitter))

	// Devices.
	e.devs = make([]devRT, len(p.Devices))
	e.meta = timeline.Meta{Plan: p.Name, Source: "sim", Devices: make([]string, len(p.Devices)), Profile: ProvenanceString(pr)}
	for i, d := range p.Devices {
		e.devs[i].name = d.Name
		e.devs[i].job = -1
		e.meta.Devices[i] = d.Name
	}
	// Transport costs that replace link costs (exec-calibrated profiles).
	transport := p.Transport
	if transport == "" {
		transport = "inproc"
	}
	var tcost *plan.LinkCosts
	if transport == "inproc" || transport == "tcp" {
		if c, ok := pr.Transports[transport]; ok {
			tcost = &c
			e.meta.Notes = append(e.meta.Notes, "hand-offs cost as measured for transport "+transport)
		}
	}
	mode := HandoffBuffered
	if e.blocking {
		mode = HandoffBlocking
	}
	e.meta.Notes = append(e.meta.Notes, "handoff "+mode)
	latent := p.Model.LatentBytes()
	if latent < 0 {
		return nil, errf("model: negative latent size")
	}
	linkIdx := map[[2]int32]int32{}
	for pi, pl := range p.Pipelines {
		if len(pl.Stages) == 0 {
			return nil, errf("pipeline %d: no stages", pi)
		}
		first := int32(len(e.stages))
		e.pipes = append(e.pipes, pipeRT{first: first, nextTake: pi})
		next := plan.StepIndex(0)
		for si, st := range pl.Stages {
			where := fmt.Sprintf("pipeline %d stage %d", pi, si)
			if st.DevIdx < 0 || st.DevIdx >= len(p.Devices) {
				return nil, errf("%s: no device %d (device %q) in devices", where, st.DevIdx, st.Device)
			}
			dev := p.Devices[st.DevIdx]
			if st.First != next || st.Last < st.First {
				return nil, errf("%s: steps %d..%d, want a range starting at step %d (stages must cover the steps in order)", where, st.First, st.Last, next)
			}
			next = st.Last + 1
			if st.Decode && si != len(pl.Stages)-1 {
				return nil, errf("%s: decode on a stage that is not the pipeline's last is not supported (layout.decode_on: last)", where)
			}
			// The UNet needs the conditioning from step 0, so the encoder runs
			// before the first stage's steps; the executor requires the same.
			if st.Encode && si != 0 {
				return nil, errf("%s: encode on a stage that is not the pipeline's first is not supported (layout.encode_on: first)", where)
			}
			c, ok := pr.Devices[dev.Kind]
			if !ok {
				return nil, errf("%s: no costs for device kind %q (device %s) in the profile", where, dev.Kind, dev.Name)
			}
			speed := dev.Speed
			if speed == 0 {
				speed = 1
			}
			if !(speed > 0) || math.IsInf(speed, 0) {
				return nil, errf("device %s: speed %v, want a positive factor", dev.Name, dev.Speed)
			}
			if c.Jitter < 0 || math.IsNaN(c.Jitter) {
				return nil, errf("device kind %q: jitter %v is negative", dev.Kind, c.Jitter)
			}
			e.devs[st.DevIdx].jitter = c.Jitter
			rt := stageRT{
				pipe: int32(pi), idx: int32(si), dev: int32(st.DevIdx),
				first: int32(st.First), last: int32(st.Last), steps: int64(st.Steps()),
				encode: st.Encode && c.EncodeMS != 0, decode: st.Decode && c.DecodeMS != 0, next: -1, link: -1,
				enc: make([]int64, e.mb+1), dec: make([]int64, e.mb+1),
				step: make([]int64, e.mb+1), warm: make([]int64, e.mb+1), xfer: make([]int64, e.mb+1),
			}
			for b := 1; b <= e.mb; b++ {
				w, ok := p.WorkNS(st.DevIdx, b)
				if !ok {
					return nil, errf("%s: no unet_ms for device kind %q", where, dev.Kind)
				}
				// The cost formula is the plan's (plan.WorkNS), shared with
				// plan.StageNS and so with the balanced assignment.
				rt.step[b], rt.warm[b] = w.Step, w.FirstStep
				if rt.encode {
					rt.enc[b] = w.Encode
				}
				if rt.decode {
					rt.dec[b] = w.Decode
				}
				if rt.step[b] < 0 || rt.warm[b] < 0 || rt.enc[b] < 0 || rt.dec[b] < 0 {
					return nil, errf("%s: device kind %q has a negative cost", where, dev.Kind)
				}
			}
			if si == 0 {
				e.devs[st.DevIdx].entries = append(e.devs[st.DevIdx].entries, int32(pi))
			}
			e.stages = append(e.stages, rt)
		}
		if p.Sampler.Steps > 0 && int(next) != p.Sampler.Steps {
			return nil, errf("pipeline %d: stages end at step %d, want %d (sampler.steps)", pi, next-1, p.Sampler.Steps-1)
		}
		// Hand-offs between consecutive stages.
		for k := first; k < int32(len(e.stages))-1; k++ {
			a, b := &e.stages[k], &e.stages[k+1]
			a.next = k + 1
			if a.dev == b.dev {
				continue // stays on the device: no transfer
			}
			from, to := p.Devices[a.dev].Name, p.Devices[b.dev].Name
			kind := p.Links.LinkKind(from, to)
			if kind == "" {
				kind = "default"
			}
			lc := tcost
			if lc == nil {
				c, ok := pr.Links[kind]
				if !ok {
					return nil, errf("pipeline %d stage %d: no costs for link kind %q (%s to %s) in the profile", a.pipe, a.idx, kind, from, to)
				}
				lc = &c
			}
			if lc.LatencyUS < 0 || lc.BandwidthGBps < 0 || lc.SetupMS < 0 {
				return nil, errf("link kind %q: negative cost", kind)
			}
			for m := 1; m <= e.mb; m++ {
				a.xfer[m] = lc.TransferNS(int64(m) * latent)
			}
			key := [2]int32{a.dev, b.dev}
			li, ok := linkIdx[key]
			if !ok {
				li = int32(len(e.links))
				linkIdx[key] = li
				e.links = append(e.links, linkRT{setup: lc.SetupNS()})
				e.devs[b.dev].senders = append(e.devs[b.dev].senders, a.dev)
			}
			a.link = li
		}
	}
	return e, nil
}
