package study

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/vdpp/vdpp/plan"
)

// maxOrders caps the device orders tried for one R × S: past it (many
// devices that all differ) the rest of that shape is left out, and the
// result says so.
const maxOrders = 5000

// deviceClasses groups the plan's interchangeable devices: the same kind,
// speed, memory, provider and threads, and, when links matter (pipelines
// of several stages), named by no link override (a device with a link of
// its own is a class of one). members[c] lists class c's devices in plan
// order.
func deviceClasses(p *plan.Plan, links bool) (members [][]int) {
	named := map[string]bool{}
	for _, o := range p.Links.Overrides {
		named[o.Between[0]], named[o.Between[1]] = links, links
	}
	index := map[string]int{}
	for i, d := range p.Devices {
		key := fmt.Sprintf("%s|%g|%g|%s|%d", d.Kind, d.Speed, d.MemoryGB, d.Provider, d.Threads)
		if named[d.Name] {
			key += "|" + d.Name
		}
		c, ok := index[key]
		if !ok {
			c = len(members)
			index[key] = c
			members = append(members, nil)
		}
		members[c] = append(members[c], i)
	}
	return members
}

// orders lists the ways to fill r pipelines of s stages from the device
// classes: each stage takes a class, and from it the first device not yet
// taken, so interchangeable devices give one order, not all their
// permutations. Pipelines come in a canonical order (by their classes),
// so that swapping two pipelines is not a second candidate. It stops at
// maxOrders and reports whether it did.
func orders(members [][]int, r, s int) (out [][][]int, cut bool) {
	taken := make([]int, len(members))
	seq := make([]int, 0, r*s) // class of each position
	var rec func()
	rec = func() {
		pos := len(seq)
		if pos == r*s {
			if len(out) == maxOrders {
				cut = true // a further order exists
				return
			}
			out = append(out, assign(members, seq, r, s))
			return
		}
		if cut {
			return
		}
		for c := range members {
			if taken[c] == len(members[c]) {
				continue
			}
			seq = append(seq, c)
			if pos%s == s-1 && pos >= s && slices.Compare(seq[pos-s+1:], seq[pos-2*s+1:pos-s+1]) < 0 {
				seq = seq[:pos] // pipelines in canonical order
				continue
			}
			taken[c]++
			rec()
			taken[c]--
			seq = seq[:pos]
		}
	}
	rec()
	return out, cut
}

// assign turns a sequence of classes into device indices.
func assign(members [][]int, seq []int, r, s int) [][]int {
	next := make([]int, len(members))
	devs := make([][]int, r)
	for i, c := range seq {
		devs[i/s] = append(devs[i/s], members[c][next[c]])
		next[c]++
	}
	return devs
}

// candidates builds every candidate of the space, with its bounds, and
// drops those that do not fit in memory (kept in All with FateMemory).
func (s *searcher) candidates() ([]*Candidate, error) {
	var out []*Candidate
	for k := 1; k <= s.opts.MaxDevices; k++ {
		for r := 1; r <= k; r++ {
			if k%r != 0 || k/r > s.p.Sampler.Steps {
				continue
			}
			if err := s.opts.Watch.start(0, 0, 0); err != nil {
				return nil, fmt.Errorf("study: search: stopped while building the candidates: %w", err)
			}
			ords, cut := orders(deviceClasses(s.p, k/r > 1), r, k/r)
			if cut {
				s.note("%d × %d: only the first %d device orders were tried (the devices differ too much to try them all)", r, k/r, maxOrders)
			}
			for _, devs := range ords {
				cs, err := s.expand(devs)
				if err != nil {
					return nil, err
				}
				out = append(out, cs...)
			}
		}
	}
	if len(out) == 0 {
		for _, c := range s.res.All {
			if c.Fate == FateMemory {
				return nil, fmt.Errorf("study: search: plan %s: no layout of up to %d devices fits in device memory (%s); e.g. %s: %s",
					s.p.Name, s.opts.MaxDevices, describeSpace(s.res.All), c.Label, c.Why)
			}
		}
		return nil, fmt.Errorf("study: search: plan %s: no layout of %d devices to try", s.p.Name, s.opts.MaxDevices)
	}
	if j := maxJitter(s.p); j > 0 {
		s.note("the profile has step jitter up to %.3g: bounds allow steps 6 standard deviations faster than their mean (× %.3g)", j, jitterFloor(j))
	}
	return out, nil
}

// expand makes the candidates of one device order: every micro-batch
// size, hand-off mode and assignment.
func (s *searcher) expand(devs [][]int) ([]*Candidate, error) {
	stages := len(devs[0])
	handoffs := []plan.Handoff{plan.HandoffBlocking}
	assigns := []plan.Assignment{plan.AssignEven}
	if stages > 1 {
		handoffs = plan.HandoffBlocking.Values()
		assigns = []plan.Assignment{plan.AssignEven, plan.AssignBalanced}
	}
	var out []*Candidate
	for _, mb := range s.opts.MicroBatches {
		for _, h := range handoffs {
			var even [][]int
			for _, a := range assigns {
				c, sizes, err := s.build(devs, mb, h, a)
				if err != nil {
					return nil, err
				}
				if a == plan.AssignBalanced && slices.EqualFunc(sizes, even, slices.Equal) {
					c.Fate, c.Why = FateDuplicate, "the same split as even"
					s.res.All = append(s.res.All, c)
					continue
				}
				even = sizes
				if twin, seen := s.signatures[costSignature(c.Plan)]; seen {
					c.Fate, c.Why = FateDuplicate, "the same devices, links and splits as "+twin
					s.res.All = append(s.res.All, c)
					continue
				}
				s.signatures[costSignature(c.Plan)] = c.Label
				if ok, why := memoryFits(c.Plan); !ok {
					c.Fate, c.Why = FateMemory, why
					s.res.All = append(s.res.All, c)
					continue
				}
				bounds(c) // only for candidates that may be simulated: it costs O(micro-batch) per stage
				out = append(out, c)
			}
		}
	}
	return out, nil
}

// build makes the candidate of one device order, micro-batch, hand-off
// and assignment: a copy of the plan with only the devices it uses (its
// bounds are set later, once it is known to fit).
func (s *searcher) build(devs [][]int, mb int, h plan.Handoff, a plan.Assignment) (*Candidate, [][]int, error) {
	q := s.p.Clone()
	var used []int
	for _, pl := range devs {
		used = append(used, pl...)
	}
	slices.Sort(used)
	remap := map[int]int{}
	q.Devices = nil
	names := map[string]bool{}
	for i, dv := range used {
		remap[dv] = i
		q.Devices = append(q.Devices, s.p.Devices[dv])
		names[s.p.Devices[dv].Name] = true
	}
	q.Links.Overrides = slices.DeleteFunc(q.Links.Overrides, func(o plan.LinkOverride) bool {
		return !names[o.Between[0]] || !names[o.Between[1]]
	})
	q.Layout.MicroBatch, q.Layout.Handoff, q.Layout.Assignment = mb, h, a
	q.Layout.Replicas, q.Layout.Stages, q.Layout.Pipelines = len(devs), nil, nil
	var pipes []plan.Pipeline
	var sizes [][]int
	for r, pl := range devs {
		idx := make([]int, len(pl))
		for i, dv := range pl {
			idx[i] = remap[dv]
		}
		sz, err := q.SplitSteps(a, idx)
		if err != nil {
			return nil, nil, fmt.Errorf("study: search: %w", err)
		}
		sizes = append(sizes, sz)
		pipes = append(pipes, q.BuildPipeline(r, idx, sz))
	}
	if err := q.UsePipelines(pipes); err != nil {
		return nil, nil, fmt.Errorf("study: search: %w", err)
	}
	c := &Candidate{Plan: q, Label: label(q, a), Devices: len(used), Replicas: len(devs), Stages: len(devs[0]),
		Assignment: a, MicroBatch: mb, Handoff: h}
	return c, sizes, nil
}

// costSignature names what a candidate's simulation depends on: per
// pipeline, each stage's device (kind, speed, memory, provider, threads),
// steps and ends, and the cost of the hop to the next stage; and the
// micro-batch and hand-off. Two candidates with one signature simulate
// alike: only the first is kept.
func costSignature(q *plan.Plan) string {
	var b strings.Builder
	fmt.Fprintf(&b, "mb%d %s", q.Layout.MicroBatch, q.Layout.Handoff)
	for _, pl := range q.Pipelines {
		b.WriteString(" |")
		for i, st := range pl.Stages {
			d := q.Devices[st.DevIdx]
			fmt.Fprintf(&b, " %s/%g/%g/%s/%d %d-%d %v%v", d.Kind, d.Speed, d.MemoryGB, d.Provider, d.Threads, st.First, st.Last, st.Encode, st.Decode)
			if i+1 < len(pl.Stages) {
				h, _ := q.HopCost(st.DevIdx, pl.Stages[i+1].DevIdx)
				fmt.Fprintf(&b, " >%v", h.LinkCosts)
			}
		}
	}
	return b.String()
}

// jitterFloor is the factor by which bounds shrink a step's time when
// steps vary: six standard deviations of jitter j below the mean.
func jitterFloor(j float64) float64 { return max(0, 1-6*j) }

// bounds fills the candidate's bounds from its stage times (the plan's
// cost formulas, no simulation). For each pipeline, at every micro-batch
// size b up to the plan's (arrivals can make micro-batches smaller):
//
//   - s*: the largest, over its stages, of the stage's least time per
//     sample, min over b of StageNS(b) / b. Micro-batches pass a stage
//     one after another, so n samples take at least n·s* there.
//   - W: the one-time and size-dependent slack by which the first
//     completion can be late relative to the later ones: first-call
//     warm-up beyond a step and link set-up on every stage, how much each
//     stage's work and each hop can differ between micro-batch sizes, and
//     with jitter j, 12·j of the longest path (steps up to 6 standard
//     deviations either way).
//   - Capacity: Σ 1/s*, the rate no pipeline can sustain more than.
//   - BoundThroughput: the steady-state metric counts the n−k samples
//     after a pipeline's first completion (k ≤ micro-batch) over the time
//     from it to the last, which is at least (n−k)·s* − W; the rate
//     (n−k)/((n−k)·s* − W) only falls as n−k grows, so it is at most
//     M/(M·s* − W) with M = max(n − micro-batch, 1), or unbounded when
//     that time can be 0. A pipeline that may finish everything at once
//     (n ≤ micro-batch) may also count n / its first latency.
//   - BoundOverall: the overall throughput n / makespan, where the
//     makespan is at least, for each pipeline, its first path (below) and
//     then (n−micro-batch)·s* − W more until its last completion.
//   - BoundFirstNS: the work on the first micro-batch's path through the
//     fastest pipeline (first-call steps, encode, decode, hops, link
//     set-up), at the micro-batch size that makes it shortest.
//
// With jitter, stage times are scaled by jitterFloor first.
func bounds(c *Candidate) {
	q := c.Plan
	j := maxJitter(q)
	n, R := q.Workload.Samples, len(q.Pipelines)
	c.BoundFirstNS = math.MaxInt64
	var span float64 // lower bound on the makespan, ns
	for i, pl := range q.Pipelines {
		pb := pipelineBounds(q, pl, jitterFloor(j), j)
		c.nominalCapacity += 1e9 / max(pipelineBounds(q, pl, 1, 0).perSample, 1)
		c.BoundFirstNS = min(c.BoundFirstNS, pb.first)
		np := n / R
		if i < n%R {
			np++
		}
		mb := q.Layout.MicroBatch
		if np > 0 {
			span = max(span, float64(pb.first)+max(0, float64(np-mb)*pb.perSample-float64(pb.slack)))
		}
		if pb.perSample <= 0 { // jitter so wide that no step time is certain
			c.Capacity, c.BoundThroughput = math.Inf(1), math.Inf(1)
			continue
		}
		c.Capacity += 1e9 / pb.perSample
		if np == 0 {
			continue
		}
		m := float64(max(np-mb, 1))
		rate := math.Inf(1)
		if den := m*pb.perSample - float64(pb.slack); den > 0 {
			rate = m / den * 1e9
		}
		if np <= mb {
			rate = max(rate, float64(np)/(float64(max(pb.first, 1))/1e9))
		}
		c.BoundThroughput += rate
	}
	c.BoundOverall = math.Inf(1)
	if span > 0 {
		c.BoundOverall = float64(n) / span * 1e9
	}
}

// pipeBounds are one pipeline's numbers for the bounds (see bounds).
type pipeBounds struct {
	perSample float64 // s*, ns per sample
	slack     int64   // W, ns
	first     int64   // the shortest first-micro-batch path, ns
}

// pipelineBounds computes pipeline pl's numbers with step times scaled by
// f and jitter j.
func pipelineBounds(q *plan.Plan, pl plan.Pipeline, f, j float64) pipeBounds {
	scale := func(ns int64) int64 { return int64(math.Floor(float64(ns) * f)) }
	mb := q.Layout.MicroBatch
	pb := pipeBounds{first: math.MaxInt64}
	for i := range pl.Stages {
		best := math.Inf(1)
		for b := 1; b <= mb; b++ {
			t, _ := q.PipelineStageNS(pl, i, b)
			best = min(best, float64(scale(t))/float64(b))
		}
		pb.perSample = max(pb.perSample, best)
	}
	var lo, hi []int64 // per stage and hop, over b: the least and most work
	var longest int64
	for b := 1; b <= mb; b++ {
		path, warm, parts := firstPath(q, pl, b)
		pb.first = min(pb.first, scaleFirst(path, warm, f))
		longest = max(longest, path)
		if lo == nil {
			lo, hi = slices.Clone(parts), slices.Clone(parts)
		}
		for k, v := range parts {
			lo[k], hi[k] = min(lo[k], v), max(hi[k], v)
		}
		pb.slack = max(pb.slack, warm)
	}
	for k := range lo {
		pb.slack += hi[k] - lo[k]
	}
	pb.slack += int64(math.Ceil(12 * j * float64(longest)))
	return pb
}

// firstPath is the nominal work on a first micro-batch of b samples'
// path through pl: its total, the part that only a first pass pays
// (first-call warm-up beyond a step, link set-up), and the work of each
// stage and hop without those.
func firstPath(q *plan.Plan, pl plan.Pipeline, b int) (path, once int64, parts []int64) {
	for i, st := range pl.Stages {
		w, _ := q.WorkNS(st.DevIdx, b)
		work := int64(st.Steps()) * w.Step
		if st.Encode {
			work += w.First + w.Encode
			if len(w.FirstEncodes) > 0 {
				once += w.FirstEncodes[0] - w.Encode // never negative (plan.WorkNS)
			}
		}
		if st.Decode {
			// The samples are done at the end of the decode: the output
			// handling after it (w.Last) is not on their path.
			work += w.Decode
			if len(w.FirstDecodes) > 0 {
				once += w.FirstDecodes[0] - w.Decode
			}
		}
		if i > 0 {
			work += q.ReceiveNS(pl.Stages[i-1].DevIdx, st.DevIdx)
		}
		parts = append(parts, work)
		once += w.FirstStep - w.Step // may be negative: a first call faster than a step
		if i+1 < len(pl.Stages) && st.DevIdx != pl.Stages[i+1].DevIdx {
			h, _ := q.HopCost(st.DevIdx, pl.Stages[i+1].DevIdx)
			x, _ := q.HopNS(st.DevIdx, pl.Stages[i+1].DevIdx, b)
			parts = append(parts, x)
			once += h.SetupNS(q.Ranks())
		}
	}
	for _, v := range parts {
		path += v
	}
	return path + once, max(once, 0), parts
}

// scaleFirst scales a first path's step work by f; hops, set-up and the
// one-time part are not jittered, so it scales the whole path less the
// one-time part, which is a lower bound either way.
func scaleFirst(path, once int64, f float64) int64 {
	return int64(math.Floor(float64(path-once)*f)) + once
}

// describeSpace says what the space held, for the notes.
func describeSpace(all []*Candidate) string {
	count := map[Fate]int{}
	for _, c := range all {
		count[c.Fate]++
	}
	var parts []string
	for _, f := range []Fate{FateBest, FateBound, FateSLO, FateTarget, FateMemory, FateDuplicate, FateFailed} {
		if count[f] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", count[f], f))
		}
	}
	return strings.Join(parts, ", ")
}
