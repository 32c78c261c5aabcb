// Package timeline is the result type shared by the simulator and the
// executor: spans on devices, sample release and completion times, and the
// run's metadata. Both sides emit the same type, and one metrics
// implementation (Metrics) turns any timeline into the numbers we report.
//
//	tl, err := timeline.ReadFile("out/demo/measured/timeline.json")
//	if err != nil { ... }
//	if err := tl.Validate(); err != nil { ... } // spans causal, no overlaps
//	m := tl.Metrics()                            // or a streaming Accumulator
//	for _, c := range timeline.Columns() {       // the one metric table
//		fmt.Println(c.Label, c.Text(&m))
//	}
//	err = timeline.WriteTrace(w, tl)             // Perfetto / chrome://tracing
//
// Columns is the metric table that every CLI table, JSON form and report
// reads: a metric is named, defined, read and formatted there once.
package timeline

// Kind says what a span is doing.
type Kind string

// Span kinds. Encode, Step, Decode, Host and Wait occupy a device's compute stream;
// Send and Recv occupy the device's send and receive streams.
const (
	KindEncode Kind = "encode" // image encoder (conditioning) for a sample
	KindStep   Kind = "step"   // a range of sampler steps (one or more UNet calls)
	KindDecode Kind = "decode" // VAE decode of the final latent into frames
	KindSend   Kind = "send"   // latent hand-off leaving this device
	KindRecv   Kind = "recv"   // latent hand-off arriving at this device
	KindWait   Kind = "wait"   // device blocked: a blocking send waiting for its receiver
	// KindHost is host work outside the model calls that a stage spends
	// per micro-batch: preparing its samples on the first stage (image,
	// noise, sampler state), unpacking a received micro-batch, handling
	// the outputs on the last stage.
	KindHost Kind = "host"
)

// Stream is a lane within a device on which spans never overlap.
type Stream string

// Streams of a device.
const (
	StreamCompute Stream = "compute"
	StreamSend    Stream = "send"
	StreamRecv    Stream = "recv"
)

// StreamOf returns the stream a span of kind k occupies.
func StreamOf(k Kind) Stream {
	switch k {
	case KindSend:
		return StreamSend
	case KindRecv:
		return StreamRecv
	default:
		return StreamCompute
	}
}

// Busy reports whether a span of kind k counts as useful device work for
// utilisation (encode, step, decode). Waits and transfers do not.
func Busy(k Kind) bool {
	return k == KindEncode || k == KindStep || k == KindDecode
}

// Span is one interval of work on one device. Times are integer nanoseconds
// from the run's start. FirstStep and LastStep are inclusive sampler step
// indices for KindStep spans, and -1 for every other kind.
type Span struct {
	Device    string `json:"device"`
	Kind      Kind   `json:"kind"`
	Samples   []int  `json:"samples"` // sample ids in the micro-batch (usually one)
	Pipeline  int    `json:"pipeline"`
	Stage     int    `json:"stage"`
	FirstStep int    `json:"first_step"`
	LastStep  int    `json:"last_step"`
	Start     int64  `json:"start_ns"`
	End       int64  `json:"end_ns"`
	Peer      string `json:"peer,omitempty"`   // the other device of a send or recv
	Warmup    bool   `json:"warmup,omitempty"` // contains the device's first UNet call
}

// Sample records when a sample entered the system and when its outputs were
// complete (end of its decode), in nanoseconds from the run's start.
type Sample struct {
	ID       int   `json:"id"`
	Pipeline int   `json:"pipeline"`
	Release  int64 `json:"release_ns"`
	Done     int64 `json:"done_ns"`
}

// Meta describes where a timeline came from.
type Meta struct {
	Plan     string            `json:"plan"`
	Source   string            `json:"source"` // "sim" or "exec"
	Machine  string            `json:"machine,omitempty"`
	Versions map[string]string `json:"versions,omitempty"`
	Created  string            `json:"created,omitempty"` // RFC 3339
	Devices  []string          `json:"devices"`           // lane order for charts and traces
	Profile  string            `json:"profile,omitempty"` // provenance of the costs a prediction used
	Notes    []string          `json:"notes,omitempty"`

	// The fields below let a comparison tell whether two runs are of the
	// same plan and whether a run finished. Each is optional (timelines
	// written before they existed lack them), and a writer fills what it
	// knows: the simulator the first three, the executor all five.

	// PlanHash is plan.Plan.Hash of the plan as it ran, after any what-if
	// flags: two runs of one plan have the same hash.
	PlanHash string `json:"plan_hash,omitempty"`
	// Steps is the sampler steps of every sample.
	Steps int `json:"steps,omitempty"`
	// PlannedSamples is how many samples the workload asked for; the
	// sample records are the ones that completed.
	PlannedSamples int `json:"planned_samples,omitempty"`
	// Interrupted is set when the run was stopped (SIGINT, SIGTERM) before
	// every planned sample completed.
	Interrupted bool `json:"interrupted,omitempty"`
	// Error says why the run failed part way; empty when it did not.
	Error string `json:"error,omitempty"`
}

// Finished reports whether the run that wrote the timeline says it ran to
// its end: not interrupted, no error.
func (m *Meta) Finished() bool { return !m.Interrupted && m.Error == "" }

// Timeline is a complete run: metadata, spans and per-sample records.
type Timeline struct {
	Meta    Meta     `json:"meta"`
	Spans   []Span   `json:"spans"`
	Samples []Sample `json:"samples"`
}

// Recorder receives spans and sample records as a run produces them.
// *Timeline records everything; the metrics accumulator keeps only what
// the metrics need, so that long simulations use bounded memory.
type Recorder interface {
	AddSpan(Span)
	AddSample(Sample)
}

// AddSpan appends s to the timeline.
func (t *Timeline) AddSpan(s Span) { t.Spans = append(t.Spans, s) }

// AddSample appends s to the timeline.
func (t *Timeline) AddSample(s Sample) { t.Samples = append(t.Samples, s) }
