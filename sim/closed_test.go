package sim

import (
	"testing"

	"github.com/vdpp/vdpp/plan"
	"github.com/vdpp/vdpp/timeline"
)

// One sample's latency is the sum of its stage times and its transfers,
// set-up of each link's first use included, in both hand-off modes.
func TestClosedFormOneSampleLatency(t *testing.T) {
	for _, handoff := range []plan.Handoff{plan.HandoffBlocking, plan.HandoffBuffered} {
		s := spec{
			stepMS:  []float64{30, 20, 45},
			steps:   []int{4, 5, 3},
			firstMS: []float64{100, 0, 70}, // stage 1 has no warm-up entry
			hostMS:  2,
			encMS:   11,
			decMS:   17,
			linkUS:  250,
			bwGBps:  4,
			setupMS: 9,
			samples: 1,
			handoff: handoff,
		}
		p := s.plan()
		r := run(t, p)
		bytes := p.Model.LatentBytes()
		c := ms(0.25) + bytes/4 + ms(9) // latency + bytes/(GB/s) + setup
		want := ms(11) +
			ms(100+2) + 3*ms(30+2) + // stage 0: first call, then 3 steps
			5*ms(20+2) + // stage 1
			ms(70+2) + 2*ms(45+2) + ms(17) + // stage 2 and decode
			2*c
		if got := r.Timeline.Samples[0].Done; got != want {
			t.Errorf("%s: latency %d ns, want Σ stage times + Σ transfers = %d ns", handoff, got, want)
		}
		if r.Makespan != want {
			t.Errorf("%s: makespan %d, want %d", handoff, r.Makespan, want)
		}
	}
}

// N samples released together through stages with pure-delay transfers:
// makespan = Σt + Σc + (N−1)·max t. Buffered hand-off makes each link a
// plain delay server; with blocking hand-off the formula holds for links
// of zero cost (a transfer that occupies both ends adds to both stages).
func TestClosedFormMakespan(t *testing.T) {
	cases := []struct {
		name    string
		stepMS  []float64
		steps   []int
		linkUS  float64
		handoff plan.Handoff
	}{
		{"equal buffered", []float64{10, 10, 10, 10}, []int{7, 7, 7, 7}, 500, "buffered"},
		{"unequal buffered", []float64{10, 31, 7}, []int{3, 2, 5}, 900, "buffered"},
		{"bottleneck first buffered", []float64{50, 10, 10}, []int{2, 2, 2}, 3000, "buffered"},
		{"equal blocking zero links", []float64{10, 10, 10}, []int{4, 4, 4}, 0, "blocking"},
		{"unequal blocking zero links", []float64{13, 5, 21, 8}, []int{2, 6, 1, 3}, 0, "blocking"},
	}
	for _, tc := range cases {
		for _, n := range []int{1, 2, 9, 40} {
			s := spec{stepMS: tc.stepMS, steps: tc.steps, linkUS: tc.linkUS, samples: n, handoff: tc.handoff}
			r := run(t, s.plan())
			var sum, mx int64
			for k := range tc.stepMS {
				tk := int64(tc.steps[k]) * ms(tc.stepMS[k])
				sum += tk
				mx = max(mx, tk)
			}
			c := int64(tc.linkUS * 1e3)
			want := sum + int64(len(tc.stepMS)-1)*c + int64(n-1)*mx
			if r.Makespan != want {
				t.Errorf("%s N=%d: makespan %d, want Σt+Σc+(N−1)·max t = %d", tc.name, n, r.Makespan, want)
			}
		}
	}
}

// Equal stages: each device's bubble fraction is (S−1)/(N+S−1).
func TestClosedFormBubble(t *testing.T) {
	for _, S := range []int{1, 2, 4, 7} {
		for _, N := range []int{1, 3, 10} {
			st := make([]float64, S)
			steps := make([]int, S)
			for i := range st {
				st[i], steps[i] = 12, 4
			}
			r := run(t, spec{stepMS: st, steps: steps, samples: N}.plan())
			busy := busyNS(r.Timeline)
			for _, d := range r.Meta.Devices {
				idle := r.Makespan - busy[d]
				// idle/makespan == (S-1)/(N+S-1), compared exactly.
				if idle*int64(N+S-1) != int64(S-1)*r.Makespan {
					t.Errorf("S=%d N=%d %s: bubble %d/%d, want (S−1)/(N+S−1) = %d/%d", S, N, d, idle, r.Makespan, S-1, N+S-1)
				}
			}
		}
	}
}

// A link slower than every stage sets the pace: completions are c apart
// and makespan = Σt + Σc + (N−1)·c (buffered hand-off: the link is the
// slowest server of the line).
func TestClosedFormSlowLinkBottleneck(t *testing.T) {
	s := spec{stepMS: []float64{10, 15, 12}, steps: []int{2, 2, 2}, linkUS: 45000, samples: 12, handoff: "buffered"}
	r := run(t, s.plan())
	c := ms(45)
	sum := ms(20 + 30 + 24)
	if want := sum + 2*c + 11*c; r.Makespan != want {
		t.Errorf("makespan %d, want Σt+Σc+(N−1)·c = %d", r.Makespan, want)
	}
	done := doneTimes(r.Timeline)
	for i := 1; i < s.samples; i++ {
		if gap := done[i] - done[i-1]; gap != c {
			t.Errorf("sample %d completes %d ns after sample %d, want the link time %d", i, gap, i-1, c)
		}
	}
}

// The first UNet call of each device costs first_call_ms once, and its
// span is marked warm-up; the second sample pays the plain step cost.
func TestWarmupOncePerDevice(t *testing.T) {
	s := spec{stepMS: []float64{10, 10}, steps: []int{3, 3}, firstMS: []float64{200, 300}, samples: 3}
	r := run(t, s.plan())
	warm := map[string]int{}
	for _, sp := range r.Timeline.Spans {
		if sp.Kind != timeline.KindStep {
			continue
		}
		d := sp.End - sp.Start
		if sp.Warmup {
			warm[sp.Device]++
			if sp.Samples[0] != 0 {
				t.Errorf("warm-up span on %s for sample %v, want sample 0", sp.Device, sp.Samples)
			}
		} else if d != ms(30) {
			t.Errorf("%s sample %v: step span %d ns, want 3 × 10 ms", sp.Device, sp.Samples, d)
		}
	}
	if warm["gpu0"] != 1 || warm["gpu1"] != 1 {
		t.Errorf("warm-up spans per device %v, want one each", warm)
	}
}

// Micro-batches form at pipeline entry from queued samples and travel
// together; step cost comes from the profile by batch size.
func TestMicroBatch(t *testing.T) {
	s := spec{stepMS: []float64{10, 10}, steps: []int{2, 2}, samples: 5, mb: 2, encMS: 1}
	p := s.plan()
	for _, c := range p.Profile.Devices {
		c.UNetMS[2] = 16
	}
	r := run(t, p)
	var batches [][]int
	for _, sp := range r.Timeline.Spans {
		if sp.Kind == timeline.KindStep && sp.Stage == 0 {
			batches = append(batches, sp.Samples)
			want := int64(2) * ms(10)
			if len(sp.Samples) == 2 {
				want = 2 * ms(16)
			}
			if sp.End-sp.Start != want {
				t.Errorf("batch %v: step span %d, want %d", sp.Samples, sp.End-sp.Start, want)
			}
		}
		if sp.Kind == timeline.KindEncode && sp.End-sp.Start != int64(len(sp.Samples))*ms(1) {
			t.Errorf("batch %v: encode %d, want b × encode_ms", sp.Samples, sp.End-sp.Start)
		}
	}
	if len(batches) != 3 || len(batches[0]) != 2 || batches[1][0] != 2 || len(batches[2]) != 1 || batches[2][0] != 4 {
		t.Errorf("micro-batches %v, want [0 1] [2 3] [4]", batches)
	}
}

// Profiles measured by the executor carry transport costs, which replace
// the link costs for inproc and tcp plans.
func TestTransportCostsReplaceLinks(t *testing.T) {
	s := spec{stepMS: []float64{10, 10}, steps: []int{1, 1}, linkUS: 1000, samples: 1}
	p := s.plan()
	p.Profile.Transports = map[string]plan.LinkCosts{"inproc": {LatencyUS: 40}}
	r := run(t, p)
	if want := ms(20) + 40_000; r.Makespan != want {
		t.Errorf("inproc: makespan %d, want %d (transport cost, not the link's)", r.Makespan, want)
	}
	p.Transport = "nccl"
	r = run(t, p)
	if want := ms(20) + ms(1); r.Makespan != want {
		t.Errorf("nccl: makespan %d, want %d (link cost)", r.Makespan, want)
	}
}

// A device twice as fast runs its steps in half the time.
func TestDeviceSpeed(t *testing.T) {
	s := spec{stepMS: []float64{10, 10}, steps: []int{4, 4}, speed: []float64{2, 0.5}, samples: 1}
	r := run(t, s.plan())
	if want := 4*ms(5) + 4*ms(20); r.Makespan != want {
		t.Errorf("makespan %d, want %d", r.Makespan, want)
	}
}
