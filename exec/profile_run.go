package exec

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"os"
	osexec "os/exec"
	"slices"

	"github.com/vdpp/vdpp/models"
	"github.com/vdpp/vdpp/plan"
	"github.com/vdpp/vdpp/timeline"
)

// runTargetNS is how long the profile's short run of the plan aims to
// take (from the isolated costs), within the bounds of runSamples.
const runTargetNS = 3e9

// maxRunSamples bounds the samples of the profile's short run.
const maxRunSamples = 400

// runSamples is how many samples the profile's short run of the plan takes:
// enough to fill every pipeline and see a few in steady state (S+3 each),
// and more where they are fast, so that the run lasts about runTargetNS
// by prof's costs, at most maxRunSamples.
func runSamples(p *plan.Plan, prof *plan.Profile) int {
	s, slowest := 1, int64(0)
	q := *p
	q.Profile = prof
	for _, pl := range p.Pipelines {
		s = max(s, len(pl.Stages))
		for i := range pl.Stages {
			if prof != nil {
				if ns, ok := q.PipelineStageNS(pl, i, p.Layout.MicroBatch); ok {
					slowest = max(slowest, ns)
				}
			}
		}
	}
	per := len(p.Pipelines) * p.Layout.MicroBatch
	n := (s + 3) * per
	if slowest > 0 {
		n = max(n, int(math.Ceil(runTargetNS/float64(slowest)))*per)
	}
	return min(n, max(maxRunSamples, (s+3)*per))
}

// openModel lends an open session to a run without letting the run close
// it (the profiler closes it).
type openModel struct{ models.Model }

// measureRun runs the plan itself, briefly (its workload with runSamples
// samples), as it runs: for a transport with one process per device (tcp)
// in worker processes when ProfileOptions.WorkerCommand is set and the
// samples are released at once (they open their own sessions; the
// profiler's are closed first), else in this process with the sessions
// already open, over the transport's link, every sample released at once. It
// writes the outputs to a temporary folder and reads off the run's spans
// what single calls do not show (readRun).
func (pr *profiler) measureRun(ctx context.Context, prof *plan.Profile) error {
	q := pr.p.Clone()
	q.Workload.Samples = runSamples(q, prof)
	batch := q.Workload.Arrival.Kind == plan.ArrivalBatch
	dir, err := os.MkdirTemp("", "vdpp-profile-run-")
	if err != nil {
		return fmt.Errorf("exec: profile: run: %w", err)
	}
	defer os.RemoveAll(dir)
	opts := Options{
		OutDir: dir, Images: pr.images, OnInterrupt: InterruptAbandon,
		Conditioning: func(i int) string { return fmt.Sprintf("image %d", i) },
	}
	var res *Result
	how := "in this process"
	if WorkerProcesses(q.Transport) && pr.opts.WorkerCommand != nil && batch {
		how = "in worker processes"
		pr.close() // the workers open their own sessions: free the device memory first
		n := q.Workload.Samples
		opts.WorkerCommand = func(device, rendezvous string) (*osexec.Cmd, error) {
			return pr.opts.WorkerCommand(device, rendezvous, n)
		}
		res, err = Run(ctx, q, func(plan.Device, plan.Stage) (models.Model, error) { return nil, nil }, opts)
	} else {
		switch {
		case WorkerProcesses(q.Transport) && !batch:
			how = "in this process, over the transport's link, with every sample released at once (the workers of a run take the plan's arrivals, which could make this run last as long as the workload)"
		case WorkerProcesses(q.Transport):
			how = "in this process (no worker command given), over the transport's link"
		}
		// Arrivals spread over time would stretch the run: the profile
		// wants the cost of the work, not the workload's pace.
		q.Workload.Arrival = plan.Arrival{Kind: plan.ArrivalBatch}
		lent := map[string]models.Model{}
		for _, pb := range pr.probes {
			if _, ok := lent[pb.dev.Name]; !ok {
				lent[pb.dev.Name] = openModel{pb.model}
			}
		}
		f := func(d plan.Device, _ plan.Stage) (models.Model, error) { return lent[d.Name], nil }
		var l link
		if l, err = newLink(q, ""); err == nil {
			res, err = runLocal(ctx, q, f, l, opts)
		}
	}
	if err == nil && res.Interrupted {
		err = context.Cause(ctx)
	}
	if err != nil {
		return fmt.Errorf("exec: profile: run of %d samples %s: %w", q.Workload.Samples, how, err)
	}
	pr.readRun(res.Timeline, prof, how, opts.WorkerCommand != nil)
	return nil
}

// readRun puts what the short run's spans show into prof, with notes:
//
//   - sample_first_ms, sample_last_ms: host work per sample on the first
//     and last stage (timeline.HostWork), pooled per device kind;
//   - the factor f by which the run's UNet calls (mean step span per step
//     less host_ms_per_step, the device's first span left out) ran against
//     the isolated unet_ms at the same micro-batch size: unet_ms and
//     first_call_ms are scaled by f, so that a prediction sees the
//     contention of a real run;
//   - encode_ms, decode_ms: the run's steady time per sample after each
//     device's warm-up (plan.SplitWarmCalls), the mean over the devices;
//   - when the run's sessions were fresh (worker processes, as a real run
//     of the plan has them), first_call_ms from the devices' first step
//     spans, and encode_first_ms and decode_first_ms from their warm-up
//     calls (call by call, the median over the devices);
//   - the plan's transport: latency_us, the mean send span (the first on
//     each link left out) less the bytes over the measured bandwidth;
//     receive_us, the receive host work per hand-off; setup_ms, the first
//     send over each link less the median, when positive. setup_ms_per_rank
//     needs runs with different rank counts and is left out.
func (pr *profiler) readRun(tl *timeline.Timeline, prof *plan.Profile, how string, fresh bool) {
	kindOf := map[string]string{}
	for _, d := range pr.p.Devices {
		kindOf[d.Name] = d.Kind
	}
	type sum struct {
		firstNS, lastNS  int64
		first, last      int
		step             []float64 // per step
		enc, dec         []float64 // each device's steady time per sample
		stepBatch        int
		warm             []timeline.Span // the devices' first step spans
		encWarm, decWarm [][]float64     // the devices' first encode and decode calls (plan.SplitWarmCalls)
	}
	kinds := map[string]*sum{}
	get := func(dev string) *sum {
		k := kindOf[dev]
		if kinds[k] == nil {
			kinds[k] = &sum{}
		}
		return kinds[k]
	}
	var recvNS int64
	var recvs int
	for _, h := range tl.HostWork() {
		s := get(h.Device)
		s.firstNS += h.FirstNS
		s.first += h.FirstSamples
		s.lastNS += h.LastNS
		s.last += h.LastSamples
		recvNS += h.ReceiveNS
		recvs += h.Receives
	}
	mb := pr.p.Layout.MicroBatch
	seen := map[string]bool{} // device: its first step span seen
	type calls struct {
		durs  []float64
		batch []int
	}
	encs, decs := map[string]*calls{}, map[string]*calls{}
	add := func(m map[string]*calls, dev string, d float64, b int) {
		if m[dev] == nil {
			m[dev] = &calls{}
		}
		m[dev].durs = append(m[dev].durs, d)
		m[dev].batch = append(m[dev].batch, b)
	}
	for _, sp := range tl.Spans {
		b := max(len(sp.Samples), 1)
		d := float64(sp.End-sp.Start) / 1e6
		s := get(sp.Device)
		switch sp.Kind {
		case timeline.KindStep:
			first := !seen[sp.Device]
			seen[sp.Device] = true
			if first || sp.Warmup {
				s.warm = append(s.warm, sp)
			} else if b == mb {
				s.step = append(s.step, d/float64(sp.LastStep-sp.FirstStep+1))
				s.stepBatch = b
			}
		case timeline.KindEncode:
			add(encs, sp.Device, d, b)
		case timeline.KindDecode:
			add(decs, sp.Device, d, b)
		}
	}
	// Each device's calls in the order they ran (tl's spans are by start).
	for dev, c := range encs {
		s := get(dev)
		w, steady := plan.SplitWarmCalls(c.durs, c.batch)
		s.enc = append(s.enc, steady)
		s.encWarm = append(s.encWarm, w)
	}
	for dev, c := range decs {
		s := get(dev)
		w, steady := plan.SplitWarmCalls(c.durs, c.batch)
		s.dec = append(s.dec, steady)
		s.decWarm = append(s.decWarm, w)
	}
	note := fmt.Sprintf("a run of the plan with %d samples %s:", tl.Meta.PlannedSamples, how)
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range kinds {
			if !yield(k) {
				return
			}
		}
	}) {
		s, c := kinds[k], prof.Devices[k]
		if s.first > 0 {
			c.SampleFirstMS = round3(float64(s.firstNS) / float64(s.first) / 1e6)
		}
		if s.last > 0 {
			c.SampleLastMS = round3(float64(s.lastNS) / float64(s.last) / 1e6)
		}
		if len(s.step) > 0 {
			if iso := c.UNetMS[s.stepBatch]; iso > 0 && mean(s.step) > c.HostMSPerStep {
				f := (mean(s.step) - c.HostMSPerStep) / iso // the UNet's share of a step
				for b, v := range c.UNetMS {
					c.UNetMS[b] = round3(v * f)
				}
				for b, v := range c.FirstCallMS {
					c.FirstCallMS[b] = round3(max(v*f, c.UNetMS[b]))
				}
				note += fmt.Sprintf(" %s UNet calls ran %.3g× the isolated ones (%.3f ms a step at micro-batch %d over %d spans; unet_ms and first_call_ms scaled);", k, f, mean(s.step), s.stepBatch, len(s.step))
			}
		}
		if len(s.enc) > 0 {
			c.EncodeMS = round3(mean(s.enc))
		}
		if len(s.dec) > 0 {
			c.DecodeMS = round3(mean(s.dec))
			note += fmt.Sprintf(" %s decode %.3f ms a sample over %d;", k, c.DecodeMS, len(s.dec))
		}
		if fresh {
			// The run's sessions were fresh, as a real run's are: its
			// first calls are the warm-up a run meets.
			if ms, ok := warmFirstCall(s.warm, c.UNetMS, c.HostMSPerStep); ok {
				b := max(len(s.warm[0].Samples), 1)
				c.FirstCallMS = map[int]float64{b: round3(ms)}
			}
			if len(s.enc) > 0 { // the run encoded on this kind: its first calls replace the isolated ones
				c.EncodeFirstMS = round3s(medianCalls(s.encWarm))
			}
			if len(s.dec) > 0 {
				c.DecodeFirstMS = round3s(medianCalls(s.decWarm))
			}
			note += fmt.Sprintf(" %s first calls from the run's fresh sessions (first UNet call, encode, decode);", k)
		}
		prof.Devices[k] = c
	}
	t := string(pr.p.Transport)
	if c, ok := prof.Transports[t]; ok {
		if recvs > 0 {
			c.ReceiveUS = round3(float64(recvNS) / float64(recvs) / 1e3)
		}
		excess, rest := sends(tl)
		if len(rest) > 0 { // a link sent twice at least: its first send against the others
			c.SetupMS = round3(excess / 1e6)
			bytes := float64(max(pr.p.Model.LatentBytes(), 1)) * float64(mb)
			perByte := 0.0
			if c.BandwidthGBps > 0 && !math.IsInf(c.BandwidthGBps, 0) {
				perByte = bytes / c.BandwidthGBps
			}
			c.LatencyUS = round3(max(mean(rest)-perByte, 0) / 1e3)
			note += fmt.Sprintf(" transport %s: send %.3f µs a hand-off over %d (latency %.3f µs after the bandwidth's share), set-up %.3f ms;",
				t, mean(rest)/1e3, len(rest), c.LatencyUS, c.SetupMS)
		}
		if recvs > 0 {
			note += fmt.Sprintf(" receive %.3f µs over %d;", c.ReceiveUS, recvs)
		}
		prof.Transports[t] = c
		note += " setup_ms_per_rank not measured (one rank count)"
	}
	pr.notes = append(pr.notes, note)
}

// warmFirstCall is the first UNet call that the devices' first step spans
// carry (plan.FirstCallMS), their median, in ms; false without spans or
// costs.
func warmFirstCall(warm []timeline.Span, unet map[int]float64, host float64) (float64, bool) {
	var firsts []float64
	for _, w := range warm {
		b := max(len(w.Samples), 1)
		step, ok := unet[b]
		if !ok || b != max(len(warm[0].Samples), 1) {
			continue
		}
		firsts = append(firsts, plan.FirstCallMS(float64(w.End-w.Start)/1e6, w.LastStep-w.FirstStep+1, step, host))
	}
	if len(firsts) == 0 {
		return 0, false
	}
	return median(firsts), true
}

// sends reads the send spans of tl by link (ordered device pair): the mean
// over links of each one's first send less the median of its sends, in
// ns (0 when not positive or no link sent twice), and the durations of
// every send but each link's first, in ns.
func sends(tl *timeline.Timeline) (excess float64, rest []float64) {
	type pair struct{ a, b string }
	by := map[pair][]timeline.Span{}
	for _, s := range tl.Spans {
		if s.Kind == timeline.KindSend {
			k := pair{s.Device, s.Peer}
			by[k] = append(by[k], s)
		}
	}
	var total float64
	n := 0
	for _, ss := range by {
		slices.SortFunc(ss, func(x, y timeline.Span) int { return cmp.Compare(x.Start, y.Start) })
		durs := make([]float64, len(ss))
		for i, s := range ss {
			durs[i] = float64(s.End - s.Start)
		}
		rest = append(rest, durs[1:]...)
		if len(durs) >= 2 {
			total += durs[0] - median(durs)
			n++
		}
	}
	if n == 0 || total <= 0 {
		return 0, rest
	}
	return total / float64(n), rest
}
