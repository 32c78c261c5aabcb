package sim

import (
	"github.com/vdpp/vdpp/plan"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/vdpp/vdpp/timeline"
)

// reference computes, by a plain recursion over micro-batches and stages,
// when each sample completes and when each (first sample, stage) compute
// starts, for plans where every pipeline has its own devices and there is
// no jitter. It knows nothing of events, heaps or queues.
func reference(s spec) (done map[int]int64, start map[[2]int]int64) {
	p := s.plan()
	done, start = map[int]int64{}, map[[2]int]int64{}
	R := len(p.Pipelines)
	N := s.samples
	mb := max(s.mb, 1)
	// Release times in id order.
	rel := make([]int64, N)
	switch s.arrival.Kind {
	case "poisson":
		rng := rand.New(rand.NewPCG(s.seed, plan.StreamArrival))
		var t int64
		for i := range rel {
			rel[i] = t
			t += int64(math.Round(rng.ExpFloat64() / s.arrival.Rate * 1e9))
		}
	case "interval":
		for i := range rel {
			rel[i] = int64(math.Round(float64(i) * s.arrival.IntervalMS * 1e6))
		}
	}
	S := len(s.stepMS)
	bytes := p.Model.LatentBytes()
	speedOf := func(k int) float64 {
		if s.speed != nil && s.speed[k] != 0 {
			return s.speed[k]
		}
		return 1
	}
	// Speed scales the device's work (UNet, encode, decode), not host time.
	scaled := func(ns int64, k int) int64 { return int64(math.Round(float64(ns) / speedOf(k))) }
	stepCost := func(k, b int, warm bool) int64 {
		c := p.Profile.Devices[p.Devices[k].Kind]
		one, _ := c.StepNS(b)
		first, _ := c.FirstCallNS(b)
		host := int64(math.Round(s.hostMS * 1e6))
		per := scaled(one, k) + host
		n := int64(s.steps[k])
		if warm {
			return scaled(first, k) + host + (n-1)*per
		}
		return n * per
	}
	lc := p.Profile.Links["wire"]
	for r := range R {
		var ids []int
		for id := r; id < N; id += R {
			ids = append(ids, id)
		}
		free := make([]int64, S)     // when device k can take new work
		linkFree := make([]int64, S) // buffered: when link k→k+1 is free
		used := make([]bool, S)      // link k→k+1 has been set up
		warm := make([]bool, S)
		var encoded, decoded int // calls on the pipeline's own first and last device
		blocking := s.handoff != "buffered"
		for i := 0; i < len(ids); {
			t := max(free[0], rel[ids[i]])
			b := 0
			for i+b < len(ids) && b < mb && rel[ids[i+b]] <= t {
				b++
			}
			var arrive int64 = t
			for k := range S {
				begin := max(arrive, free[k])
				if blocking && k > 0 {
					begin = arrive // the transfer started only when k was free
				}
				// Host work before the model calls: the samples'
				// preparation on the first stage, receiving elsewhere.
				var pre int64
				if k == 0 {
					pre = int64(b) * int64(math.Round(s.firstHostMS*1e6))
				} else {
					pre = int64(math.Round(s.recvUS * 1e3))
				}
				start[[2]int{ids[i], k}] = begin + pre
				end := begin + pre + stepCost(k, b, !warm[k])
				warm[k] = true
				// a device's first encode and decode calls carry their warm-up
				warmUp := func(first []float64, steady float64, done *int) int64 {
					i := *done
					if i >= len(first) {
						return 0
					}
					*done = i + 1
					return int64(math.Round(max(first[i]-steady, 0) * 1e6))
				}
				if k == 0 {
					end += scaled(int64(b)*int64(math.Round(s.encMS*1e6))+warmUp(s.encFirstMS, s.encMS, &encoded), k)
				}
				if k == S-1 {
					end += scaled(int64(b)*int64(math.Round(s.decMS*1e6))+warmUp(s.decFirstMS, s.decMS, &decoded), k)
					for j := range b {
						done[ids[i+j]] = end // done at the end of decode
					}
					// the device then hands the outputs on
					free[k] = end + int64(b)*int64(math.Round(s.lastHostMS*1e6))
					break
				}
				c := lc.TransferNS(int64(b) * bytes)
				if !used[k] {
					used[k] = true
					c += lc.SetupNS(S * R)
				}
				if blocking {
					xs := max(end, free[k+1])
					free[k] = xs + c
					arrive = xs + c
				} else {
					free[k] = end
					xs := max(end, linkFree[k])
					linkFree[k] = xs + c
					arrive = xs + c
				}
			}
			i += b
		}
	}
	return done, start
}

// The engine agrees with the naive recursion on random plans where each
// pipeline has its own devices (no shared devices, no jitter), in both
// hand-off modes, for every arrival kind and micro-batch size.
func TestEngineMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	n := 400
	if testing.Short() {
		n = 100
	}
	for i := range n {
		s := randomSpec(rng, false)
		r := run(t, s.plan())
		done, start := reference(s)
		for _, smp := range r.Timeline.Samples {
			if done[smp.ID] != smp.Done {
				t.Fatalf("plan %d %+v: sample %d done at %d, reference %d", i, s, smp.ID, smp.Done, done[smp.ID])
			}
		}
		for _, sp := range r.Timeline.Spans {
			if !timeline.Busy(sp.Kind) {
				continue
			}
			k := [2]int{sp.Samples[0], sp.Stage}
			if w, ok := start[k]; !ok || (sp.Kind != timeline.KindDecode && sp.Start < w) {
				t.Fatalf("plan %d %+v: %s of %v at stage %d starts at %d, reference %d", i, s, sp.Kind, sp.Samples, sp.Stage, sp.Start, w)
			}
			if (sp.Kind == timeline.KindEncode || (sp.Kind == timeline.KindStep && sp.Stage > 0)) && sp.Start != start[k] {
				t.Fatalf("plan %d %+v: %s of %v at stage %d starts at %d, reference %d", i, s, sp.Kind, sp.Samples, sp.Stage, sp.Start, start[k])
			}
		}
	}
}
