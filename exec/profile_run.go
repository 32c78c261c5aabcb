package exec

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"slices"

	"github.com/vdpp/vdpp/models"
	"github.com/vdpp/vdpp/plan"
	"github.com/vdpp/vdpp/timeline"
)

// runSamples is how many samples the profile's short run of the plan
// takes: enough to fill the pipeline and see a few in steady state.
func runSamples(p *plan.Plan) int {
	s := 1
	for _, pl := range p.Pipelines {
		s = max(s, len(pl.Stages))
	}
	return max(4, s+3) * len(p.Pipelines) * p.Layout.MicroBatch
}

// openModel lends an open session to a run without letting the run close
// it (the profiler closes it).
type openModel struct{ models.Model }

// measureRun runs the plan itself, briefly, in this process over its
// transport's link (for tcp: loopback within this process, not worker
// processes), with the sessions already open, writing its outputs to a
// temporary folder, and reads off the run's spans what single calls do not
// show (timeline.HostWork):
//
//   - sample_first_ms: host work per sample on a pipeline's first stage
//     (taking it, its image, its noise), pooled per device kind;
//   - sample_last_ms: host work per sample on the last stage after its
//     decode (handing the outputs to the writer);
//   - the transport's receive_us: the receiving worker's time from the end
//     of a transfer to its first step (waking up, unpacking);
//   - the transport's setup_ms: the first send over each link less the
//     median send, when positive. setup_ms_per_rank needs runs with
//     different rank counts and is left out (a note says so).
func (pr *profiler) measureRun(ctx context.Context, prof *plan.Profile) error {
	q := pr.p.Clone()
	q.Workload.Samples = runSamples(q)
	q.Workload.Arrival = plan.Arrival{Kind: plan.ArrivalBatch}
	lent := map[string]models.Model{}
	for _, pb := range pr.probes {
		if _, ok := lent[pb.dev.Name]; !ok {
			lent[pb.dev.Name] = openModel{pb.model}
		}
	}
	f := func(d plan.Device, _ plan.Stage) (models.Model, error) { return lent[d.Name], nil }
	dir, err := os.MkdirTemp("", "vdpp-profile-run-")
	if err != nil {
		return fmt.Errorf("exec: profile: run: %w", err)
	}
	defer os.RemoveAll(dir)
	l, err := newLink(q, "")
	if err != nil {
		return fmt.Errorf("exec: profile: run: %w", err)
	}
	res, err := runLocal(ctx, q, f, l, Options{
		OutDir: dir, Images: pr.images, OnInterrupt: InterruptAbandon,
		Conditioning: func(i int) string { return fmt.Sprintf("image %d", i) },
	})
	if err == nil && res.Interrupted {
		err = context.Cause(ctx)
	}
	if err != nil {
		return fmt.Errorf("exec: profile: run of %d samples: %w", q.Workload.Samples, err)
	}
	pr.readRun(res.Timeline, prof)
	return nil
}

// readRun puts what the run's spans show into prof, with a note.
func (pr *profiler) readRun(tl *timeline.Timeline, prof *plan.Profile) {
	kindOf := map[string]string{}
	for _, d := range pr.p.Devices {
		kindOf[d.Name] = d.Kind
	}
	type sum struct {
		firstNS, lastNS int64
		first, last     int
	}
	kinds := map[string]*sum{}
	var recvNS int64
	var recvs int
	for _, h := range tl.HostWork() {
		k := kindOf[h.Device]
		if kinds[k] == nil {
			kinds[k] = &sum{}
		}
		s := kinds[k]
		s.firstNS += h.FirstNS
		s.first += h.FirstSamples
		s.lastNS += h.LastNS
		s.last += h.LastSamples
		recvNS += h.ReceiveNS
		recvs += h.Receives
	}
	for k, s := range kinds {
		c := prof.Devices[k]
		if s.first > 0 {
			c.SampleFirstMS = round3(float64(s.firstNS) / float64(s.first) / 1e6)
		}
		if s.last > 0 {
			c.SampleLastMS = round3(float64(s.lastNS) / float64(s.last) / 1e6)
		}
		prof.Devices[k] = c
	}
	t := string(pr.p.Transport)
	note := fmt.Sprintf("host work and hand-offs from a run of the plan of %d samples in this process over transport %s", tl.Meta.PlannedSamples, t)
	if c, ok := prof.Transports[t]; ok {
		if recvs > 0 {
			c.ReceiveUS = round3(float64(recvNS) / float64(recvs) / 1e3)
		}
		c.SetupMS = round3(firstSendExcess(tl) / 1e6)
		prof.Transports[t] = c
		note += fmt.Sprintf(": receive %.3f µs per hand-off over %d, set-up %.3f ms (first send less the median); setup_ms_per_rank not measured (one rank count)", c.ReceiveUS, recvs, c.SetupMS)
	}
	pr.notes = append(pr.notes, note)
}

// firstSendExcess is, over the links of tl (ordered device pairs), the
// mean of each link's first send span less the median of its sends, in
// ns, and 0 when that is not positive or no link sent twice.
func firstSendExcess(tl *timeline.Timeline) float64 {
	type pair struct{ a, b string }
	sends := map[pair][]timeline.Span{}
	for _, s := range tl.Spans {
		if s.Kind == timeline.KindSend {
			k := pair{s.Device, s.Peer}
			sends[k] = append(sends[k], s)
		}
	}
	var total float64
	n := 0
	for _, ss := range sends {
		if len(ss) < 2 {
			continue
		}
		slices.SortFunc(ss, func(x, y timeline.Span) int { return cmp.Compare(x.Start, y.Start) })
		durs := make([]float64, len(ss))
		for i, s := range ss {
			durs[i] = float64(s.End - s.Start)
		}
		total += durs[0] - median(durs)
		n++
	}
	if n == 0 || total <= 0 {
		return 0
	}
	return total / float64(n)
}
