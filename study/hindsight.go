package study

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/vdpp/vdpp/plan"
	"github.com/vdpp/vdpp/sim"
	"github.com/vdpp/vdpp/timeline"
)

// Hindsight returns a copy of p whose cost profile is what a measured run
// of p actually spent, read off its spans: per device, the mean time per
// step of its step spans (by micro-batch size, host time included), the
// extra time of its warm-up span, the mean encode and decode time per
// sample, the mean host work per sample on the first and on the last stage
// and per receive (timeline.HostWork), and the mean hand-off time. Simulating that plan is not a
// prediction. It separates the two sources of a prediction's error: what
// remains against the measurement is the pipeline model's own error
// (scheduling, hand-offs, waits, fill and drain); the rest came from the
// cost profile (costs that changed between profiling and the run, or were
// never right).
//
// Each device gets a device kind of its own ("measured:NAME", speed 1), so
// devices of one kind that ran at different speeds keep their own costs.
// The layout and workload stay as in p; memory costs are copied from p's
// profile when it has one. Jitter is left at 0: the run's variation over
// time is not modelled (drawn independently per step it overstated waits
// and scattered the first sample's latency); link set-up costs are averaged
// into the hand-off time.
//
// date is the day the profile is stamped with (its provenance); the caller
// passes it (today, usually), so that the same inputs give the same plan.
func Hindsight(p *plan.Plan, measured *timeline.Timeline, date time.Time) (*plan.Plan, error) {
	if p == nil || measured == nil {
		return nil, fmt.Errorf("study: hindsight: nil plan or timeline")
	}
	if len(p.Pipelines) == 0 {
		return nil, fmt.Errorf("study: hindsight: plan %s is not resolved", p.Name)
	}
	spent, err := readSpent(p, measured)
	if err != nil {
		return nil, err
	}
	q := p.Clone()
	prof := &plan.Profile{
		Provenance: plan.Provenance{
			Source:    "measured",
			Date:      date.UTC().Format(time.DateOnly),
			Machine:   measured.Meta.Machine,
			Reference: "hindsight: the costs the measured run itself spent, read off its spans",
		},
		Model:      plan.ProfileModel{Family: p.Model.Family, Frames: p.Model.Frames, Latent: p.Model.Latent, Dtype: p.Model.Dtype, CFG: p.Model.CFG != nil},
		Devices:    map[string]plan.DeviceCosts{},
		Links:      map[string]plan.LinkCosts{},
		Transports: map[string]plan.LinkCosts{},
		File:       "hindsight",
	}
	host := map[string]timeline.HostWork{}
	var recvNS int64
	var recvN int
	for _, h := range measured.HostWork() {
		host[h.Device] = h
		recvNS += h.ReceiveNS
		recvN += h.Receives
	}
	for i, d := range p.Devices {
		c, ok := spent.devices[d.Name].costs()
		if !ok {
			return nil, fmt.Errorf("study: hindsight: device %s ran no step in the measured timeline", d.Name)
		}
		if h := host[d.Name]; h.FirstSamples > 0 {
			c.SampleFirstMS = float64(h.FirstNS) / float64(h.FirstSamples) / 1e6
		}
		if h := host[d.Name]; h.LastSamples > 0 {
			c.SampleLastMS = float64(h.LastNS) / float64(h.LastSamples) / 1e6
		}
		if p.Profile != nil {
			c.Memory = p.Profile.Devices[d.Kind].Memory
		}
		kind := "measured:" + d.Name
		prof.Devices[kind] = c
		q.Devices[i].Kind, q.Devices[i].Speed = kind, 1
	}
	// One hand-off cost for every link: the mean measured transfer.
	hand := plan.LinkCosts{BandwidthGBps: math.Inf(1)}
	if spent.nSend > 0 {
		hand.LatencyUS = spent.sendNS / float64(spent.nSend) / 1e3
	}
	if recvN > 0 {
		hand.ReceiveUS = float64(recvNS) / float64(recvN) / 1e3
	}
	for _, pl := range q.Pipelines {
		for _, h := range q.Hops(pl) {
			prof.Links[h.Kind] = hand
		}
	}
	prof.Transports[string(q.Transport)] = hand
	q.Profile = prof
	q.Costs = "hindsight"
	return q, nil
}

// spent is what a measured run spent, summed from its spans.
type spent struct {
	devices map[string]*deviceSpent
	sendNS  float64 // Σ time of send spans
	nSend   int
}

// deviceSpent is what one device spent.
type deviceSpent struct {
	stepNS map[int]float64 // batch → Σ per-step time over steady spans
	stepN  map[int]int
	warm   []timeline.Span
	// encode and decode spans, to be read in the order they ran
	enc, dec []timeline.Span
}

// readSpent sums the spans of measured per device of p.
func readSpent(p *plan.Plan, measured *timeline.Timeline) (*spent, error) {
	sp := &spent{devices: map[string]*deviceSpent{}}
	for _, d := range p.Devices {
		sp.devices[d.Name] = &deviceSpent{stepNS: map[int]float64{}, stepN: map[int]int{}}
	}
	for _, s := range measured.Spans {
		a := sp.devices[s.Device]
		if a == nil {
			return nil, fmt.Errorf("study: hindsight: the measured timeline has device %q, which plan %s does not", s.Device, p.Name)
		}
		b := max(len(s.Samples), 1)
		dur := float64(s.End - s.Start)
		switch s.Kind {
		case timeline.KindStep:
			if s.Warmup {
				a.warm = append(a.warm, s)
				continue
			}
			a.stepNS[b] += dur / float64(s.LastStep-s.FirstStep+1)
			a.stepN[b]++
		case timeline.KindEncode:
			a.enc = append(a.enc, s)
		case timeline.KindDecode:
			a.dec = append(a.dec, s)
		case timeline.KindSend:
			sp.sendNS += dur
			sp.nSend++
		}
	}
	return sp, nil
}

// costs are the device's mean costs; ok is false when it ran no step.
func (a *deviceSpent) costs() (c plan.DeviceCosts, ok bool) {
	c = plan.DeviceCosts{UNetMS: map[int]float64{}, FirstCallMS: map[int]float64{}}
	for b, sum := range a.stepNS {
		c.UNetMS[b] = sum / float64(a.stepN[b]) / 1e6
	}
	for _, w := range a.warm {
		b := max(len(w.Samples), 1)
		steps := float64(w.LastStep - w.FirstStep + 1)
		steady, ok := c.UNetMS[b]
		if !ok { // no steady span of this size: the warm span is all we have
			steady = float64(w.End-w.Start) / steps / 1e6
			c.UNetMS[b] = steady
		}
		// steady includes the host time (the hindsight profile has none).
		c.FirstCallMS[b] = plan.FirstCallMS(float64(w.End-w.Start)/1e6, int(steps), steady, 0)
	}
	if len(c.UNetMS) == 0 {
		return c, false // a device that ran no step
	}
	if len(c.FirstCallMS) == 0 {
		c.FirstCallMS = nil
	}
	c.EncodeFirstMS, c.EncodeMS = callsOf(a.enc)
	c.DecodeFirstMS, c.DecodeMS = callsOf(a.dec)
	return c, true
}

// callsOf reads a device's encode (or decode) spans as its calls, in the
// order they ran: its warm-up calls and its steady time per sample
// (plan.SplitWarmCalls), in ms.
func callsOf(spans []timeline.Span) (warm []float64, steadyMS float64) {
	slices.SortFunc(spans, func(x, y timeline.Span) int { return cmp.Compare(x.Start, y.Start) })
	durs, batch := make([]float64, len(spans)), make([]int, len(spans))
	for i, s := range spans {
		durs[i], batch[i] = float64(s.End-s.Start)/1e6, len(s.Samples)
	}
	return plan.SplitWarmCalls(durs, batch)
}

// ReplayOf is what a measured run spent on each piece of work of each
// micro-batch, read off its spans, for replaying the run in the simulator
// (sim.Options.Replay): every encode, step, decode, host and send span,
// by the micro-batch's pipeline, stage and first sample. Replayed, the run
// keeps its own variation from sample to sample (a slow stretch, a
// contended call), which mean costs smooth away: what then differs from
// the measurement is the pipeline model's scheduling alone.
//
// With blocking hand-offs (blocking), the simulator starts a transfer as
// soon as both ends are free and lets both go when it ends; a real
// hand-off starts a little later (the waiting side has to wake up), and
// its two ends may learn of its end at different times (over tcp the
// sender returns after the receiver has the data). A send is therefore
// replayed from the later of the sender's end of compute and the
// receiver's end of its previous work, to the end of the receive.
func ReplayOf(measured *timeline.Timeline, blocking bool) sim.Replay {
	after := measured.HostAfter()
	r := sim.Replay{}
	type stageSample struct {
		pipe, stage, id int
	}
	computeEnd := map[stageSample]int64{} // end of a micro-batch's step span at a stage
	recvStart := map[stageSample]int64{}  // start of its receive at a stage
	recvEnd := map[stageSample]int64{}    // end of it
	var sends []int
	ends := map[string][]int64{} // per device, the ends of its own spans (not receives)
	for i, s := range measured.Spans {
		if s.Kind != timeline.KindRecv {
			ends[s.Device] = append(ends[s.Device], s.End)
		}
		if len(s.Samples) == 0 {
			continue
		}
		k := stageSample{s.Pipeline, s.Stage, s.Samples[0]}
		switch s.Kind {
		case timeline.KindStep:
			computeEnd[k] = max(computeEnd[k], s.End)
		case timeline.KindRecv:
			recvStart[k], recvEnd[k] = s.Start, s.End
			continue
		case timeline.KindSend:
			sends = append(sends, i)
			continue
		case timeline.KindEncode, timeline.KindDecode, timeline.KindHost:
		default:
			continue
		}
		rk := sim.ReplayKey{Pipeline: s.Pipeline, Stage: s.Stage, Sample: s.Samples[0], Kind: s.Kind, After: after[i]}
		r[rk] += s.End - s.Start // a stage's steps in one span; an interrupted stage's parts add up
	}
	for _, e := range ends {
		slices.Sort(e)
	}
	for _, i := range sends {
		s := measured.Spans[i]
		k := stageSample{s.Pipeline, s.Stage, s.Samples[0]}
		dur := s.End - s.Start
		next := stageSample{s.Pipeline, s.Stage + 1, s.Samples[0]}
		if rs, ok := recvStart[next]; blocking && ok {
			// the receiver's end of work before this receive
			e := ends[s.Peer]
			free := int64(0)
			if j, _ := slices.BinarySearch(e, rs+1); j > 0 {
				free = e[j-1]
			}
			start := min(s.Start, max(computeEnd[k], free))
			if end := recvEnd[next]; end > start {
				dur = end - start
			}
		}
		r[sim.ReplayKey{Pipeline: s.Pipeline, Stage: s.Stage, Sample: s.Samples[0], Kind: timeline.KindSend}] += dur
	}
	return r
}
