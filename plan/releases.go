package plan

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// StreamArrival is the PCG stream of the workload seed that Poisson
// arrivals draw from. Other random draws (the simulator's jitter) use
// streams of their own, so turning them on does not move the arrivals.
const StreamArrival = 0x61727269766c // "arrivl"

// Releases yields the release time of each sample of a workload in sample
// order, in integer nanoseconds from the run's start: the one release-time
// generator of the simulator and the executor.
//
//   - batch: every sample at 0
//   - interval: sample i at round(i × interval_ms × 1e6)
//   - poisson: sample 0 at 0, then gaps drawn in order from an exponential
//     distribution of mean 1/rate seconds, each rounded to whole
//     nanoseconds, from PCG(workload.seed, StreamArrival)
//
// It keeps no per-sample state, so a simulation of millions of samples
// does not grow with the count.
type Releases struct {
	w    Workload
	next int   // index of the next sample
	t    int64 // release time of the previous sample (poisson)
	rng  *rand.Rand
}

// Releases returns a fresh generator over w's samples.
func (w Workload) Releases() *Releases {
	r := &Releases{w: w}
	if w.Arrival.Kind == ArrivalPoisson {
		r.rng = rand.New(rand.NewPCG(w.Seed, StreamArrival))
	}
	return r
}

// Next returns the release time of the next sample. Past the workload's
// last sample it goes on with the same process.
func (r *Releases) Next() int64 {
	i := r.next
	r.next++
	a := r.w.Arrival
	switch a.Kind {
	case ArrivalInterval:
		return int64(math.Round(float64(i) * a.IntervalMS * 1e6))
	case ArrivalPoisson:
		if i > 0 {
			r.t += int64(math.Round(r.rng.ExpFloat64() / a.Rate * 1e9))
		}
		return r.t
	}
	return 0
}

// ReleaseTimes returns the release time of every sample of w, in order.
func (w Workload) ReleaseTimes() []int64 {
	out := make([]int64, max(w.Samples, 0))
	r := w.Releases()
	for i := range out {
		out[i] = r.Next()
	}
	return out
}

// String describes the arrival process in a few words, as tables and
// reports print it: "batch (all released at once)", "poisson, 2
// samples/s", "one every 250 ms".
func (a Arrival) String() string {
	switch a.Kind {
	case ArrivalPoisson:
		return fmt.Sprintf("poisson, %g samples/s", a.Rate)
	case ArrivalInterval:
		return fmt.Sprintf("one every %g ms", a.IntervalMS)
	case ArrivalBatch:
		return "batch (all released at once)"
	}
	return string(a.Kind)
}
