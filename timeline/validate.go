package timeline

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// maxProblems caps how many problems one validation reports; the rest are
// counted in a final line.
const maxProblems = 20

// problems collects validation messages with a common prefix.
type problems struct {
	prefix string
	list   []string
	extra  int
}

func (p *problems) addf(format string, args ...any) {
	if len(p.list) >= maxProblems {
		p.extra++
		return
	}
	p.list = append(p.list, p.prefix+fmt.Sprintf(format, args...))
}

func (p *problems) err() error {
	if len(p.list) == 0 {
		return nil
	}
	errs := make([]error, 0, len(p.list)+1)
	for _, m := range p.list {
		errs = append(errs, errors.New(m))
	}
	if p.extra > 0 {
		errs = append(errs, fmt.Errorf("%sand %d more problems", p.prefix, p.extra))
	}
	return errors.Join(errs...)
}

// describe names a span in messages: its index, device, kind, samples and
// step range.
func describe(i int, s *Span) string {
	var b strings.Builder
	fmt.Fprintf(&b, "span %d (%s %s", i, s.Device, s.Kind)
	if s.Kind == KindStep {
		fmt.Fprintf(&b, " steps %d..%d", s.FirstStep, s.LastStep)
	}
	if len(s.Samples) > 0 {
		fmt.Fprintf(&b, " samples %v", s.Samples)
	}
	b.WriteString(")")
	return b.String()
}

// KnownKind reports whether k is one of the span kinds this package defines.
func KnownKind(k Kind) bool {
	switch k {
	case KindEncode, KindStep, KindDecode, KindSend, KindRecv, KindWait, KindHost:
		return true
	}
	return false
}

// Check reports whether t is well formed, field by field: every span has a
// device, a known kind, 0 ≤ start ≤ end, non-negative sample ids, and for
// step spans 0 ≤ first step ≤ last step; every sample has 0 ≤ release ≤ done
// and a unique id. Read calls it. All problems are reported at once (up to
// a cap), one per line.
func (t *Timeline) Check() error {
	return t.check("timeline: ")
}

func (t *Timeline) check(prefix string) error {
	p := problems{prefix: prefix}
	t.checkInto(&p)
	return p.err()
}

func (t *Timeline) checkInto(p *problems) {
	if t == nil {
		p.addf("nil timeline")
		return
	}
	seenDev := make(map[string]bool, len(t.Meta.Devices))
	for _, d := range t.Meta.Devices {
		if d == "" {
			p.addf("meta.devices: empty device name")
		} else if seenDev[d] {
			p.addf("meta.devices: device %q listed twice", d)
		}
		seenDev[d] = true
	}
	for i := range t.Spans {
		s := &t.Spans[i]
		name := describe(i, s)
		if s.Device == "" {
			p.addf("%s: empty device", name)
		}
		if !KnownKind(s.Kind) {
			p.addf("%s: unknown kind %q (want encode, step, decode, send, recv or wait)", name, s.Kind)
		}
		if s.Start < 0 {
			p.addf("%s: start %d ns is negative (times count from the run's start)", name, s.Start)
		}
		if s.End < s.Start {
			p.addf("%s: end %d ns is before start %d ns", name, s.End, s.Start)
		}
		if s.Kind == KindStep && (s.FirstStep < 0 || s.LastStep < s.FirstStep) {
			p.addf("%s: step range %d..%d is not a valid range (want 0 ≤ first ≤ last)", name, s.FirstStep, s.LastStep)
		}
		for _, id := range s.Samples {
			if id < 0 {
				p.addf("%s: negative sample id %d", name, id)
			}
		}
	}
	ids := make(map[int]bool, len(t.Samples))
	for i, s := range t.Samples {
		if ids[s.ID] {
			p.addf("sample record %d: sample id %d recorded twice", i, s.ID)
		}
		ids[s.ID] = true
		if s.ID < 0 {
			p.addf("sample record %d: negative sample id %d", i, s.ID)
		}
		if s.Release < 0 {
			p.addf("sample %d: release %d ns is negative", s.ID, s.Release)
		}
		if s.Done < s.Release {
			p.addf("sample %d: done %d ns is before release %d ns", s.ID, s.Done, s.Release)
		}
	}
}

// Validate checks the invariants every timeline from the simulator or the
// executor must hold, on top of Check:
//   - spans on one device and stream never overlap (touching is fine);
//   - a sample's step spans, ordered by step, cover disjoint step ranges
//     and are causal: each starts at or after the previous one ends;
//   - a sample's encode ends before its first step starts, and its decode
//     starts after its last step ends;
//   - a sample's busy spans (encode, step, decode) start at or after its
//     release and end at or before its done time.
//
// All problems are reported at once (up to a cap).
func (t *Timeline) Validate() error {
	p := problems{prefix: "timeline: "}
	t.checkInto(&p)
	if len(p.list) > 0 {
		return p.err()
	}
	t.validateInto(&p)
	return p.err()
}

type trackKey struct {
	device string
	stream Stream
}

// sampleSpans lists the busy spans touching each sample.
func (t *Timeline) sampleSpans() map[int][]int {
	by := make(map[int][]int)
	for i := range t.Spans {
		s := &t.Spans[i]
		if !Busy(s.Kind) {
			continue
		}
		for _, id := range s.Samples {
			by[id] = append(by[id], i)
		}
	}
	return by
}

func sortedKeys[V any](m map[int]V) []int {
	keys := make([]int, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	return keys
}

// validateInto reports overlapping spans and samples whose spans are not
// causal.
func (t *Timeline) validateInto(p *problems) {
	t.overlapsInto(p)
	t.causalityInto(p)
}

// overlapsInto reports spans that overlap on one device and stream.
func (t *Timeline) overlapsInto(p *problems) {
	tracks := make(map[trackKey][]int)
	var order []trackKey
	for i := range t.Spans {
		k := trackKey{t.Spans[i].Device, StreamOf(t.Spans[i].Kind)}
		if _, ok := tracks[k]; !ok {
			order = append(order, k)
		}
		tracks[k] = append(tracks[k], i)
	}
	for _, k := range order {
		idx := tracks[k]
		sort.SliceStable(idx, func(a, b int) bool {
			sa, sb := &t.Spans[idx[a]], &t.Spans[idx[b]]
			if sa.Start != sb.Start {
				return sa.Start < sb.Start
			}
			return sa.End < sb.End
		})
		for j := 1; j < len(idx); j++ {
			prev, cur := &t.Spans[idx[j-1]], &t.Spans[idx[j]]
			if cur.Start < prev.End {
				p.addf("%s overlaps %s on device %s stream %s: starts at %d ns before the other ends at %d ns",
					describe(idx[j], cur), describe(idx[j-1], prev), k.device, k.stream, cur.Start, prev.End)
			}
		}
	}
}

// causalityInto reports, per sample, steps that repeat or run out of
// order, an encode after the first step or a decode before the last, and
// spans outside the sample's release and done times.
func (t *Timeline) causalityInto(p *problems) {
	records := make(map[int]Sample, len(t.Samples))
	for _, s := range t.Samples {
		records[s.ID] = s
	}
	by := t.sampleSpans()
	for _, id := range sortedKeys(by) {
		var steps, encodes, decodes []int
		for _, i := range by[id] {
			switch t.Spans[i].Kind {
			case KindStep:
				steps = append(steps, i)
			case KindEncode:
				encodes = append(encodes, i)
			case KindDecode:
				decodes = append(decodes, i)
			}
		}
		sort.SliceStable(steps, func(a, b int) bool {
			return t.Spans[steps[a]].FirstStep < t.Spans[steps[b]].FirstStep
		})
		for j := 1; j < len(steps); j++ {
			prev, cur := &t.Spans[steps[j-1]], &t.Spans[steps[j]]
			if cur.FirstStep <= prev.LastStep {
				p.addf("sample %d: %s repeats steps of %s", id, describe(steps[j], cur), describe(steps[j-1], prev))
				continue
			}
			if cur.Start < prev.End {
				p.addf("sample %d: %s starts at %d ns before the earlier steps in %s end at %d ns",
					id, describe(steps[j], cur), cur.Start, describe(steps[j-1], prev), prev.End)
			}
		}
		if len(steps) > 0 {
			first, last := &t.Spans[steps[0]], &t.Spans[steps[len(steps)-1]]
			for _, i := range encodes {
				if e := &t.Spans[i]; e.End > first.Start {
					p.addf("sample %d: %s ends at %d ns after its first step starts at %d ns", id, describe(i, e), e.End, first.Start)
				}
			}
			for _, i := range decodes {
				if d := &t.Spans[i]; d.Start < last.End {
					p.addf("sample %d: %s starts at %d ns before its last step ends at %d ns", id, describe(i, d), d.Start, last.End)
				}
			}
		}
		rec, ok := records[id]
		if !ok {
			continue
		}
		for _, i := range by[id] {
			s := &t.Spans[i]
			if s.Start < rec.Release {
				p.addf("sample %d: %s starts at %d ns before the sample's release at %d ns", id, describe(i, s), s.Start, rec.Release)
			}
			if s.End > rec.Done {
				p.addf("sample %d: %s ends at %d ns after the sample's done time %d ns", id, describe(i, s), s.End, rec.Done)
			}
		}
	}
}

// ValidateSteps runs Validate and also checks that every sample ran every
// sampler step exactly once: for each sample record, its step spans cover
// 0..steps-1 without gaps or repeats; and no span names a sample without a
// record.
func ValidateSteps(t *Timeline, steps int) error {
	if steps <= 0 {
		return fmt.Errorf("timeline: validate steps: step count %d must be positive", steps)
	}
	p := problems{prefix: "timeline: "}
	t.checkInto(&p)
	if len(p.list) > 0 {
		return p.err()
	}
	t.validateInto(&p)
	t.recordsInto(&p)
	t.stepsInto(&p, steps)
	return p.err()
}

// pipelinesInto reports spans on a pipeline that no sample record names
// (each pipeline once): every span belongs to a pipeline some sample ran
// on, unless no sample finished.
func (t *Timeline) pipelinesInto(p *problems) {
	if len(t.Samples) == 0 {
		return
	}
	ran := map[int]bool{}
	for _, s := range t.Samples {
		ran[s.Pipeline] = true
	}
	for i := range t.Spans {
		s := &t.Spans[i]
		if !ran[s.Pipeline] && Busy(s.Kind) && t.Meta.Finished() {
			p.addf("%s: pipeline %d, but no sample record ran on it", describe(i, s), s.Pipeline)
			ran[s.Pipeline] = true
		}
	}
}

// recordsInto reports spans that name a sample without a sample record
// (each sample once).
func (t *Timeline) recordsInto(p *problems) {
	records := make(map[int]bool, len(t.Samples))
	for _, s := range t.Samples {
		records[s.ID] = true
	}
	for i := range t.Spans {
		s := &t.Spans[i]
		for _, id := range s.Samples {
			if !records[id] {
				p.addf("%s names sample %d, which has no sample record", describe(i, s), id)
				records[id] = true // report once
			}
		}
	}
}

// stepsInto checks that every sample record's step spans cover 0..steps-1
// once each.
func (t *Timeline) stepsInto(p *problems, steps int) {
	covered := make(map[int][]int) // sample id -> times each step ran
	for i := range t.Spans {
		s := &t.Spans[i]
		if s.Kind != KindStep {
			continue
		}
		for _, id := range s.Samples {
			c := covered[id]
			if c == nil {
				c = make([]int, steps)
				covered[id] = c
			}
			if s.LastStep >= steps {
				p.addf("%s: step %d is past the last step %d", describe(i, s), s.LastStep, steps-1)
			}
			for k := s.FirstStep; k <= s.LastStep && k < steps; k++ {
				c[k]++
			}
		}
	}
	for _, rec := range t.Samples {
		c := covered[rec.ID]
		if c == nil {
			p.addf("sample %d: no step spans (want steps 0..%d)", rec.ID, steps-1)
			continue
		}
		for k, n := range c {
			if n == 0 {
				p.addf("sample %d: step %d never ran", rec.ID, k)
			} else if n > 1 {
				p.addf("sample %d: step %d ran %d times", rec.ID, k, n)
			}
		}
	}
}

// CheckRun checks what a timeline that a run wrote (vdsim run, vdexec
// run) must hold before its numbers mean anything, on top of Validate:
// meta.source is sim or exec, meta.plan and meta.devices are given, there
// are spans and sample records, and every span is on a listed device. A
// run that says it finished (Meta.Finished) must also be whole: as many
// sample records as meta.planned_samples, none missing for a sample a
// span names, and with meta.steps every step of every sample once. name
// (the file) starts every line of the error.
func (t *Timeline) CheckRun(name string) error {
	p := problems{prefix: name + ": "}
	if t == nil {
		p.addf("nil timeline")
		return p.err()
	}
	m := &t.Meta
	switch m.Source {
	case "sim", "exec":
	case "":
		p.addf("meta.source is missing; %s", wantTimeline)
	default:
		p.addf("meta.source is %q; want \"sim\" or \"exec\"", m.Source)
	}
	if m.Plan == "" {
		p.addf("meta.plan is missing: the timeline does not say which plan it ran")
	}
	if len(m.Devices) == 0 {
		p.addf("meta.devices is empty: the timeline does not list its devices")
	}
	if len(t.Spans) == 0 {
		p.addf("no spans: nothing ran on any device")
	}
	switch {
	case len(t.Samples) > 0:
	case !m.Finished():
		p.addf("no sample records: no sample completed before the run stopped (%s)", m.stopReason())
	default:
		p.addf("no sample records: no sample completed")
	}
	if m.Steps < 0 {
		p.addf("meta.steps %d must not be negative", m.Steps)
	}
	if m.PlannedSamples < 0 {
		p.addf("meta.planned_samples %d must not be negative", m.PlannedSamples)
	}
	if m.PlannedSamples > 0 && m.Steps == 0 {
		// Writers that record planned_samples record steps too.
		p.addf("meta.steps is missing although meta.planned_samples is set: the file was changed or cut")
	}
	t.pipelinesInto(&p)
	if len(m.Devices) > 0 {
		listed := make(map[string]bool, len(m.Devices))
		for _, d := range m.Devices {
			listed[d] = true
		}
		for i := range t.Spans {
			s := &t.Spans[i]
			if s.Device != "" && !listed[s.Device] {
				p.addf("%s: device %q is not in meta.devices %v", describe(i, s), s.Device, m.Devices)
				listed[s.Device] = true // report each device once
			}
		}
	}
	t.checkInto(&p)
	if len(p.list) > 0 {
		return p.err()
	}
	t.validateInto(&p)
	if !m.Finished() {
		return p.err() // spans of samples that never completed are expected
	}
	if n := len(t.Samples); m.PlannedSamples > 0 && n != m.PlannedSamples {
		p.addf("%d sample records, but meta.planned_samples is %d and the run does not say it was interrupted: the samples list is truncated or padded", n, m.PlannedSamples)
	}
	missing := problems{prefix: p.prefix}
	t.recordsInto(&missing)
	if n := len(missing.list) + missing.extra; n > 0 {
		p.addf("%d sample(s) that spans name have no sample record, though the run does not say it was interrupted: the samples list is truncated (first: %s)",
			n, strings.TrimPrefix(missing.list[0], p.prefix))
	}
	if m.Steps > 0 {
		t.stepsInto(&p, m.Steps)
	}
	return p.err()
}

// stopReason says why a run that did not finish stopped.
func (m *Meta) stopReason() string {
	switch {
	case m.Error != "":
		return "it failed: " + m.Error
	case m.Interrupted:
		return "it was interrupted"
	}
	return "it finished"
}
