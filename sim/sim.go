package sim

import (
	"fmt"
	"math/rand/v2"

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
	// Check, if set, is called every CheckEvery events with the samples
	// completed so far and the samples of the run, so that a caller can
	// show progress or stop the run (the engine itself reads no clock). A
	// non-nil error stops the run: Run returns a *StoppedError wrapping it.
	Check func(done, total int) error
	// JitterSeed, if set, seeds the step jitter instead of the workload's
	// seed; arrivals still draw from the workload's seed, so the same
	// workload runs with other draws of jitter (as predicted ranges do).
	JitterSeed *uint64
	// Replay, if set, gives pieces of work the durations a measured run
	// spent on them, by micro-batch (study.Hindsight replays a run this
	// way); work it lacks costs what the profile says. It needs Trace.
	Replay Replay
}

// Replay is the time, in ns, of pieces of work by micro-batch.
type Replay map[ReplayKey]int64

// ReplayKey names a piece of work of a micro-batch: the micro-batch by its
// pipeline, its stage and its first sample; the work by the kind of span
// it makes (encode, step, decode, send, host). After tells a host span
// after the model work (the last stage's output handling) from the one
// before it (preparation, receive).
type ReplayKey struct {
	Pipeline, Stage, Sample int
	Kind                    timeline.Kind
	After                   bool
}

// CheckEvery is how many events the engine processes between calls of
// Options.Check: often enough to stop within milliseconds, rarely enough
// to cost nothing next to the events.
const CheckEvery = 4096

// StoppedError is what Run returns when Options.Check stopped it.
type StoppedError struct {
	Plan        string
	Done, Total int // samples completed, samples of the run
	Err         error
}

func (e *StoppedError) Error() string {
	return fmt.Sprintf("sim: plan %q: stopped after %d of %d samples: %v", e.Plan, e.Done, e.Total, e.Err)
}

func (e *StoppedError) Unwrap() error { return e.Err }

// Result is what a run produced.
type Result struct {
	// Timeline is the full timeline; nil unless Options.Trace.
	Timeline *timeline.Timeline
	// Memory is the per-device memory table (see Memory).
	Memory []DeviceMemory
	// Events is the number of events the engine processed.
	Events int64
	// Makespan is the time the last sample completed (the end of its
	// decode), in ns from the start; the output handling after it
	// (sample_last_ms) is not counted here; the timeline's makespan
	// (timeline.Metrics) runs to the end of the last span.
	Makespan int64
	// Samples is the number of samples simulated.
	Samples int
	// Meta is the timeline metadata: plan name, source "sim", devices in
	// plan order, profile provenance, notes on the model choices.
	Meta timeline.Meta
}

// streamJitter is the PCG stream of the workload seed that step jitter
// draws from (arrivals draw from plan.StreamArrival), so turning jitter on
// does not move the arrivals.
const streamJitter = 0x6a6974746572 // "jitter"

// Run simulates a resolved plan (plan.Ready, with a Profile) and returns
// what happened. A plan that does not fit in device memory
// returns a *MemoryError and is not simulated. Run is deterministic: the
// same plan gives the same spans, in the same order, byte for byte.
func Run(p *plan.Plan, opts Options) (*Result, error) {
	if err := p.Ready(); err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	mem, err := checkMemory(p)
	if err != nil {
		return nil, err
	}
	e, err := newEngine(p)
	if err != nil {
		return nil, err
	}
	if opts.Trace {
		// Only a kept timeline goes into a file that a comparison reads;
		// hashing is not free, and a search runs thousands of simulations.
		e.meta.PlanHash = p.Hash()
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
	e.check = opts.Check
	if opts.Replay != nil {
		if !opts.Trace {
			return nil, fmt.Errorf("sim: plan %q: a replay needs Options.Trace (it names micro-batches by their samples)", p.Name)
		}
		e.replay = opts.Replay
	}
	if opts.JitterSeed != nil {
		e.jitRng = rand.New(rand.NewPCG(*opts.JitterSeed, streamJitter))
	}
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

// newEngine precomputes every cost of a resolved plan. The plan has been
// checked (plan.Ready); what can still fail here is a cost the profile
// lacks for this layout.
func newEngine(p *plan.Plan) (*engine, error) {
	errf := func(format string, a ...any) error {
		return fmt.Errorf("sim: plan %q: "+format, append([]any{p.Name}, a...)...)
	}
	pr := p.Profile
	if pr == nil {
		return nil, errf("no cost profile (set costs)")
	}
	w := p.Workload
	if w.Samples > maxArg {
		return nil, errf("workload.samples: %d is too many (at most %d)", w.Samples, maxArg)
	}
	e := &engine{
		mb:       p.Layout.MicroBatch,
		blocking: p.Layout.Handoff == plan.HandoffBlocking,
		nSamples: w.Samples,
		rel:      w.Releases(),
		ranks:    p.Ranks(),
		jitRng:   rand.New(rand.NewPCG(w.Seed, streamJitter)),
	}
	e.devs = make([]devRT, len(p.Devices))
	e.meta = timeline.Meta{Plan: p.Name, Source: "sim", Devices: p.Devices.Names(), Profile: pr.ProvenanceString(),
		Steps: p.Sampler.Steps, PlannedSamples: w.Samples}
	for i, d := range p.Devices {
		e.devs[i].id, e.devs[i].name = int32(i), d.Name
	}
	if p.TransportMeasured() {
		e.meta.Notes = append(e.meta.Notes, "hand-offs cost as measured for transport "+string(p.Transport))
	}
	e.meta.Notes = append(e.meta.Notes, "handoff "+string(p.Layout.Handoff))
	linkIdx := map[[2]int32]int32{}
	for pi, pl := range p.Pipelines {
		first := int32(len(e.stages))
		e.pipes = append(e.pipes, pipeRT{
			first: first, nextTake: pi,
			waiting:  newRelCursor(w, pi, len(p.Pipelines)),
			inflight: newRelCursor(w, pi, len(p.Pipelines)),
		})
		for si, st := range pl.Stages {
			rt, err := e.stageCosts(p, pi, si, st)
			if err != nil {
				return nil, err
			}
			if si == 0 {
				e.devs[st.DevIdx].entries = append(e.devs[st.DevIdx].entries, int32(pi))
			}
			e.stages = append(e.stages, rt)
		}
		if err := e.hopCosts(p, first, linkIdx); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// stageCosts precomputes stage si of pipeline pi by micro-batch size, with
// the plan's cost formula (plan.WorkNS, shared with plan.StageNS and so
// with the balanced assignment).
func (e *engine) stageCosts(p *plan.Plan, pi, si int, st plan.Stage) (stageRT, error) {
	dev := p.Devices[st.DevIdx]
	c, ok := p.Profile.Devices[dev.Kind]
	if !ok {
		return stageRT{}, fmt.Errorf("sim: plan %q: pipeline %d stage %d: no costs for device kind %q (device %s) in the profile", p.Name, pi, si, dev.Kind, dev.Name)
	}
	e.devs[st.DevIdx].jitter = c.Jitter
	rt := stageRT{
		pipe: int32(pi), idx: int32(si), dev: int32(st.DevIdx),
		first: int32(st.First), last: int32(st.Last), steps: int64(st.Steps()),
		encode: st.Encode && (c.EncodeMS != 0 || len(c.EncodeFirstMS) > 0), decode: st.Decode && (c.DecodeMS != 0 || len(c.DecodeFirstMS) > 0), next: -1, nextDev: -1, prevDev: -1, link: -1,
		cost: make([]cost, e.mb+1),
	}
	for b := 1; b <= e.mb; b++ {
		w, ok := p.WorkNS(st.DevIdx, b)
		if !ok {
			return stageRT{}, fmt.Errorf("sim: plan %q: pipeline %d stage %d: no unet_ms for device kind %q", p.Name, pi, si, dev.Kind)
		}
		cb := &rt.cost[b]
		cb.step, cb.warm = w.Step, w.FirstStep
		cb.run, cb.runWarm = rt.steps*w.Step, w.FirstStep+(rt.steps-1)*w.Step
		if rt.encode {
			cb.enc, cb.firstEnc = w.Encode, w.FirstEncodes
		}
		if rt.decode {
			cb.dec, cb.firstDec = w.Decode, w.FirstDecodes
		}
		if st.Encode {
			cb.pre = w.First
		}
		if st.Decode {
			cb.post = w.Last
		}
	}
	return rt, nil
}

// hopCosts links the stages of the pipeline that starts at flattened
// index first, pricing each hand-off with the plan's rule (plan.HopCost).
// One link per ordered pair of devices carries the first-use set-up.
func (e *engine) hopCosts(p *plan.Plan, first int32, linkIdx map[[2]int32]int32) error {
	for k := first; k < int32(len(e.stages))-1; k++ {
		a, b := &e.stages[k], &e.stages[k+1]
		a.next, a.nextDev = k+1, b.dev
		if a.dev == b.dev {
			continue // stays on the device: no transfer
		}
		h, ok := p.HopCost(int(a.dev), int(b.dev))
		if !ok {
			return fmt.Errorf("sim: plan %q: pipeline %d stage %d: no costs for link kind %q (%s to %s) in the profile", p.Name, a.pipe, a.idx, h.Kind, p.Devices[a.dev].Name, p.Devices[b.dev].Name)
		}
		b.prevDev = a.dev
		recv := h.ReceiveNS()
		for m := 1; m <= e.mb; m++ {
			a.cost[m].xfer, _ = p.HopNS(int(a.dev), int(b.dev), m)
			b.cost[m].pre += recv
		}
		key := [2]int32{a.dev, b.dev}
		li, ok := linkIdx[key]
		if !ok {
			li = int32(len(e.links))
			linkIdx[key] = li
			e.links = append(e.links, linkRT{setup: h.SetupNS(e.ranks)})
			e.devs[b.dev].senders = append(e.devs[b.dev].senders, a.dev)
		}
		a.link = li
	}
	return nil
}
