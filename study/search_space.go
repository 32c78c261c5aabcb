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
		if len(out) >= maxOrders {
			cut = true
			return
		}
		pos := len(seq)
		if pos == r*s {
			out = append(out, assign(members, seq, r, s))
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
				if ok, why := memoryFits(c.Plan); !ok {
					c.Fate, c.Why = FateMemory, why
					s.res.All = append(s.res.All, c)
					continue
				}
				out = append(out, c)
			}
		}
	}
	return out, nil
}

// build makes the candidate of one device order, micro-batch, hand-off
// and assignment: a copy of the plan with only the devices it uses.
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
	bounds(c)
	return c, sizes, nil
}

// jitterFloor is the factor by which bounds shrink a step's time when
// steps vary: six standard deviations of jitter j below the mean.
func jitterFloor(j float64) float64 { return max(0, 1-6*j) }

// bounds fills the candidate's bounds from its stage times (the plan's
// cost formulas, no simulation):
//
//   - Capacity: Σ over pipelines of micro-batch / slowest StageNS, the
//     rate no pipeline can sustain more than.
//   - BoundThroughput: the steady-state throughput over the workload's n
//     samples. A pipeline's B micro-batches pass its slowest stage at
//     least a stage time apart; the first one alone can be late by the
//     one-time costs W (first-call warm-up on each stage, link set-up),
//     so its rate (n−k)/(c_last − c_first) is at most (n−1) / ((B−1)·slowest
//     − W); with one micro-batch it is n / its latency.
//   - BoundFirstNS: the work on the first micro-batch's path through the
//     fastest pipeline (first-call steps, encode, decode, hops, link
//     set-up), at the micro-batch size that makes it shortest.
//
// With jitter, stage times are scaled by jitterFloor first.
func bounds(c *Candidate) {
	q := c.Plan
	f := jitterFloor(maxJitter(q))
	n, R, mb := q.Workload.Samples, len(q.Pipelines), q.Layout.MicroBatch
	c.BoundFirstNS = math.MaxInt64
	for i, pl := range q.Pipelines {
		slowest, warm, first := pipelineTimes(q, pl, f)
		c.BoundFirstNS = min(c.BoundFirstNS, first)
		np := n / R
		if i < n%R {
			np++
		}
		nominal, _, _ := pipelineTimes(q, pl, 1)
		c.nominalCapacity += float64(mb) / (float64(max(nominal, 1)) / 1e9)
		if np == 0 {
			continue
		}
		if slowest <= 0 { // jitter so wide that no step time is certain
			c.Capacity, c.BoundThroughput = math.Inf(1), math.Inf(1)
			continue
		}
		c.Capacity += float64(mb) / (float64(slowest) / 1e9)
		batches := (np + mb - 1) / mb
		switch window := float64(batches-1)*float64(slowest) - float64(warm); {
		case batches == 1:
			c.BoundThroughput += float64(np) / (float64(max(first, 1)) / 1e9)
		case window <= 0:
			c.BoundThroughput = math.Inf(1)
		default:
			c.BoundThroughput += float64(np-1) / (window / 1e9)
		}
	}
}

// pipelineTimes returns, for pipeline pl of q with step times scaled by
// f: its slowest stage time (StageNS), its one-time extra costs (warm-up
// beyond a step, link set-up), and the shortest path of a first
// micro-batch through it.
func pipelineTimes(q *plan.Plan, pl plan.Pipeline, f float64) (slowest, warm, first int64) {
	scale := func(ns int64) int64 { return int64(math.Floor(float64(ns) * f)) }
	for i := range pl.Stages {
		t, _ := q.PipelineStageNS(pl, i)
		slowest = max(slowest, scale(t))
	}
	first = math.MaxInt64
	for b := 1; b <= q.Layout.MicroBatch; b++ {
		var path, extra int64
		for i, st := range pl.Stages {
			w, _ := q.WorkNS(st.DevIdx, b)
			path += scale(int64(st.Steps()-1)*w.Step + w.FirstStep) // the device's first call is on this path
			if st.Encode {
				path += scale(w.Encode)
			}
			if st.Decode {
				path += scale(w.Decode)
			}
			extra += max(w.FirstStep-w.Step, 0)
			if i+1 < len(pl.Stages) && st.DevIdx != pl.Stages[i+1].DevIdx {
				h, _ := q.HopCost(st.DevIdx, pl.Stages[i+1].DevIdx)
				x, _ := q.HopNS(st.DevIdx, pl.Stages[i+1].DevIdx, b)
				path += x + h.SetupNS()
				extra += h.SetupNS()
			}
		}
		first = min(first, path)
		warm = max(warm, extra)
	}
	return slowest, warm, first
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
