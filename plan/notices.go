package plan

import (
	"fmt"
	"strconv"
	"strings"
)

// Notices are things about a valid plan that its user should know
// because a number it predicts does not come straight from a measurement.
// Today: the cost profile has no UNet time (or first-call time) for the
// plan's micro-batch size on a device kind the plan uses, so the time is
// derived from other sizes, as DeviceCosts.StepNS and FirstCallNS do:
//
//   - between two measured sizes: linear interpolation between them;
//   - below the smallest or past the largest measured size: in proportion
//     to the batch from that size (batch-1 costs × 2 for micro-batch 2),
//     which assumes a device gains nothing from batching.
//
// Also: layout.micro_batch larger than workload.samples, so that no
// micro-batch can be full (see partialBatches); and devices that run no
// stage of the resolved layout (see idleDevices).
//
// Each notice is one line, without a "note:" prefix; the CLIs print them
// on stderr. A plan without a profile has only the micro-batch one.
func (p *Plan) Notices() []string {
	if p == nil {
		return nil
	}
	mb := p.Layout.MicroBatch
	var out []string
	if s := p.partialBatches(); s != "" {
		out = append(out, s)
	}
	if s := p.idleDevices(); s != "" {
		out = append(out, s)
	}
	if p.Profile == nil {
		return out
	}
	seen := map[string]bool{}
	for _, d := range p.Devices {
		if seen[d.Kind] {
			continue
		}
		seen[d.Kind] = true
		dc, ok := p.Profile.Devices[d.Kind]
		if !ok {
			continue
		}
		if s := derived(dc.UNetMS, mb); s != "" {
			out = append(out, fmt.Sprintf("costs: the profile has no unet_ms for micro-batch %d on %s (it has %s): the step time is %s; add unet_ms %d to %s for a measured number",
				mb, d.Kind, sizes(dc.UNetMS), s, mb, p.Profile.name()))
		}
		if len(dc.FirstCallMS) > 0 {
			if _, ok := dc.FirstCallMS[mb]; !ok {
				_, has1 := dc.FirstCallMS[1]
				how := "derived the same way from first_call_ms"
				if has1 && len(dc.UNetMS) > 0 {
					how = "the step time plus the warm-up measured at micro-batch 1 (first_call_ms 1 − unet_ms 1)"
				}
				out = append(out, fmt.Sprintf("costs: the profile has no first_call_ms for micro-batch %d on %s: the first call costs %s", mb, d.Kind, how))
			}
		}
	}
	return out
}

// derived says how a size missing from m is derived, with the numbers,
// or "" when m has the size (or is empty).
func derived(m map[int]float64, batch int) string {
	v, lo, hi, ok := interpBatchMS(m, batch)
	if !ok || (lo < 0 && hi < 0) {
		return ""
	}
	switch {
	case lo < 0:
		return fmt.Sprintf("extrapolated in proportion to the batch from micro-batch %d: %g ms × %d/%d = %.4g ms", hi, m[hi], batch, hi, v)
	case hi < 0:
		return fmt.Sprintf("extrapolated in proportion to the batch from micro-batch %d: %g ms × %d/%d = %.4g ms (no gain from batching assumed)", lo, m[lo], batch, lo, v)
	}
	return fmt.Sprintf("interpolated linearly between micro-batch %d (%g ms) and %d (%g ms): %.4g ms", lo, m[lo], hi, m[hi], v)
}

// sizes lists the micro-batch sizes of m: "1, 4".
func sizes(m map[int]float64) string {
	ks := sortedInts(m)
	out := make([]string, len(ks))
	for i, k := range ks {
		out[i] = strconv.Itoa(k)
	}
	return "micro-batch " + strings.Join(out, ", ")
}

// partialBatches is the notice of a micro-batch larger than the workload:
// a micro-batch forms from the samples queued at its pipeline's entry, at
// most micro_batch of them, so with fewer samples than that every one is
// partial. Its work is costed at its own size (WorkNS of b samples, from
// unet_ms for b, derived when b is not measured); the memory check
// (activations_per_sample × micro_batch) still counts a full one.
func (p *Plan) partialBatches() string {
	mb, n := p.Layout.MicroBatch, p.Workload.Samples
	if n < 1 || mb <= n {
		return ""
	}
	return fmt.Sprintf("layout: micro-batch %d but only %d %s: every micro-batch is partial (at most %d %s), its work costed at its own size (unet_ms for that size, derived when not measured), while the memory check counts activations for %d; set micro_batch to %d or less to plan what will run",
		mb, n, plural(n, "sample", "samples"), n, plural(n, "sample", "samples"), mb, n)
}

// idleDevices is the notice of devices the resolved layout leaves without
// a stage (explicit layout.pipelines or layout.stages that name only some
// of them): "devices: gpu2, gpu3 run no stage ...". They count in the
// plan (and in data parallel on the same devices) but do no work.
func (p *Plan) idleDevices() string {
	if len(p.Pipelines) == 0 {
		return ""
	}
	used := map[string]bool{}
	for _, pl := range p.Pipelines {
		for _, st := range pl.Stages {
			used[st.Device] = true
		}
	}
	var idle []string
	for _, d := range p.Devices {
		if !used[d.Name] {
			idle = append(idle, d.Name)
		}
	}
	switch len(idle) {
	case 0:
		return ""
	case 1:
		return fmt.Sprintf("devices: %s runs no stage of the layout: it stays idle (it still counts for data parallel on the same devices); give it a stage, or leave it out of devices", idle[0])
	}
	return fmt.Sprintf("devices: %s run no stage of the layout: they stay idle (they still count for data parallel on the same devices); give them stages, or leave them out of devices", strings.Join(idle, ", "))
}
