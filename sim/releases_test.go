package sim

import (
	"testing"

	"github.com/vdpp/vdpp/plan"
)

// TestRelCursor: a pipeline's cursor gives the release times of its
// samples, as the workload's list has them, for every arrival process.
func TestRelCursor(t *testing.T) {
	for _, a := range []plan.Arrival{{Kind: plan.ArrivalBatch}, {Kind: plan.ArrivalPoisson, Rate: 7}, {Kind: plan.ArrivalInterval, IntervalMS: 3.3}} {
		w := plan.Workload{Samples: 60, Seed: 5, Arrival: a}
		all := w.ReleaseTimes()
		for _, stride := range []int{1, 3} {
			for first := range stride {
				c := newRelCursor(w, first, stride)
				for id := first; id < len(all); {
					if c.t != all[id] {
						t.Fatalf("%s stride %d: sample %d at %d ns, want %d", a.Kind, stride, id, c.t, all[id])
					}
					k := 1 + id%2 // take one or two at a time
					c.advance(k)
					id += k * stride
				}
			}
		}
	}
}
