package plan

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Profile is a cost profile: what each piece of work costs on a device kind
// for one model shape, and what each link kind costs. Every profile records
// where its numbers came from (Provenance); a prediction made from an
// estimated or published profile says so.
type Profile struct {
	Provenance Provenance             `yaml:"provenance"`
	Model      ProfileModel           `yaml:"model"`
	Devices    map[string]DeviceCosts `yaml:"devices"` // keyed by Device.Kind
	Links      map[string]LinkCosts   `yaml:"links"`   // keyed by link kind
	Transports map[string]LinkCosts   `yaml:"transports"`

	File string `yaml:"-"`
}

// Provenance says where a profile's numbers came from. Source, Date and one
// of Machine (measured) or Reference (publication, estimate, calibrated:
// vdsim calibrate names the runs it fitted) must be set.
type Provenance struct {
	Source    string `yaml:"source"` // measured | publication | estimate | calibrated
	Date      string `yaml:"date"`   // YYYY-MM-DD
	Machine   string `yaml:"machine"`
	Runtime   string `yaml:"runtime"`   // e.g. "onnxruntime 1.24.3 cpu, go1.26.8"
	Reference string `yaml:"reference"` // publication or method for non-measured numbers
	Notes     string `yaml:"notes"`
}

// ProfileModel is the model shape the profile was measured for.
type ProfileModel struct {
	Family string `yaml:"family"`
	Frames int    `yaml:"frames"`
	Latent Latent `yaml:"latent"`
	Dtype  string `yaml:"dtype"`
	CFG    bool   `yaml:"cfg"`
}

// DeviceCosts are the costs of one device kind. Times are milliseconds.
type DeviceCosts struct {
	// UNetMS is the time of one sampler step (one UNet call, both CFG halves
	// when the plan uses CFG) keyed by micro-batch size.
	UNetMS map[int]float64 `yaml:"unet_ms"`
	// FirstCallMS is the time of a device's first UNet call, which it takes
	// instead of UNetMS (graph compilation, allocator warm-up). Keyed by
	// micro-batch size like UNetMS; a missing size costs its UNetMS time
	// plus the extra warm-up measured at batch 1 (see FirstCallNS).
	FirstCallMS map[int]float64 `yaml:"first_call_ms"`
	EncodeMS    float64         `yaml:"encode_ms"` // per sample
	DecodeMS    float64         `yaml:"decode_ms"` // per sample
	// EncodeFirstMS and DecodeFirstMS are a device's first encode and
	// decode calls, in order, each of one sample: the i-th takes the
	// place of encode_ms (decode_ms) in the device's i-th call (a fresh
	// session's warm-up, which may last several calls; one that is not
	// slower adds nothing). Empty: no warm-up. At most MaxWarmCalls.
	EncodeFirstMS []float64 `yaml:"encode_first_ms,flow,omitempty"`
	DecodeFirstMS []float64 `yaml:"decode_first_ms,flow,omitempty"`
	// HostMSPerStep is per-step host work outside the UNet call (sampler
	// math, copies), per micro-batch.
	HostMSPerStep float64 `yaml:"host_ms_per_step"`
	// SampleFirstMS is per-sample host work on a pipeline's first stage
	// outside the encode call: taking the sample, its conditioning image,
	// its seeded noise and sampler state. Paid per sample, before encode.
	SampleFirstMS float64 `yaml:"sample_first_ms,omitempty"`
	// SampleLastMS is per-sample host work on a pipeline's last stage after
	// the decode call: handing the outputs to the writer, the sample's
	// record. Paid per sample, after decode.
	SampleLastMS float64 `yaml:"sample_last_ms,omitempty"`
	// Jitter is the relative standard deviation of a step's time (0: none).
	Jitter float64 `yaml:"jitter"`
	// Drift is the relative uncertainty of the costs' scale: how much the
	// mean UNet call moved between repeated profile passes, (max − min) /
	// mean over the passes (0: not measured). Predicted ranges draw a cost
	// scale within ±Drift: a run may be as far from the profile as one
	// pass was from the other.
	Drift  float64     `yaml:"drift,omitempty"`
	Memory MemoryCosts `yaml:"memory_gb"`
}

// MaxWarmCalls bounds encode_first_ms and decode_first_ms.
const MaxWarmCalls = 64

// MemoryCosts are the device memory needs in GiB (2³⁰ bytes), the unit of
// a device's memory_gb (24 for a 24 GiB card).
type MemoryCosts struct {
	UNet                 float64 `yaml:"unet"`
	Encoder              float64 `yaml:"encoder"`
	Decoder              float64 `yaml:"decoder"`
	ActivationsPerSample float64 `yaml:"activations_per_sample"`
	Runtime              float64 `yaml:"runtime"` // per-process runtime/context overhead
}

// NeedGB is the memory a device needs in GiB: UNet weights, runtime and
// activations for a micro-batch of microBatch samples, plus the encoder and
// decoder weights when it runs them. The plan's check and the simulator's
// memory table both use it.
func (m MemoryCosts) NeedGB(microBatch int, encode, decode bool) float64 {
	need := m.UNet + m.Runtime + m.ActivationsPerSample*float64(microBatch)
	if encode {
		need += m.Encoder
	}
	if decode {
		need += m.Decoder
	}
	return need
}

// LinkCosts are the costs of one link kind: a transfer of b bytes takes
// LatencyUS + b/BandwidthGBps, and the first transfer over a link also pays
// SetupMS (lazy connection set-up, as NCCL does on its first send).
//
// SetupMS is measured per pair of devices: time the first send of a latent
// between the two (after both sides have started), then the median of the
// next sends of the same size; SetupMS is the first minus that median. With
// NCCL this is the communicator's lazy connection set-up; with tcp, the
// dial; with inproc it is about 0.
//
// ReceiveUS is the receiver's host time per hand-off after the transfer
// and before its compute starts (waking the receiving worker, unpacking
// the message): it occupies the receiving stage only, not the sender.
//
// SetupMSPerRank is the extra first-use set-up per rank of the run beyond
// two (ranks: the devices the plan's pipelines use), for transports whose
// set-up grows with the number of ranks or links set up at once: the
// set-up of a link is SetupMS + SetupMSPerRank × (ranks − 2).
type LinkCosts struct {
	LatencyUS      float64 `yaml:"latency_us"`
	BandwidthGBps  float64 `yaml:"bandwidth_gbps"` // 1 GB = 1e9 bytes
	SetupMS        float64 `yaml:"setup_ms"`
	SetupMSPerRank float64 `yaml:"setup_ms_per_rank,omitempty"`
	ReceiveUS      float64 `yaml:"receive_us,omitempty"`
}

// ms converts milliseconds to integer nanoseconds, rounding to nearest.
func ms(v float64) int64 { return int64(math.Round(v * 1e6)) }

// StepNS is the time of one sampler step for a micro-batch of size batch,
// in nanoseconds, before the device's speed factor. Sizes missing from
// UNetMS are interpolated linearly between the nearest measured sizes;
// past the largest measured size, time grows in proportion to the batch.
// It reports false when UNetMS is empty or batch < 1.
func (d DeviceCosts) StepNS(batch int) (int64, bool) {
	return interpBatch(d.UNetMS, batch)
}

// FirstCallNS is the time of a device's first UNet call for a micro-batch
// of size batch (it replaces one StepNS). Without FirstCallMS it equals
// StepNS.
func (d DeviceCosts) FirstCallNS(batch int) (int64, bool) {
	if len(d.FirstCallMS) == 0 {
		return d.StepNS(batch)
	}
	if v, ok := d.FirstCallMS[batch]; ok {
		return ms(v), true
	}
	base, ok := d.StepNS(batch)
	if !ok {
		return 0, false
	}
	one, ok1 := d.FirstCallMS[1]
	step1, ok2 := d.StepNS(1)
	if !ok1 || !ok2 {
		return interpBatch(d.FirstCallMS, batch)
	}
	// Same extra warm-up cost as measured at batch 1.
	return base + ms(one) - step1, true
}

func interpBatch(m map[int]float64, batch int) (int64, bool) {
	v, _, _, ok := interpBatchMS(m, batch)
	if !ok {
		return 0, false
	}
	return ms(v), true
}

// interpBatchMS is interpBatch in milliseconds, unrounded, with the sizes
// it used: lo and hi are the measured sizes below and above batch (-1
// where there is none; both -1 when batch itself is measured).
func interpBatchMS(m map[int]float64, batch int) (v float64, lo, hi int, ok bool) {
	if len(m) == 0 || batch < 1 {
		return 0, -1, -1, false
	}
	if v, ok := m[batch]; ok {
		return v, -1, -1, true
	}
	lo, hi = -1, -1
	for k := range m {
		if k < batch && k > lo {
			lo = k
		} else if k > batch && (hi < 0 || k < hi) {
			hi = k
		}
	}
	switch {
	case lo < 0: // below the smallest: proportional to the smallest
		return m[hi] * float64(batch) / float64(hi), lo, hi, true
	case hi < 0: // past the largest: proportional to the largest
		return m[lo] * float64(batch) / float64(lo), lo, hi, true
	default:
		f := float64(batch-lo) / float64(hi-lo)
		return m[lo] + f*(m[hi]-m[lo]), lo, hi, true
	}
}

// TransferNS is the time to move b bytes over the link, without set-up.
func (l LinkCosts) TransferNS(b int64) int64 {
	t := l.LatencyUS * 1e3
	if l.BandwidthGBps > 0 {
		t += float64(b) / l.BandwidthGBps // bytes / (1e9 B/s) = ns
	}
	return int64(math.Round(t))
}

// SetupNS is the first-use set-up cost of the link in a run of ranks
// ranks (devices on the plan's pipelines): SetupMS + SetupMSPerRank ×
// (ranks − 2), never below SetupMS.
func (l LinkCosts) SetupNS(ranks int) int64 {
	return int64(math.Round(min(l.SetupNSFloat(ranks), MaxTimeNS))) // a valid plan is far below; an unchecked profile does not overflow
}

// SetupNSFloat is SetupNS unrounded, for bounds that must not overflow.
func (l LinkCosts) SetupNSFloat(ranks int) float64 {
	return (l.SetupMS + l.SetupMSPerRank*float64(max(ranks-2, 0))) * 1e6
}

// ReceiveNS is the receiver's host time per hand-off.
func (l LinkCosts) ReceiveNS() int64 { return int64(math.Round(l.ReceiveUS * 1e3)) }

// Clone returns a copy of the profile whose Devices, Links and Transports
// maps are its own, so that a caller can replace their entries (a
// DeviceCosts value's own maps and slices are still shared: replace them,
// do not write into them).
func (pr *Profile) Clone() *Profile {
	q := *pr
	q.Devices = maps.Clone(pr.Devices)
	q.Links = maps.Clone(pr.Links)
	q.Transports = maps.Clone(pr.Transports)
	return &q
}

// ProvenanceString renders the profile's provenance in one line, as a
// timeline's Meta.Profile records it: source, date, machine, runtime,
// reference and file. A nil profile gives "".
func (pr *Profile) ProvenanceString() string {
	if pr == nil {
		return ""
	}
	v := pr.Provenance
	var parts []string
	add := func(s, prefix, suffix string) {
		if s != "" {
			parts = append(parts, prefix+s+suffix)
		}
	}
	add(v.Source, "", "")
	add(v.Date, "", "")
	add(v.Machine, "on ", "")
	add(v.Runtime, "(", ")")
	add(v.Reference, "from ", "")
	add(pr.File, "[", "]")
	return strings.Join(parts, " ")
}

// Marshal encodes the profile as YAML that ParseProfile reads back.
func (pr *Profile) Marshal() ([]byte, error) {
	b, err := yaml.Marshal(pr)
	if err != nil {
		return nil, fmt.Errorf("plan: profile: %w", err)
	}
	return b, nil
}

// name is the profile's file for messages, or what stands for it.
func (pr *Profile) name() string {
	if pr.File == "" {
		return "(built in code)"
	}
	return pr.File
}

// SplitWarm splits a session's calls of one kind (encode or decode), one
// sample each, in the order they ran (ms), into its warm-up and its steady
// time: the steady time is the mean of the calls after the warm-up, which
// is the leading calls slower than 1.1 × the median of all but the first
// (at most MaxWarmCalls, and never every call). The profile
// (encode_first_ms, decode_first_ms) and hindsight read calls this way.
func SplitWarm(calls []float64) (warm []float64, steady float64) {
	if len(calls) == 0 {
		return nil, 0
	}
	if len(calls) == 1 {
		return nil, calls[0]
	}
	rest := append([]float64(nil), calls[1:]...)
	slices.Sort(rest)
	med := rest[len(rest)/2]
	if len(rest)%2 == 0 {
		med = (rest[len(rest)/2-1] + rest[len(rest)/2]) / 2
	}
	n := 0
	for n < len(calls)-1 && n < MaxWarmCalls && calls[n] > 1.1*med {
		n++
	}
	sum := 0.0
	for _, v := range calls[n:] {
		sum += v
	}
	return append([]float64(nil), calls[:n]...), sum / float64(len(calls)-n)
}

// SplitWarmCalls is SplitWarm for calls of micro-batches: durs[i] is the
// time of a call of batch[i] samples (ms). The calls are compared by their
// time per sample; a warm-up call is returned as the time of one sample
// that carries the call's whole warm-up, durs[i] − (batch[i] − 1) ×
// steady, which is how WorkNS adds it back to a micro-batch of any size.
// A batch missing from batch counts as 1; a warm-up call is never below
// the steady time (an outlier among the later calls can raise their mean).
func SplitWarmCalls(durs []float64, batch []int) (warm []float64, steady float64) {
	b := func(i int) float64 {
		if i < len(batch) {
			return float64(max(batch[i], 1))
		}
		return 1
	}
	per := make([]float64, len(durs))
	for i, d := range durs {
		per[i] = d / b(i)
	}
	w, steady := SplitWarm(per)
	for i := range w {
		w[i] = max(durs[i]-(b(i)-1)*steady, steady)
	}
	return w, steady
}

// FirstCallMS is the first UNet call that a device's first step span
// carries (spanMS for steps steps): the span less its other steps at the
// steady step time (stepMS + hostMS each) and the first step's host time,
// never below stepMS (a first call that ran faster than the steady ones
// is a steady one; a profile's first call is never below its step time).
// The profile and hindsight read warm-up spans with it.
func FirstCallMS(spanMS float64, steps int, stepMS, hostMS float64) float64 {
	return max(spanMS-float64(steps-1)*(stepMS+hostMS)-hostMS, stepMS)
}
