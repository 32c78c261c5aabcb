package sim

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/vdpp/vdpp/plan"
	"github.com/vdpp/vdpp/timeline"
)

// The same plan and seed give byte-identical timeline JSON; the recorder
// sees exactly what the trace keeps; another seed gives another timeline.
func TestDeterminism(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 30 {
		s := randomSpec(rng, true)
		s.jitter = 0.1
		s.arrival = plan.Arrival{Kind: "poisson", Rate: 20}
		s.samples = 10 + rng.IntN(20)
		var out [2]bytes.Buffer
		var rec timeline.Timeline
		for k := range out {
			o := Options{Trace: true}
			if k == 1 {
				o.Recorder = &rec
			}
			r, err := Run(s.plan(), o)
			if err != nil {
				t.Fatal(err)
			}
			if err := timeline.Write(&out[k], r.Timeline); err != nil {
				t.Fatal(err)
			}
			if k == 1 && (!reflect.DeepEqual(rec.Spans, r.Timeline.Spans) || !reflect.DeepEqual(rec.Samples, r.Timeline.Samples)) {
				t.Fatalf("plan %d: the recorder saw other spans than the trace", i)
			}
		}
		if !bytes.Equal(out[0].Bytes(), out[1].Bytes()) {
			t.Fatalf("plan %d: two runs of the same plan differ", i)
		}
		s.seed++
		r, err := Run(s.plan(), Options{Trace: true})
		if err != nil {
			t.Fatal(err)
		}
		var other bytes.Buffer
		if err := timeline.Write(&other, r.Timeline); err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(other.Bytes(), out[0].Bytes()) {
			t.Fatalf("plan %d: another seed gave the same timeline", i)
		}
	}
}

// Poisson arrivals: seeded, with the mean gap near 1/rate.
func TestPoissonArrivals(t *testing.T) {
	s := spec{stepMS: []float64{1}, steps: []int{1}, samples: 20000, arrival: plan.Arrival{Kind: "poisson", Rate: 50}, seed: 9}
	r := run(t, s.plan())
	var lastRel int64
	for _, smp := range r.Timeline.Samples {
		lastRel = max(lastRel, smp.Release)
	}
	mean := float64(lastRel) / float64(s.samples-1) / 1e9
	if mean < 0.019 || mean > 0.021 {
		t.Errorf("mean gap %.5f s, want about 1/50", mean)
	}
	s.arrival = plan.Arrival{Kind: "interval", IntervalMS: 2.5}
	s.samples = 5
	r = run(t, s.plan())
	for _, smp := range r.Timeline.Samples {
		if smp.Release != int64(smp.ID)*2_500_000 {
			t.Errorf("interval: sample %d released at %d", smp.ID, smp.Release)
		}
	}
}

func TestMemory(t *testing.T) {
	// Each device: UNet 3 + runtime 1 + activations 2 × micro-batch 2,
	// plus encoder 1.5 on the first stage and decoder 0.5 on the last.
	s := spec{stepMS: []float64{10, 10, 10}, steps: []int{1, 1, 1}, samples: 1, mb: 2, memGB: 8.2}
	p := s.plan()
	_, err := Run(p, Options{})
	var me *MemoryError
	if !errors.As(err, &me) {
		t.Fatalf("err %v, want a *MemoryError", err)
	}
	if len(me.Overflow) != 2 || me.Overflow[0].Device != "gpu0" || me.Overflow[1].Device != "gpu2" {
		t.Fatalf("overflow %+v, want gpu0 and gpu2", me.Overflow)
	}
	if d := me.Overflow[0].OverGB(); d < 1.29 || d > 1.31 {
		t.Errorf("gpu0 over by %v GiB, want 1.3", d)
	}
	for _, w := range []string{"gpu0", "9.50 GiB of 8.20 GiB", "1.30 GiB over", "gpu2", "0.30 GiB over"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not say %q", err, w)
		}
	}
	rows, err := Memory(p)
	if err != nil {
		t.Fatal(err)
	}
	if rows[1].NeedGB != 8 || !rows[1].Fits || rows[1].EncoderGB != 0 {
		t.Errorf("gpu1 %+v, want 8 GiB without encoder, fitting", rows[1])
	}
	p.Devices[0].MemoryGB, p.Devices[2].MemoryGB = 0, 24 // 0: unknown, not checked
	if _, err := Run(p, Options{}); err != nil {
		t.Errorf("fitting plan: %v", err)
	}
}

func TestPlansThatCannotRun(t *testing.T) {
	base := spec{stepMS: []float64{10, 10}, steps: []int{2, 2}, samples: 3}
	cases := []struct {
		name string
		edit func(p *plan.Plan)
		want string
	}{
		{"nil profile", func(p *plan.Plan) { p.Profile = nil }, "no cost profile"},
		{"not resolved", func(p *plan.Plan) { p.Pipelines = nil }, "no resolved layout"},
		{"no device", func(p *plan.Plan) { p.Pipelines[0].Stages[1].DevIdx = 7 }, "pipelines[0].stages[1].device: device \"gpu1\" at index 7"},
		{"device kind", func(p *plan.Plan) { p.Devices[1].Kind = "h100" }, `no costs for device kind "h100"`},
		{"link kind", func(p *plan.Plan) { p.Links.Default = "nvlink" }, `link kind "nvlink" (gpu0→gpu1) has no costs`},
		{"no unet", func(p *plan.Plan) { p.Profile.Devices["k0"] = plan.DeviceCosts{} }, "no unet_ms"},
		{"negative unet", func(p *plan.Plan) { p.Profile.Devices["k0"] = plan.DeviceCosts{UNetMS: map[int]float64{1: -5}} }, "devices.k0.unet_ms[1]: must be > 0 ms, got -5"},
		{"negative jitter", func(p *plan.Plan) {
			c := p.Profile.Devices["k0"]
			c.Jitter = -0.1
			p.Profile.Devices["k0"] = c
		}, "devices.k0.jitter: must be in [0, 1)"},
		{"zero rate", func(p *plan.Plan) { p.Workload.Arrival = plan.Arrival{Kind: "poisson"} }, "poisson arrivals need rate > 0"},
		{"arrival", func(p *plan.Plan) { p.Workload.Arrival.Kind = "burst" }, `workload.arrival.kind: "burst" is not allowed`},
		{"samples", func(p *plan.Plan) { p.Workload.Samples = 0 }, "workload.samples"},
		{"handoff", func(p *plan.Plan) { p.Layout.Handoff = "async" }, `layout.handoff: "async" is not allowed`},
		{"micro batch", func(p *plan.Plan) { p.Layout.MicroBatch = -1 }, "micro_batch"},
		{"gap", func(p *plan.Plan) { p.Pipelines[0].Stages[1].First = 3 }, "steps 2..2 are not assigned"},
		{"short", func(p *plan.Plan) { p.Sampler.Steps = 5 }, "steps 4..4 are not assigned"},
		{"decode early", func(p *plan.Plan) { p.Pipelines[0].Stages[0].Decode = true }, "encode true, decode true, but the plan makes it pipeline 0 stage 0 on gpu0 (device 0), steps 0..1, encode true, decode false"},
		{"encode late", func(p *plan.Plan) { p.Pipelines[0].Stages[0].Encode, p.Pipelines[0].Stages[1].Encode = false, true }, "stages[1]: is pipeline 0 stage 1 on gpu1 (device 1), steps 2..3, encode true, decode true, but the plan makes it"},
		{"speed", func(p *plan.Plan) { p.Devices[0].Speed = -1 }, "devices[0].speed: must be"},
		{"interval", func(p *plan.Plan) { p.Workload.Arrival = plan.Arrival{Kind: "interval", IntervalMS: -1} }, "interval_ms"},
	}
	for _, tc := range cases {
		p := base.plan()
		tc.edit(p)
		_, err := Run(p, Options{})
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "sim: ") {
			t.Errorf("%s: err %v, want one with %q", tc.name, err, tc.want)
		}
	}
	if _, err := Run(nil, Options{}); err == nil {
		t.Error("nil plan: no error")
	}
}

// Blocking hand-offs in a cycle of devices wait on each other: the run
// reports a deadlock instead of returning a partial timeline.
func TestBlockingCycleDeadlock(t *testing.T) {
	s := spec{stepMS: []float64{10, 10}, steps: []int{2, 2}, samples: 4, replicas: 2, shared: true, handoff: "blocking"}
	_, err := Run(s.plan(), Options{})
	if err == nil || !strings.Contains(err.Error(), "deadlock") {
		t.Fatalf("err %v, want a deadlock", err)
	}
	s.handoff = "buffered"
	if _, err := Run(s.plan(), Options{}); err != nil {
		t.Fatalf("buffered: %v", err)
	}
}

// countRecorder keeps only counts, as a streaming metrics sink would.
type countRecorder struct {
	spans, samples int
	last           int64
	peakHeap       uint64
}

func (c *countRecorder) AddSpan(timeline.Span) { c.spans++ }
func (c *countRecorder) AddSample(s timeline.Sample) {
	c.samples++
	c.last = s.Done
	if c.samples%200_000 == 0 {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		c.peakHeap = max(c.peakHeap, ms.HeapAlloc)
	}
}

// A million samples with the trace off: memory stays bounded (heap growth
// well under what a trace would need), and every sample is accounted for.
func TestMillionSamplesBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("a million samples: skipped in -short")
	}
	const n = 1_000_000
	s := spec{stepMS: []float64{10, 12}, steps: []int{2, 2}, linkUS: 30, samples: n, arrival: plan.Arrival{Kind: "poisson", Rate: 40}, seed: 1}
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	rec := &countRecorder{}
	r, err := Run(s.plan(), Options{Recorder: rec})
	if err != nil {
		t.Fatal(err)
	}
	if rec.samples != n || r.Samples != n || rec.spans < 4*n || r.Timeline != nil {
		t.Fatalf("%d samples, %d spans recorded, timeline %v", rec.samples, rec.spans, r.Timeline != nil)
	}
	// A trace would hold > 4 spans × 1e6 × ~100 B = 400 MB; allow 32 MB.
	if grow := int64(rec.peakHeap) - int64(before.HeapAlloc); grow > 32<<20 {
		t.Errorf("heap grew by %d MB during the run, want bounded memory", grow>>20)
	}
}
