package timeline

import (
	"math"
	"math/rand/v2"
	"reflect"
	"sort"
	"testing"
)

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

func TestMetricsPipelineBatch(t *testing.T) {
	m := pipeline3x4().Metrics()
	// Completions 40, 60, 80, 100 (d2's span ends), all released at 0.
	if m.Samples != 4 || !m.Batch {
		t.Fatalf("samples %d batch %v, want 4 true", m.Samples, m.Batch)
	}
	if m.FirstLatencyNS != 40 || m.FirstSample != 0 {
		t.Errorf("first latency %d (sample %d), want 40 (sample 0)", m.FirstLatencyNS, m.FirstSample)
	}
	// (N−1)/(c_N − c_1) = 3 / 60 ns.
	if want := 3 / 60e-9; !near(m.Throughput, want) {
		t.Errorf("throughput %g, want %g", m.Throughput, want)
	}
	if m.ThroughputWindowNS != 60 {
		t.Errorf("window %d, want 60", m.ThroughputWindowNS)
	}
	if m.MakespanNS != 100 || m.OriginNS != 0 || m.EndNS != 100 {
		t.Errorf("makespan %d [%d,%d], want 100 [0,100]", m.MakespanNS, m.OriginNS, m.EndNS)
	}
	// Latencies 40 60 80 100: mean 70; nearest rank p50 = 2nd = 60, p95 = 4th, p99 = 4th.
	if m.LatencyMeanNS != 70 || m.LatencyP50NS != 60 || m.LatencyP95NS != 100 || m.LatencyP99NS != 100 || !m.LatencyExact {
		t.Errorf("latency mean %g p50 %d p95 %d p99 %d exact %v, want 70 60 100 100 true",
			m.LatencyMeanNS, m.LatencyP50NS, m.LatencyP95NS, m.LatencyP99NS, m.LatencyExact)
	}
	want := []DeviceMetrics{
		// d0 busy 0..40: no fill, drain 60.
		{Device: "d0", BusyNS: 40, Utilisation: 0.4, IdleNS: 60, FillNS: 0, DrainNS: 60, BetweenNS: 0, Spans: 4, FirstBusyNS: 0, LastBusyNS: 40},
		// d1 busy 10..90 without gaps: fill 10, drain 10.
		{Device: "d1", BusyNS: 80, Utilisation: 0.8, IdleNS: 20, FillNS: 10, DrainNS: 10, BetweenNS: 0, Spans: 4, FirstBusyNS: 10, LastBusyNS: 90},
		// d2: fill 30, three gaps of 10 between its spans.
		{Device: "d2", BusyNS: 40, Utilisation: 0.4, IdleNS: 60, FillNS: 30, DrainNS: 0, BetweenNS: 30, Spans: 4, FirstBusyNS: 30, LastBusyNS: 100},
	}
	if !reflect.DeepEqual(m.Devices, want) {
		t.Errorf("devices:\n got %+v\nwant %+v", m.Devices, want)
	}
	wantStages := []StageMetrics{
		{StageKey: StageKey{0, 0}, BusyNS: 40, StepNS: 40, BusySpans: 4, Devices: []string{"d0"}},
		{StageKey: StageKey{0, 1}, BusyNS: 80, StepNS: 80, BusySpans: 4, Devices: []string{"d1"}},
		{StageKey: StageKey{0, 2}, BusyNS: 40, StepNS: 40, BusySpans: 4, Devices: []string{"d2"}},
	}
	if !reflect.DeepEqual(m.Stages, wantStages) {
		t.Errorf("stages:\n got %+v\nwant %+v", m.Stages, wantStages)
	}
	if m.SpanCounts[KindStep] != 12 || len(m.SpanCounts) != 1 {
		t.Errorf("span counts %v, want step:12", m.SpanCounts)
	}
}

func TestMetricsArrivalsMicroBatch(t *testing.T) {
	m := arrivals2().Metrics()
	if m.Batch {
		t.Error("batch = true for differing releases")
	}
	// Sample 0 finishes first at 55, released at 0.
	if m.FirstLatencyNS != 55 || m.FirstSample != 0 {
		t.Errorf("first latency %d (sample %d), want 55 (0)", m.FirstLatencyNS, m.FirstSample)
	}
	// Completions 55, 59, 73: 2 completions in 18 ns after the first.
	if want := 2 / 18e-9; !near(m.Throughput, want) {
		t.Errorf("throughput %g, want %g", m.Throughput, want)
	}
	if m.MakespanNS != 73 {
		t.Errorf("makespan %d, want 73", m.MakespanNS)
	}
	// Latencies 55, 54, 33 -> sorted 33 54 55.
	if !near(m.LatencyMeanNS, 142.0/3) || m.LatencyP50NS != 54 || m.LatencyP95NS != 55 || m.LatencyMinNS != 33 || m.LatencyMaxNS != 55 {
		t.Errorf("latency mean %g p50 %d p95 %d min %d max %d", m.LatencyMeanNS, m.LatencyP50NS, m.LatencyP95NS, m.LatencyMinNS, m.LatencyMaxNS)
	}
	// d0 busy: encodes 4+4+4, steps 20+10 = 42 in [0,54]; gaps [4,5] and
	// [29,40] = 12 between, drain 73-54 = 19.
	// d1 busy: 20+4+4+10+4 = 42 in [31,73] without gaps: fill 31.
	want := []DeviceMetrics{
		{Device: "d0", BusyNS: 42, Utilisation: 42.0 / 73, IdleNS: 31, FillNS: 0, DrainNS: 19, BetweenNS: 12,
			WaitNS: 2, SendNS: 4, WarmupNS: 20, Spans: 8, FirstBusyNS: 0, LastBusyNS: 54},
		{Device: "d1", BusyNS: 42, Utilisation: 42.0 / 73, IdleNS: 31, FillNS: 31, DrainNS: 0, BetweenNS: 0,
			RecvNS: 4, WarmupNS: 20, Spans: 7, FirstBusyNS: 31, LastBusyNS: 73},
	}
	if !reflect.DeepEqual(m.Devices, want) {
		t.Errorf("devices:\n got %+v\nwant %+v", m.Devices, want)
	}
	s0, ok0 := m.Stage(0, 0)
	s1, ok1 := m.Stage(0, 1)
	if !ok0 || !ok1 || s0.BusyNS != 42 || s0.StepNS != 30 || s1.BusyNS != 42 || s1.StepNS != 30 {
		t.Errorf("stages %+v", m.Stages)
	}
	wantCounts := map[Kind]int{KindEncode: 3, KindStep: 4, KindDecode: 3, KindSend: 2, KindRecv: 2, KindWait: 1}
	if !reflect.DeepEqual(m.SpanCounts, wantCounts) {
		t.Errorf("counts %v, want %v", m.SpanCounts, wantCounts)
	}
	if m.WarmupNS != 40 || m.WarmupSpans != 2 {
		t.Errorf("warm-up %d ns in %d spans, want 40 in 2", m.WarmupNS, m.WarmupSpans)
	}
	for _, d := range m.Devices {
		if d.FillNS+d.DrainNS+d.BetweenNS+d.BusyNS != m.MakespanNS {
			t.Errorf("%s: busy + idle parts = %d, want makespan %d", d.Device, d.FillNS+d.DrainNS+d.BetweenNS+d.BusyNS, m.MakespanNS)
		}
	}
}

func TestMetricsEdgeCases(t *testing.T) {
	empty := (&Timeline{Meta: Meta{Devices: []string{"a"}}}).Metrics()
	if empty.Samples != 0 || empty.Throughput != 0 || empty.MakespanNS != 0 || empty.FirstSample != -1 || len(empty.Devices) != 1 {
		t.Errorf("empty: %+v", empty)
	}
	one := &Timeline{Meta: Meta{Devices: []string{"a", "idle"}}}
	one.AddSpan(Span{Device: "a", Kind: KindStep, Samples: []int{7}, FirstStep: 0, LastStep: 0, Start: 10, End: 260})
	one.AddSample(Sample{ID: 7, Release: 10, Done: 260})
	m := one.Metrics()
	// N = 1: throughput = 1 / latency = 1 / 250 ns.
	if !near(m.Throughput, 1/250e-9) || m.MakespanNS != 250 || m.OriginNS != 10 {
		t.Errorf("one sample: throughput %g makespan %d origin %d", m.Throughput, m.MakespanNS, m.OriginNS)
	}
	idle, _ := m.Device("idle")
	if idle.BusyNS != 0 || idle.FillNS != 250 || idle.Utilisation != 0 {
		t.Errorf("idle device %+v, want all fill", idle)
	}
}

// The streaming accumulator, fed in any order, gives what Metrics gives.
func TestAccumulatorOrderIndependent(t *testing.T) {
	for _, tl := range []*Timeline{pipeline3x4(), arrivals2()} {
		want := tl.Metrics()
		r := rand.New(rand.NewPCG(1, 2))
		for trial := 0; trial < 5; trial++ {
			a := NewAccumulator(tl.Meta.Devices)
			spans := append([]Span(nil), tl.Spans...)
			samples := append([]Sample(nil), tl.Samples...)
			r.Shuffle(len(spans), func(i, j int) { spans[i], spans[j] = spans[j], spans[i] })
			r.Shuffle(len(samples), func(i, j int) { samples[i], samples[j] = samples[j], samples[i] })
			for i := 0; i < len(spans) || i < len(samples); i++ { // interleaved
				if i < len(samples) {
					a.AddSample(samples[i])
				}
				if i < len(spans) {
					a.AddSpan(spans[i])
				}
			}
			got := a.Result()
			// Stage device order follows first appearance; compare sets.
			for i := range got.Stages {
				sort.Strings(got.Stages[i].Devices)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%s trial %d:\n got %+v\nwant %+v", tl.Meta.Plan, trial, got, want)
			}
		}
	}
}

// Beyond maxExact samples the percentiles come from the histogram, within
// 0.5% of the exact nearest-rank percentiles, and memory stays bounded.
func TestAccumulatorHistogramPercentiles(t *testing.T) {
	const n = 200_000
	r := rand.New(rand.NewPCG(42, 7))
	a := NewAccumulator(nil)
	lats := make([]int64, n)
	var sum float64
	for i := range lats {
		// Log-normal around 1.5 s, spread over two decades.
		lat := int64(1.5e9 * math.Exp(r.NormFloat64()))
		lats[i] = lat
		sum += float64(lat)
		rel := int64(i) * 1000
		a.AddSample(Sample{ID: i, Release: rel, Done: rel + lat})
	}
	m := a.Result()
	if m.LatencyExact {
		t.Fatal("latency exact after 200000 samples; want histogram")
	}
	if a.exact != nil || len(a.hist) > 5000 {
		t.Errorf("memory not bounded: %d exact values, %d buckets", len(a.exact), len(a.hist))
	}
	sort.Slice(lats, func(i, j int) bool { return lats[i] < lats[j] })
	for _, c := range []struct {
		p   float64
		got int64
	}{{50, m.LatencyP50NS}, {95, m.LatencyP95NS}, {99, m.LatencyP99NS}} {
		exact := lats[int(math.Ceil(c.p/100*n))-1]
		if rel := math.Abs(float64(c.got-exact)) / float64(exact); rel > 0.005 {
			t.Errorf("p%g: histogram %d, exact %d, relative error %.4f > 0.005", c.p, c.got, exact, rel)
		}
	}
	if !near(m.LatencyMeanNS, sum/n) {
		t.Errorf("mean %g, want exact %g", m.LatencyMeanNS, sum/n)
	}
}

// At exactly maxExact samples the percentiles are still exact.
func TestAccumulatorExactAtLimit(t *testing.T) {
	a := NewAccumulator(nil)
	for i := 0; i < maxExact; i++ {
		a.AddSample(Sample{ID: i, Release: 0, Done: int64(maxExact - i)}) // latencies 1..65536
	}
	m := a.Result()
	// Nearest rank: p50 = 32768th smallest = 32768; p99 = ceil(0.99·65536) = 64881.
	if !m.LatencyExact || m.LatencyP50NS != 32768 || m.LatencyP99NS != 64881 {
		t.Errorf("exact %v p50 %d p99 %d, want true 32768 64881", m.LatencyExact, m.LatencyP50NS, m.LatencyP99NS)
	}
}

func TestDefinitions(t *testing.T) {
	defs := Definitions()
	if len(defs) < 8 {
		t.Fatalf("%d definitions", len(defs))
	}
	seen := map[string]bool{}
	for _, d := range defs {
		if d.Name == "" || len(d.Text) < 40 || seen[d.Name] {
			t.Errorf("bad definition %+v", d)
		}
		seen[d.Name] = true
	}
}

func BenchmarkAccumulator(b *testing.B) {
	b.Run("span", func(b *testing.B) {
		a := NewAccumulator([]string{"d0", "d1", "d2"})
		s := Span{Device: "d1", Kind: KindStep, Samples: []int{0}, Stage: 1, FirstStep: 0, LastStep: 9}
		var i int64
		for b.Loop() {
			s.Start, s.End = i*10, i*10+10
			a.AddSpan(s)
			i++
		}
	})
	b.Run("sample", func(b *testing.B) {
		a := NewAccumulator(nil)
		var i int64
		for b.Loop() {
			a.AddSample(Sample{ID: int(i), Release: i, Done: i*10 + 10})
			i++
		}
	})
}

// TestThroughputPerPipeline checks the throughput definition on waves of
// data-parallel completions and on micro-batches, where the plain
// (N−1)/(c_N − c_1) would count a whole wave as if it came out at once.
func TestThroughputPerPipeline(t *testing.T) {
	const s = int64(1e9)
	// Three replicas, 5 samples of 2 s each: waves at 2 s (3 samples) and 4 s (2 samples).
	// Each replica runs one sample per 2 s, so the steady rate is 3/2 samples/s.
	dp := &Timeline{}
	for id := 0; id < 5; id++ {
		done := 2 * s
		if id >= 3 {
			done = 4 * s
		}
		dp.AddSample(Sample{ID: id, Pipeline: id % 3, Release: 0, Done: done})
	}
	if got := dp.Metrics().Throughput; math.Abs(got-1.5) > 1e-12 {
		t.Errorf("data parallel waves: throughput %v, want 1.5", got)
	}
	// One pipeline, micro-batches of 2: pairs done at 3 s and 5 s: 2 samples per 2 s.
	mb := &Timeline{}
	for id := 0; id < 4; id++ {
		mb.AddSample(Sample{ID: id, Release: 0, Done: (3 + 2*int64(id/2)) * s})
	}
	if got := mb.Metrics().Throughput; math.Abs(got-1.0) > 1e-12 {
		t.Errorf("micro-batches: throughput %v, want 1", got)
	}
	// One pipeline, one sample at a time: the plain (N−1)/(c_N − c_1).
	pl := &Timeline{}
	for id := 0; id < 4; id++ {
		pl.AddSample(Sample{ID: id, Release: 0, Done: (5 + 2*int64(id)) * s})
	}
	if got := pl.Metrics().Throughput; math.Abs(got-0.5) > 1e-12 {
		t.Errorf("pipeline: throughput %v, want 3/6", got)
	}
}
