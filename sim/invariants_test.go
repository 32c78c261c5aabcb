package sim

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"

	"github.com/vdpp/vdpp/plan"
	"github.com/vdpp/vdpp/timeline"
)

// randomSpec draws a plan: 1–5 stages, 1–3 replicas (sometimes sharing the
// same devices), uneven steps and costs, encode/decode, links with
// latency, bandwidth and set-up, micro-batches, both hand-off modes, all
// arrival kinds, sometimes jitter, warm-up and device speeds.
func randomSpec(rng *rand.Rand, contention bool) spec {
	S := 1 + rng.IntN(5)
	s := spec{
		stepMS:   make([]float64, S),
		steps:    make([]int, S),
		firstMS:  make([]float64, S),
		speed:    make([]float64, S),
		replicas: 1 + rng.IntN(3),
		samples:  1 + rng.IntN(25),
		mb:       1 + rng.IntN(3),
		encMS:    float64(rng.IntN(20)),
		decMS:    float64(rng.IntN(30)),
		hostMS:   float64(rng.IntN(3)) / 2,
		linkUS:   float64(rng.IntN(20000)),
		bwGBps:   float64(rng.IntN(3)) * 0.0001,
		setupMS:  float64(rng.IntN(3) * 5),
		seed:     rng.Uint64(),
		handoff:  []plan.Handoff{plan.HandoffBlocking, plan.HandoffBuffered}[rng.IntN(2)],
	}
	for k := range S {
		s.stepMS[k] = float64(1 + rng.IntN(40))
		s.steps[k] = 1 + rng.IntN(6)
		if rng.IntN(2) == 0 {
			s.firstMS[k] = s.stepMS[k] + float64(rng.IntN(100))
		}
		s.speed[k] = []float64{1, 1, 2, 0.5, 1.5}[rng.IntN(5)]
	}
	switch rng.IntN(3) {
	case 0:
		s.arrival = plan.Arrival{Kind: "batch"}
	case 1:
		s.arrival = plan.Arrival{Kind: "poisson", Rate: 5 + 50*rng.Float64()}
	case 2:
		s.arrival = plan.Arrival{Kind: "interval", IntervalMS: float64(1 + rng.IntN(80))}
	}
	if rng.IntN(2) == 0 { // the host and hand-off overheads
		s.firstHostMS = float64(rng.IntN(8)) / 4
		s.lastHostMS = float64(rng.IntN(8)) / 4
		s.recvUS = float64(rng.IntN(3000))
		s.setupRankMS = float64(rng.IntN(3))
		for range rng.IntN(3) {
			s.encFirstMS = append(s.encFirstMS, s.encMS+float64(rng.IntN(3)*7))
		}
		for range rng.IntN(4) {
			s.decFirstMS = append(s.decFirstMS, max(s.decMS+float64(rng.IntN(3)*11)-2, 0))
		}
	}
	if contention {
		if rng.IntN(3) == 0 {
			s.jitter = 0.2
		}
		if rng.IntN(3) == 0 && S > 1 {
			s.shared = true // pipelines rotated over the same devices
			s.handoff = "buffered"
		}
	}
	return s
}

// checkInvariants checks the named invariants of a traced run and returns
// the first violation.
func checkInvariants(p *plan.Plan, r *Result) error {
	tl := r.Timeline
	S := len(p.Pipelines[0].Stages)
	// Clock never goes back: spans and samples are emitted when they end,
	// so their ends, in emission order, never decrease.
	var last int64
	for i, s := range tl.Spans {
		if s.Start < 0 || s.End < s.Start {
			return fmt.Errorf("span %d %+v: bad interval", i, s)
		}
		if s.End < last {
			return fmt.Errorf("clock went back: span %d ends at %d after an event at %d", i, s.End, last)
		}
		last = s.End
	}
	// Spans on one device and stream never overlap.
	type lane struct {
		dev string
		st  timeline.Stream
	}
	lanes := map[lane][]timeline.Span{}
	for _, s := range tl.Spans {
		l := lane{s.Device, timeline.StreamOf(s.Kind)}
		lanes[l] = append(lanes[l], s)
	}
	for l, ss := range lanes {
		sort.SliceStable(ss, func(i, j int) bool { return ss[i].Start < ss[j].Start })
		for i := 1; i < len(ss); i++ {
			if ss[i].Start < ss[i-1].End {
				return fmt.Errorf("%s/%s: %+v overlaps %+v", l.dev, l.st, ss[i-1], ss[i])
			}
		}
	}
	// Every step of every sample runs exactly once; every sample completes once.
	steps := p.Sampler.Steps
	count := make([]int, p.Workload.Samples*steps)
	for _, s := range tl.Spans {
		if s.Kind != timeline.KindStep {
			continue
		}
		for _, id := range s.Samples {
			for k := s.FirstStep; k <= s.LastStep; k++ {
				count[id*steps+k]++
			}
		}
	}
	for i, c := range count {
		if c != 1 {
			return fmt.Errorf("sample %d step %d ran %d times", i/steps, i%steps, c)
		}
	}
	if len(tl.Samples) != p.Workload.Samples {
		return fmt.Errorf("%d sample records, want %d", len(tl.Samples), p.Workload.Samples)
	}
	rel := map[int]int64{}
	seen := map[int]bool{}
	for _, s := range tl.Samples {
		if seen[s.ID] {
			return fmt.Errorf("sample %d completed twice", s.ID)
		}
		seen[s.ID] = true
		rel[s.ID] = s.Release
		if s.Pipeline != s.ID%len(p.Pipelines) {
			return fmt.Errorf("sample %d in pipeline %d, want round robin %d", s.ID, s.Pipeline, s.ID%len(p.Pipelines))
		}
	}
	// A sample's spans are in step order and causal across devices: the
	// compute spans of stage k+1 start after the hand-off from stage k ends,
	// which starts after stage k's compute ends; Done is the end of the
	// last busy span (the host span that hands the outputs on comes after).
	type key struct{ id, stage int }
	comp := map[key][2]int64{} // first start, last end of compute spans
	busyEnd := map[key]int64{} // end of the last busy span
	send := map[key][2]int64{}
	recv := map[key][2]int64{}
	lastStep := map[int]int{}
	for _, s := range tl.Spans {
		for _, id := range s.Samples {
			k := key{id, s.Stage}
			switch s.Kind {
			case timeline.KindSend:
				send[k] = [2]int64{s.Start, s.End}
			case timeline.KindRecv:
				recv[k] = [2]int64{s.Start, s.End}
			case timeline.KindWait:
			default:
				if s.Kind == timeline.KindStep {
					if s.FirstStep != lastStep[id] {
						return fmt.Errorf("sample %d: steps %d..%d run after step %d", id, s.FirstStep, s.LastStep, lastStep[id]-1)
					}
					lastStep[id] = s.LastStep + 1
				}
				c, ok := comp[k]
				if !ok {
					c = [2]int64{s.Start, s.End}
				} else if s.Start < c[1] {
					return fmt.Errorf("sample %d stage %d: %s starts at %d before the previous phase ends at %d", id, s.Stage, s.Kind, s.Start, c[1])
				}
				c[1] = s.End
				comp[k] = c
				if timeline.Busy(s.Kind) {
					busyEnd[k] = s.End
				}
			}
		}
	}
	for id := range p.Workload.Samples {
		if comp[key{id, 0}][0] < rel[id] {
			return fmt.Errorf("sample %d starts at %d before its release %d", id, comp[key{id, 0}][0], rel[id])
		}
		for k := 0; k+1 < S; k++ {
			a, b := comp[key{id, k}], comp[key{id, k + 1}]
			sd, rc := send[key{id, k}], recv[key{id, k + 1}]
			if sd[0] < a[1] || rc != sd || b[0] < rc[1] {
				return fmt.Errorf("sample %d: stage %d ends %d, send %v, recv %v, stage %d starts %d: not causal", id, k, a[1], sd, rc, k+1, b[0])
			}
		}
		if done := doneTimes(tl)[id]; done != busyEnd[key{id, S - 1}] {
			return fmt.Errorf("sample %d done at %d, its last busy span ends at %d", id, done, busyEnd[key{id, S - 1}])
		}
	}
	// busy + idle = makespan per device, with idle measured as the gaps
	// between busy spans in [0, makespan].
	for _, d := range r.Meta.Devices {
		var busy, idle, cur int64
		ss := lanes[lane{d, timeline.StreamCompute}]
		for _, s := range ss {
			if !timeline.Busy(s.Kind) {
				continue
			}
			busy += s.End - s.Start
			idle += s.Start - cur
			cur = s.End
		}
		idle += r.Makespan - cur
		if busy+idle != r.Makespan || idle < 0 {
			return fmt.Errorf("%s: busy %d + idle %d != makespan %d", d, busy, idle, r.Makespan)
		}
	}
	// A device never idles while work for it is waiting. Its "occupied"
	// time is its compute stream, plus sending and receiving in blocking
	// mode (a blocking hand-off holds both ends).
	blocking := p.Layout.Handoff != "buffered"
	covered := func(dev string, a, b int64) bool {
		iv := [][2]int64{}
		for _, s := range lanes[lane{dev, timeline.StreamCompute}] {
			iv = append(iv, [2]int64{s.Start, s.End})
		}
		if blocking {
			for _, s := range append(lanes[lane{dev, timeline.StreamRecv}], lanes[lane{dev, timeline.StreamSend}]...) {
				iv = append(iv, [2]int64{s.Start, s.End})
			}
		}
		sort.Slice(iv, func(i, j int) bool { return iv[i][0] < iv[j][0] })
		t := a
		for _, x := range iv {
			if x[0] > t {
				break
			}
			t = max(t, x[1])
		}
		return t >= b
	}
	for id := range p.Workload.Samples {
		st0 := p.Pipelines[id%len(p.Pipelines)].Stages
		if s := comp[key{id, 0}][0]; s > rel[id] && !covered(st0[0].Device, rel[id], s) {
			return fmt.Errorf("%s idles in [%d, %d) while sample %d waits to enter", st0[0].Device, rel[id], s, id)
		}
		if !blocking {
			for k := 1; k < S; k++ {
				a, b := recv[key{id, k}][1], comp[key{id, k}][0]
				if b > a && !covered(st0[k].Device, a, b) {
					return fmt.Errorf("%s idles in [%d, %d) while sample %d waits for it", st0[k].Device, a, b, id)
				}
			}
		}
	}
	if blocking {
		for _, s := range tl.Spans {
			if s.Kind == timeline.KindWait && !covered(s.Peer, s.Start, s.End) {
				return fmt.Errorf("%s idles in [%d, %d) while %s waits to hand it samples %v", s.Peer, s.Start, s.End, s.Device, s.Samples)
			}
		}
	}
	return nil
}

func TestInvariantsRandomPlans(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	n := 400
	if testing.Short() {
		n = 100
	}
	for i := range n {
		s := randomSpec(rng, true)
		p := s.plan()
		r, err := Run(p, Options{Trace: true})
		if err != nil {
			t.Fatalf("plan %d %+v: %v", i, s, err)
		}
		if err := checkInvariants(p, r); err != nil {
			t.Fatalf("plan %d %+v: %v", i, s, err)
		}
	}
}

// The invariant checks must be able to fail: break a good timeline in
// each of the ways they look for.
func TestInvariantChecksCatchBrokenTimelines(t *testing.T) {
	s := spec{stepMS: []float64{10, 10}, steps: []int{2, 2}, linkUS: 100, samples: 3}
	breakers := map[string]func(tl *timeline.Timeline){
		"overlap":    func(tl *timeline.Timeline) { tl.Spans[len(tl.Spans)-1].Start = 0 },
		"step twice": func(tl *timeline.Timeline) { tl.Spans = append(tl.Spans, tl.Spans[1]) },
		"step missing": func(tl *timeline.Timeline) {
			for i, sp := range tl.Spans {
				if sp.Kind == timeline.KindStep {
					tl.Spans = append(tl.Spans[:i:i], tl.Spans[i+1:]...)
					return
				}
			}
		},
		"clock back": func(tl *timeline.Timeline) {
			tl.Spans[0], tl.Spans[len(tl.Spans)-1] = tl.Spans[len(tl.Spans)-1], tl.Spans[0]
		},
		"busy over":  func(tl *timeline.Timeline) { tl.Spans[len(tl.Spans)-1].End += 1e9 },
		"done wrong": func(tl *timeline.Timeline) { tl.Samples[0].Done++ },
		"idle":       func(tl *timeline.Timeline) { tl.Samples[2].Release = -5e6 },
	}
	for name, br := range breakers {
		p := s.plan()
		r := run(t, p)
		if err := checkInvariants(p, r); err != nil {
			t.Fatalf("intact: %v", err)
		}
		br(r.Timeline)
		if err := checkInvariants(p, r); err == nil {
			t.Errorf("%s: not caught", name)
		}
	}
}
