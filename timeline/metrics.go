package timeline

import (
	"math"
	"sort"
)

// The metric definitions. Every number in Metrics is computed exactly as
// stated here, for simulated and measured timelines alike; Definitions
// returns these texts (and the one of sample latency, whose percentiles are
// those of the column table) so that a report can print them once.
const (
	DefFirstLatency = "First-sample latency: the completion (done) time of the sample that finishes first, " +
		"minus that sample's release time. Ties in completion go to the lower sample id."
	DefThroughput = "Steady-state throughput, in samples per second: the rate at which samples come out " +
		"once the pipeline is full, so pipeline fill does not count. For one pipeline fed one sample at a " +
		"time it is (N−1)/(c_N − c_1) with completions c_1 ≤ … ≤ c_N. In general it is the sum over " +
		"pipelines (replicas) of each one's rate (n − k)/(c_last − c_first), where k samples finished " +
		"together at its first completion c_first (its first micro-batch); a pipeline whose samples all " +
		"finished together counts n / (their latency). So data parallel with fewer samples than a full " +
		"wave per device is not credited with the gap between waves. With arrivals (release times " +
		"differ) the same formula reads as completions per second after each pipeline's first completion. " +
		DefSteadyState
	// DefSteadyState is the rule that says when the steady-state
	// throughput means something; the README quotes it.
	DefSteadyState = "The figure is reported only when every pipeline spent at least as long between its first and its last " +
		"completion as it took to reach its first completion (from the start of the run): at least half of each " +
		"pipeline's run was steady. Otherwise it is marked n/a (too few samples) in tables and reports, " +
		"throughput_too_few_samples is true in JSON, and comparisons and rankings use the overall throughput " +
		"(samples / makespan) instead. For a pipeline of S equal stages fed all at once this asks for about S " +
		"completions after its first (one for data parallel, whose steady state starts with its first sample); " +
		"with fewer, the fill the figure leaves out is most of the run, and a layout that is slower end to end " +
		"can show the higher figure. When the rule holds, one pipeline's overall throughput is at least half its " +
		"steady-state figure."
	DefOverallThroughput = "Overall throughput, in samples per second: samples / makespan, what the run delivered " +
		"with pipeline fill and drain included. It is what rankings use when the steady-state throughput is n/a."
	DefMakespan = "Makespan: from the origin, the earlier of the first release and the first span start, " +
		"to the later of the last done time and the last span end."
	DefBusy = "Busy time of a device: the sum of its encode, step and decode spans (its compute work; " +
		"they never overlap on a device). Waits and transfers are not busy time."
	DefUtilisation = "Utilisation of a device: busy time / makespan. Its bubble fraction is 1 − utilisation."
	DefIdle        = "Idle time of a device, makespan − busy, split three ways: fill, from the origin to the " +
		"start of its first busy span; drain, from the end of its last busy span to the end of the " +
		"makespan; between, the rest (gaps between its busy spans, including waits). A device with no " +
		"busy span is all fill."
	DefStageBusy = "Stage busy time: the busy time of the spans of one (pipeline, stage) pair, whichever " +
		"device ran them, so that a prediction and a measurement compare stage by stage."
	DefWarmup = "Warm-up: spans flagged warm-up contain a device's first UNet call, which is slower than a " +
		"steady step; their total time is reported per device and overall, and is included in busy time."
)

// Definition is a metric's name and its definition in words.
type Definition struct {
	Name string
	Text string
}

// Definitions returns the definition of every metric in Metrics, in the
// order a report should print them.
func Definitions() []Definition {
	return []Definition{
		{"first-sample latency", DefFirstLatency},
		{"steady-state throughput", DefThroughput},
		{"overall throughput", DefOverallThroughput},
		{"makespan", DefMakespan},
		{"sample latency", latencyDefinition()},
		{"busy time", DefBusy},
		{"utilisation", DefUtilisation},
		{"idle (fill, drain, between)", DefIdle},
		{"stage busy time", DefStageBusy},
		{"warm-up", DefWarmup},
	}
}

// Metrics is what one run amounts to. Times are integer nanoseconds; rates
// and fractions are float64 (rates per second). See Definitions.
//
// Its JSON form is the struct itself (the json tags, snake_case with the
// unit in the name) followed by every column of the table (Columns) that is
// not one of its fields, such as the latency percentiles beyond p50, p95
// and p99: see MarshalJSON. Fields tagged "-" are bookkeeping that the JSON
// form has never carried.
type Metrics struct {
	Samples int `json:"samples"` // sample records seen

	FirstLatencyNS int64 `json:"first_latency_ns"` // see DefFirstLatency
	FirstSample    int   `json:"first_sample"`     // id of the first finished sample, -1 if none

	Throughput float64 `json:"throughput_per_s"` // samples per second, see DefThroughput
	// TooFewSamples is set when too few completions followed a pipeline's
	// first for Throughput to mean anything (see DefSteadyState): tables
	// show it as n/a, and rankings use OverallThroughput.
	TooFewSamples bool `json:"throughput_too_few_samples"`
	// OverallThroughput is Samples / makespan, samples per second (see
	// DefOverallThroughput).
	OverallThroughput float64 `json:"overall_throughput_per_s"`
	// Batch is true when every sample had the same release time.
	Batch bool `json:"-"`
	// ThroughputWindowNS is c_N − c_1 over all samples (for reference; the
	// throughput itself is computed per pipeline, see DefThroughput).
	ThroughputWindowNS int64 `json:"throughput_window_ns"`

	OriginNS   int64 `json:"-"`           // start of the makespan
	EndNS      int64 `json:"-"`           // end of the makespan
	MakespanNS int64 `json:"makespan_ns"` // EndNS − OriginNS, see DefMakespan

	// Sample latency, see Definitions ("sample latency"). The three
	// percentiles every JSON form has carried are fields; any percentile
	// comes from LatencyPercentileNS.
	LatencyMeanNS float64 `json:"latency_mean_ns"`
	LatencyP50NS  int64   `json:"latency_p50_ns"`
	LatencyP95NS  int64   `json:"latency_p95_ns"`
	LatencyP99NS  int64   `json:"latency_p99_ns"`
	LatencyMinNS  int64   `json:"latency_min_ns"`
	LatencyMaxNS  int64   `json:"latency_max_ns"`
	// LatencyExact is false when the percentiles come from the histogram.
	LatencyExact bool `json:"latency_exact"`

	WarmupNS    int64 `json:"warmup_ns"` // total time in warm-up spans, all devices
	WarmupSpans int   `json:"-"`

	Devices []DeviceMetrics `json:"devices"` // in the order given to NewAccumulator, then first appearance
	Stages  []StageMetrics  `json:"stages"`  // sorted by pipeline, then stage

	SpanCounts map[Kind]int `json:"span_counts"` // spans by kind

	// latency is the distribution the percentiles are read from; nil for
	// Metrics that no Accumulator made (decoded from JSON, built by hand).
	latency *latencyDist
}

// DeviceMetrics are the per-device numbers. See DefBusy, DefUtilisation,
// DefIdle and DefWarmup.
type DeviceMetrics struct {
	Device      string  `json:"device"`
	BusyNS      int64   `json:"busy_ns"`
	Utilisation float64 `json:"utilisation"`
	IdleNS      int64   `json:"idle_ns"` // makespan − busy = FillNS + DrainNS + BetweenNS
	FillNS      int64   `json:"fill_ns"`
	DrainNS     int64   `json:"drain_ns"`
	BetweenNS   int64   `json:"between_ns"`
	WaitNS      int64   `json:"wait_ns"`   // time in wait spans (part of the idle time)
	SendNS      int64   `json:"send_ns"`   // time on the send stream
	RecvNS      int64   `json:"recv_ns"`   // time on the receive stream
	WarmupNS    int64   `json:"warmup_ns"` // time in warm-up spans
	Spans       int     `json:"-"`         // spans of any kind on this device
	FirstBusyNS int64   `json:"-"`         // start of the first busy span, -1 if none
	LastBusyNS  int64   `json:"-"`         // end of the last busy span, -1 if none
}

// StageKey names a stage of a pipeline.
type StageKey struct {
	Pipeline int `json:"pipeline"`
	Stage    int `json:"stage"`
}

// StageMetrics are the busy time of one (pipeline, stage), see DefStageBusy.
type StageMetrics struct {
	StageKey
	Devices   []string `json:"devices"` // devices that ran this stage's spans, in first-seen order
	BusyNS    int64    `json:"busy_ns"`
	StepNS    int64    `json:"step_ns"` // of which step spans
	BusySpans int      `json:"-"`
}

// Summary is a run in brief: where its timeline came from and its metrics.
// It is what a report or a study keeps of a run whose spans are not needed
// (or were never kept).
type Summary struct {
	Meta    Meta
	Metrics Metrics
}

// Summary returns the metadata and the metrics of t.
func (t *Timeline) Summary() *Summary {
	return &Summary{Meta: t.Meta, Metrics: t.Metrics()}
}

// Seconds converts integer nanoseconds to float64 seconds.
func Seconds(ns int64) float64 { return float64(ns) / 1e9 }

// maxExact is how many latencies the accumulator keeps for exact
// percentiles before it switches to the histogram.
const maxExact = 65536

// histGamma is the ratio between consecutive histogram bucket bounds. A
// value in [γ^i, γ^(i+1)) is reported as 2γ^(i+1)/(1+γ), whose relative
// error is at most (γ−1)/(γ+1) < 0.5%.
const histGamma = 1.01

type devAcc struct {
	m DeviceMetrics
}

type stageAcc struct {
	m    StageMetrics
	seen map[string]bool
}

// Accumulator computes Metrics from a stream of spans and sample records.
// It implements Recorder, so a simulator can feed it directly instead of a
// Timeline. Its memory does not grow with the number of samples beyond the
// first 65536 latencies (then a fixed-size histogram takes over); it grows
// only with the number of devices and stages. Spans and samples may arrive
// in any order. It is not safe for concurrent use.
type Accumulator struct {
	devices map[string]*devAcc
	devList []*devAcc
	stages  map[StageKey]*stageAcc

	counts      [len(kindOrder) + 1]int // by kindIndex; the last counts unknown kinds
	other       map[Kind]int            // unknown kinds by name
	lastDev     *devAcc
	lastStage   *stageAcc
	warmupNS    int64
	warmupSpans int

	haveSpan         bool
	spanMin, spanMax int64
	haveSample       bool
	relMin, doneMax  int64
	firstRelease     int64
	sameRelease      bool
	pipes            map[int]*pipeAcc // per pipeline completions, for throughput
	nSamples         int
	firstDone        int64
	firstID          int
	firstLat         int64
	doneMin          int64

	latSum   float64
	latMin   int64
	latMax   int64
	exact    []int64
	hist     []int64 // counts per log bucket
	histZero int64   // latencies of 0 ns
	useHist  bool
}

var _ Recorder = (*Accumulator)(nil)

// NewAccumulator returns an empty accumulator. devices fixes the order of
// the per-device metrics (and makes devices that never ran a span show up
// with zero busy time); devices not listed are appended as they appear.
func NewAccumulator(devices []string) *Accumulator {
	a := &Accumulator{
		devices:     make(map[string]*devAcc, len(devices)),
		stages:      make(map[StageKey]*stageAcc),
		sameRelease: true,
		firstID:     -1,
		pipes:       make(map[int]*pipeAcc),
	}
	for _, d := range devices {
		a.device(d)
	}
	return a
}

// kindOrder lists the known kinds; kindIndex maps a kind to its position.
var kindOrder = [...]Kind{KindEncode, KindStep, KindDecode, KindSend, KindRecv, KindWait, KindHost}

func kindIndex(k Kind) int {
	switch k {
	case KindEncode:
		return 0
	case KindStep:
		return 1
	case KindDecode:
		return 2
	case KindSend:
		return 3
	case KindRecv:
		return 4
	case KindWait:
		return 5
	case KindHost:
		return 6
	}
	return len(kindOrder)
}

func (a *Accumulator) device(name string) *devAcc {
	if a.lastDev != nil && a.lastDev.m.Device == name {
		return a.lastDev
	}
	d := a.devices[name]
	if d == nil {
		d = &devAcc{m: DeviceMetrics{Device: name, FirstBusyNS: -1, LastBusyNS: -1}}
		a.devices[name] = d
		a.devList = append(a.devList, d)
	}
	a.lastDev = d
	return d
}

// AddSpan accounts for one span.
func (a *Accumulator) AddSpan(s Span) {
	if !a.haveSpan {
		a.spanMin, a.spanMax, a.haveSpan = s.Start, s.End, true
	} else {
		a.spanMin = min(a.spanMin, s.Start)
		a.spanMax = max(a.spanMax, s.End)
	}
	if i := kindIndex(s.Kind); i < len(kindOrder) {
		a.counts[i]++
	} else {
		if a.other == nil {
			a.other = make(map[Kind]int)
		}
		a.other[s.Kind]++
	}
	d := a.device(s.Device)
	d.m.Spans++
	dur := s.End - s.Start
	if s.Warmup {
		a.warmupNS += dur
		a.warmupSpans++
		d.m.WarmupNS += dur
	}
	switch s.Kind {
	case KindWait:
		d.m.WaitNS += dur
	case KindSend:
		d.m.SendNS += dur
	case KindRecv:
		d.m.RecvNS += dur
	}
	if !Busy(s.Kind) {
		return
	}
	d.m.BusyNS += dur
	if d.m.FirstBusyNS < 0 || s.Start < d.m.FirstBusyNS {
		d.m.FirstBusyNS = s.Start
	}
	if s.End > d.m.LastBusyNS {
		d.m.LastBusyNS = s.End
	}
	k := StageKey{s.Pipeline, s.Stage}
	st := a.lastStage
	if st == nil || st.m.StageKey != k {
		st = a.stages[k]
		if st == nil {
			st = &stageAcc{m: StageMetrics{StageKey: k}, seen: make(map[string]bool)}
			a.stages[k] = st
		}
		a.lastStage = st
	}
	st.m.BusyNS += dur
	st.m.BusySpans++
	if s.Kind == KindStep {
		st.m.StepNS += dur
	}
	if len(st.m.Devices) == 1 && st.m.Devices[0] == s.Device {
		return // the common case: a stage runs on one device
	}
	if !st.seen[s.Device] {
		st.seen[s.Device] = true
		st.m.Devices = append(st.m.Devices, s.Device)
	}
}

// AddSample accounts for one sample record.
func (a *Accumulator) AddSample(s Sample) {
	lat := s.Done - s.Release
	if !a.haveSample {
		a.haveSample = true
		a.relMin, a.doneMax, a.doneMin = s.Release, s.Done, s.Done
		a.firstRelease = s.Release
		a.firstDone, a.firstID, a.firstLat = s.Done, s.ID, lat
		a.latMin, a.latMax = lat, lat
	} else {
		a.relMin = min(a.relMin, s.Release)
		a.doneMax = max(a.doneMax, s.Done)
		a.doneMin = min(a.doneMin, s.Done)
		a.latMin = min(a.latMin, lat)
		a.latMax = max(a.latMax, lat)
		if s.Release != a.firstRelease {
			a.sameRelease = false
		}
		if s.Done < a.firstDone || (s.Done == a.firstDone && s.ID < a.firstID) {
			a.firstDone, a.firstID, a.firstLat = s.Done, s.ID, lat
		}
	}
	pa := a.pipes[s.Pipeline]
	if pa == nil {
		pa = &pipeAcc{first: s.Done, last: s.Done, firstLat: lat}
		a.pipes[s.Pipeline] = pa
	}
	pa.add(s.Done, lat)
	a.nSamples++
	a.latSum += float64(lat)
	if !a.useHist {
		a.exact = append(a.exact, lat)
		if len(a.exact) > maxExact {
			a.useHist = true
			for _, v := range a.exact {
				a.histAdd(v)
			}
			a.exact = nil
		}
	} else {
		a.histAdd(lat)
	}
}

// bucket returns the histogram bucket of v > 0: floor(log_γ v).
func bucket(v int64) int {
	return int(math.Floor(math.Log(float64(v)) / math.Log(histGamma)))
}

func (a *Accumulator) histAdd(v int64) {
	if v <= 0 {
		a.histZero++
		return
	}
	b := bucket(v)
	if b >= len(a.hist) {
		a.hist = append(a.hist, make([]int64, b+1-len(a.hist))...)
	}
	a.hist[b]++
}

// rank returns the nearest rank (1-based) of percentile p among n values.
func rank(p float64, n int) int {
	r := int(math.Ceil(p / 100 * float64(n)))
	return max(1, min(r, n))
}

// latencyDist is what the latency percentiles of a Metrics are read from:
// every sample latency, sorted, while there are at most maxExact of them;
// else the accumulator's log-bucketed histogram. It is never changed once
// made, so copies of a Metrics share it.
type latencyDist struct {
	n        int
	exact    bool
	sorted   []int64 // ascending, when exact
	hist     []int64 // counts per log bucket, when not exact
	zero     int64   // latencies of 0 ns in the histogram
	min, max int64
}

// latencyDist returns the distribution of the latencies added so far.
func (a *Accumulator) latencyDist() *latencyDist {
	d := &latencyDist{n: a.nSamples, exact: !a.useHist, zero: a.histZero, min: a.latMin, max: a.latMax}
	if d.exact {
		d.sorted = append([]int64(nil), a.exact...)
		sort.Slice(d.sorted, func(i, j int) bool { return d.sorted[i] < d.sorted[j] })
	} else {
		d.hist = append([]int64(nil), a.hist...)
	}
	return d
}

// percentile returns the p-th percentile by nearest rank (see
// Definitions): exact, or the estimate of the histogram bucket that holds
// that rank, kept within [min, max].
func (d *latencyDist) percentile(p float64) int64 {
	if d.n == 0 {
		return 0
	}
	r := rank(p, d.n)
	if d.exact {
		return d.sorted[r-1]
	}
	seen := d.zero
	if int64(r) <= seen {
		return 0
	}
	for b, c := range d.hist {
		seen += c
		if int64(r) <= seen {
			est := int64(math.Round(2 * math.Pow(histGamma, float64(b+1)) / (1 + histGamma)))
			return max(d.min, min(est, d.max))
		}
	}
	return d.max
}

// LatencyPercentileNS returns the p-th percentile of the sample latencies
// (0 < p ≤ 100) by nearest rank, as Definitions states: exact while
// LatencyExact, else from the histogram (within 0.5%); 0 without samples.
// Metrics that no Accumulator made (decoded from JSON, say) know only the
// percentiles stored in their fields (50, 95, 99): for any other p, ok is
// false.
func (m *Metrics) LatencyPercentileNS(p float64) (ns int64, ok bool) {
	if m.latency != nil {
		return m.latency.percentile(p), true
	}
	switch p {
	case 50:
		return m.LatencyP50NS, true
	case 95:
		return m.LatencyP95NS, true
	case 99:
		return m.LatencyP99NS, true
	}
	return 0, false
}

// Result returns the metrics of everything added so far. It does not
// change the accumulator; more spans and samples may follow.
func (a *Accumulator) Result() Metrics {
	m := Metrics{
		Samples:      a.nSamples,
		FirstSample:  -1,
		SpanCounts:   make(map[Kind]int),
		WarmupNS:     a.warmupNS,
		WarmupSpans:  a.warmupSpans,
		LatencyExact: !a.useHist,
	}
	for i, k := range kindOrder {
		if a.counts[i] > 0 {
			m.SpanCounts[k] = a.counts[i]
		}
	}
	for k, v := range a.other {
		m.SpanCounts[k] = v
	}
	switch {
	case a.haveSpan && a.haveSample:
		m.OriginNS, m.EndNS = min(a.spanMin, a.relMin), max(a.spanMax, a.doneMax)
	case a.haveSpan:
		m.OriginNS, m.EndNS = a.spanMin, a.spanMax
	case a.haveSample:
		m.OriginNS, m.EndNS = a.relMin, a.doneMax
	}
	m.MakespanNS = m.EndNS - m.OriginNS

	m.latency = a.latencyDist()
	if a.haveSample {
		m.FirstSample = a.firstID
		m.FirstLatencyNS = a.firstLat
		m.Batch = a.sameRelease
		m.ThroughputWindowNS = a.doneMax - a.doneMin
		m.Throughput = a.throughput()
		m.TooFewSamples = !a.steady(m.OriginNS)
		if m.MakespanNS > 0 {
			m.OverallThroughput = float64(a.nSamples) / Seconds(m.MakespanNS)
		}
		m.LatencyMeanNS = a.latSum / float64(a.nSamples)
		m.LatencyMinNS, m.LatencyMaxNS = a.latMin, a.latMax
		m.LatencyP50NS = m.latency.percentile(50)
		m.LatencyP95NS = m.latency.percentile(95)
		m.LatencyP99NS = m.latency.percentile(99)
	}

	for _, d := range a.devList {
		dm := d.m
		dm.IdleNS = m.MakespanNS - dm.BusyNS
		if m.MakespanNS > 0 {
			dm.Utilisation = float64(dm.BusyNS) / float64(m.MakespanNS)
		}
		if dm.FirstBusyNS < 0 {
			dm.FillNS = dm.IdleNS
		} else {
			dm.FillNS = dm.FirstBusyNS - m.OriginNS
			dm.DrainNS = m.EndNS - dm.LastBusyNS
			dm.BetweenNS = dm.IdleNS - dm.FillNS - dm.DrainNS
		}
		m.Devices = append(m.Devices, dm)
	}

	keys := make([]StageKey, 0, len(a.stages))
	for k := range a.stages {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].Pipeline != keys[j].Pipeline {
			return keys[i].Pipeline < keys[j].Pipeline
		}
		return keys[i].Stage < keys[j].Stage
	})
	for _, k := range keys {
		sm := a.stages[k].m
		sm.Devices = append([]string(nil), sm.Devices...)
		m.Stages = append(m.Stages, sm)
	}
	return m
}

// Metrics computes the metrics of t by feeding it through an Accumulator,
// with devices in the order of t.Meta.Devices. It is the one metrics
// implementation: the simulator's streaming path gives the same numbers.
func (t *Timeline) Metrics() Metrics {
	a := NewAccumulator(t.Meta.Devices)
	for _, s := range t.Spans {
		a.AddSpan(s)
	}
	for _, s := range t.Samples {
		a.AddSample(s)
	}
	return a.Result()
}

// Device returns the metrics of the named device and whether it was found.
func (m *Metrics) Device(name string) (DeviceMetrics, bool) {
	for _, d := range m.Devices {
		if d.Device == name {
			return d, true
		}
	}
	return DeviceMetrics{}, false
}

// Stage returns the metrics of the given stage and whether it was found.
func (m *Metrics) Stage(pipeline, stage int) (StageMetrics, bool) {
	for _, s := range m.Stages {
		if s.Pipeline == pipeline && s.Stage == stage {
			return s, true
		}
	}
	return StageMetrics{}, false
}

// pipeAcc is what throughput needs of one pipeline's completions.
type pipeAcc struct {
	n        int   // samples completed
	k        int   // samples completed at first
	first    int64 // earliest done time
	last     int64 // latest done time
	firstLat int64 // latency of a sample done at first
}

func (p *pipeAcc) add(done, lat int64) {
	switch {
	case p.n == 0 || done < p.first:
		p.first, p.k, p.firstLat = done, 1, lat
	case done == p.first:
		p.k++
		p.firstLat = min(p.firstLat, lat)
	}
	p.last = max(p.last, done)
	p.n++
}

// steady reports whether every pipeline's steady window (first to last
// completion) is at least as long as its time to its first completion from
// origin (see DefSteadyState).
func (a *Accumulator) steady(origin int64) bool {
	if len(a.pipes) == 0 {
		return false
	}
	for _, p := range a.pipes {
		if p.n <= p.k || p.last-p.first < p.first-origin {
			return false
		}
	}
	return true
}

// ThroughputForRanking returns the figure two or more runs are ranked by
// and its name: the steady-state throughput when it is meaningful in
// every one of them, else the overall throughput (samples / makespan) of
// each (see DefSteadyState). The values are in the order of ms.
func ThroughputForRanking(ms ...*Metrics) (values []float64, name string) {
	steady := true
	for _, m := range ms {
		if m.TooFewSamples {
			steady = false
		}
	}
	for _, m := range ms {
		if steady {
			values = append(values, m.Throughput)
		} else {
			values = append(values, m.OverallThroughput)
		}
	}
	if steady {
		return values, "steady-state throughput"
	}
	return values, "overall throughput (samples / makespan; too few samples for a steady state)"
}

// throughput sums the pipelines' rates (see DefThroughput), in pipeline
// order so that the floating-point sum does not depend on map order.
func (a *Accumulator) throughput() float64 {
	ids := make([]int, 0, len(a.pipes))
	for id := range a.pipes {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	var sum float64
	for _, id := range ids {
		p := a.pipes[id]
		switch {
		case p.last > p.first:
			sum += float64(p.n-p.k) / Seconds(p.last-p.first)
		case p.firstLat > 0:
			sum += float64(p.n) / Seconds(p.firstLat)
		}
	}
	return sum
}
