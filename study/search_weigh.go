package study

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/vdpp/vdpp/plan"
	"github.com/vdpp/vdpp/timeline"
)

// weigh goes through the candidates best bound first, sets aside by
// bound those that cannot win, simulates the others, and ranks those
// that meet every constraint.
func (s *searcher) weigh(cands []*Candidate) {
	s.sortByBound(cands)
	s.runs = len(cands)
	for i, c := range cands {
		s.run = i + 1
		if err := s.opts.Watch.start(s.run, s.runs, c.Plan.Workload.Samples); err != nil {
			s.stopped = err
			return
		}
		s.res.All = append(s.res.All, c)
		if s.setAside(c) {
			s.res.Pruned++
			continue
		}
		if s.opts.Goal == GoalRate {
			s.findRate(c)
		} else if s.simulate(c) {
			s.judge(c)
		}
		if s.stopped != nil {
			return
		}
		if c.Fate == FateBest && (s.best == nil || s.better(c, s.best)) {
			s.best = c
		}
	}
	s.res.SteadyState = true
	for _, c := range s.res.All {
		if c.Fate == FateBest {
			s.res.Ranked = append(s.res.Ranked, c)
			s.res.SteadyState = s.res.SteadyState && !c.Metrics.TooFewSamples
		}
	}
	switch {
	case s.res.Overall:
		n := OverallBelow(s.opts.MaxDevices, s.opts.MicroBatches)
		s.note("%d samples are too few for a steady state in every layout (data parallel on %d devices with micro-batch %d needs %d, two micro-batches a device): every layout is ranked by its overall throughput, samples / makespan; with --samples %d or more the search ranks by steady-state throughput",
			s.p.Workload.Samples, s.opts.MaxDevices, slices.Max(s.opts.MicroBatches), n, n)
	case !s.res.SteadyState && s.opts.Goal != GoalRate:
		s.note("too few samples for a steady state in some layouts (see steady-state throughput): those are ranked by their overall throughput, samples / makespan")
	}
	sort.SliceStable(s.res.Ranked, func(i, j int) bool { return s.better(s.res.Ranked[i], s.res.Ranked[j]) })
	s.explain()
	s.note("%d candidates: %s; %d simulated, %d set aside by their bounds before simulating", len(s.res.All), describeSpace(s.res.All), s.res.Simulated, s.res.Pruned)
}

// setAside reports whether c's bounds alone rule it out: it misses the
// first-sample SLO or the target, or it cannot beat the best found so far.
// Constraints are checked by bound even with NoPrune (the bound is a
// proof); only the comparison with the best is skipped then.
func (s *searcher) setAside(c *Candidate) bool {
	o := s.opts
	switch {
	case o.SLOFirstNS > 0 && c.BoundFirstNS > o.SLOFirstNS:
		c.Fate, c.Why = FateSLO, fmt.Sprintf("first-sample latency at least %s, over the SLO of %s", timeline.FormatNS(c.BoundFirstNS), timeline.FormatNS(o.SLOFirstNS))
	case o.Goal == GoalDevices && s.bound(c) < o.TargetThroughput:
		c.Fate, c.Why = FateTarget, fmt.Sprintf("throughput at most %s, under the target of %s", timeline.FormatRate(s.bound(c)), timeline.FormatRate(o.TargetThroughput))
	case o.NoPrune || s.best == nil:
		return false
	case !s.canWin(c):
		c.Fate, c.Why = FateBound, s.boundWhy(c)
	default:
		return false
	}
	return true
}

// canWin reports whether c's bounds leave it a chance against the best.
// Ties can still win on the next criterion, so only a strictly worse
// bound rules a candidate out.
func (s *searcher) canWin(c *Candidate) bool {
	b := s.best
	switch s.opts.Goal {
	case GoalLatency:
		return c.BoundFirstNS <= b.Metrics.FirstLatencyNS
	case GoalRate:
		return c.Capacity >= b.Rate
	case GoalDevices:
		return c.Devices < b.Devices || c.Devices == b.Devices && s.canBeatThroughput(c)
	}
	return s.canBeatThroughput(c)
}

// canBeatThroughput reports whether c's bounds leave it a chance against
// the best on throughput as ranked (see reached).
func (s *searcher) canBeatThroughput(c *Candidate) bool {
	return s.bound(c) >= s.throughput(s.best)
}

// bound is an upper bound on c's throughput as ranked: its overall bound
// when every candidate is ranked by overall throughput; otherwise c's
// figure is its steady-state throughput or its overall throughput, so it
// is at most the larger of its two bounds.
func (s *searcher) bound(c *Candidate) float64 {
	if s.res.Overall {
		return c.BoundOverall
	}
	return max(c.BoundThroughput, c.BoundOverall)
}

// throughput is c's figure for ranking (see reached).
func (s *searcher) throughput(c *Candidate) float64 { return reached(c.Metrics, s.res.Overall) }

// reached is a candidate's throughput as the search ranks it and as a
// target judges it: its overall throughput, samples / makespan, when the
// search ranks all so (overall, see OverallBelow); else its steady-state
// figure where that is meaningful and its overall throughput where not
// (timeline.DefSteadyState). Each candidate has one figure, so the
// ranking is a total order whichever candidates the bounds set aside.
func reached(m *timeline.Metrics, overall bool) float64 {
	if overall || m.TooFewSamples {
		return m.OverallThroughput
	}
	return m.Throughput
}

func (s *searcher) boundWhy(c *Candidate) string {
	b := s.best
	switch s.opts.Goal {
	case GoalLatency:
		return fmt.Sprintf("first-sample latency at least %s, the best has %s", timeline.FormatNS(c.BoundFirstNS), timeline.FormatNS(b.Metrics.FirstLatencyNS))
	case GoalRate:
		return fmt.Sprintf("capacity at most %s, the best sustains %s", timeline.FormatRate(c.Capacity), timeline.FormatRate(b.Rate))
	case GoalDevices:
		if c.Devices > b.Devices {
			return fmt.Sprintf("%d devices, the best needs %d", c.Devices, b.Devices)
		}
	}
	return fmt.Sprintf("throughput at most %s, the best has %s", timeline.FormatRate(s.bound(c)), timeline.FormatRate(s.throughput(b)))
}

// judge checks a simulated candidate against the constraints.
func (s *searcher) judge(c *Candidate) {
	m, o := c.Metrics, s.opts
	switch {
	case o.SLOFirstNS > 0 && m.FirstLatencyNS > o.SLOFirstNS:
		c.Fate, c.Why = FateSLO, fmt.Sprintf("first-sample latency %s, over the SLO of %s", timeline.FormatNS(m.FirstLatencyNS), timeline.FormatNS(o.SLOFirstNS))
	case o.SLOP95NS > 0 && m.LatencyP95NS > o.SLOP95NS:
		c.Fate, c.Why = FateSLO, fmt.Sprintf("p95 sample latency %s, over the SLO of %s", timeline.FormatNS(m.LatencyP95NS), timeline.FormatNS(o.SLOP95NS))
	case o.Goal == GoalDevices && s.throughput(c) < o.TargetThroughput:
		c.Fate, c.Why = FateTarget, fmt.Sprintf("throughput %s, under the target of %s", timeline.FormatRate(s.throughput(c)), timeline.FormatRate(o.TargetThroughput))
	default:
		c.Fate = FateBest
	}
}

// better orders two ranked candidates for the goal; ties go to the next
// criterion, and last to the label, so the order is total.
func (s *searcher) better(a, b *Candidate) bool {
	type crit struct{ x, y float64 } // smaller x wins
	ma, mb := a.Metrics, b.Metrics
	thr := crit{-s.throughput(a), -s.throughput(b)}
	lat := crit{float64(ma.FirstLatencyNS), float64(mb.FirstLatencyNS)}
	dev := crit{float64(a.Devices), float64(b.Devices)}
	order := []crit{thr, lat, dev}
	switch s.opts.Goal {
	case GoalLatency:
		order = []crit{lat, thr, dev}
	case GoalRate:
		order = []crit{{-a.Rate, -b.Rate}, thr, lat, dev}
	case GoalDevices:
		order = []crit{dev, thr, lat}
	}
	for _, c := range order {
		if c.x != c.y {
			return c.x < c.y
		}
	}
	return a.Label < b.Label
}

// explain gives each ranked candidate its place and its margin: the
// winner's lead over the next, and each other's distance behind the
// winner.
func (s *searcher) explain() {
	ranked := s.res.Ranked
	defer func() {
		for _, c := range ranked {
			if c.RateCapped {
				c.Why += "; its rate is its capacity bound (the SLO held there)"
			}
		}
	}()
	for i, c := range ranked {
		switch {
		case i > 0:
			c.Why = s.margin(c, ranked[0], "than the best")
		case nextShape(ranked) != nil:
			c.Why = "best; " + s.margin(c, nextShape(ranked), "than the next layout")
		case len(ranked) > 1:
			c.Why = "best; the others that meet the constraints are the same layout with devices in another order"
		case s.res.Pruned > 0:
			c.Why = "best; the only candidate simulated that meets the constraints (the others could not beat it by their bounds)"
		default:
			c.Why = "best; the only candidate that meets the constraints"
		}
	}
}

// margin says how a compares with b on the goal's measure: "3.3% more
// throughput than the next".
func (s *searcher) margin(a, b *Candidate, than string) string {
	rel := func(x, y float64, more, less string) string {
		if x == y {
			return "as good " + strings.Replace(than, "than", "as", 1) + " on the goal (" + s.tieBreak(a, b) + ")"
		}
		if y == 0 {
			return fmt.Sprintf("%s %s", more, than)
		}
		word := more
		if x < y {
			word = less
		}
		return fmt.Sprintf("%.3g%% %s %s", math.Abs(x-y)/y*100, word, than)
	}
	switch s.opts.Goal {
	case GoalLatency:
		return rel(float64(a.Metrics.FirstLatencyNS), float64(b.Metrics.FirstLatencyNS), "longer first-sample latency", "shorter first-sample latency")
	case GoalRate:
		return rel(a.Rate, b.Rate, "higher sustained rate", "lower sustained rate")
	case GoalDevices:
		if a.Devices != b.Devices {
			return fmt.Sprintf("%d devices, %d %s", a.Devices, b.Devices, strings.TrimPrefix(than, "than "))
		}
	}
	return rel(s.throughput(a), s.throughput(b), "more throughput", "less throughput")
}

// nextShape is the best ranked candidate of another shape than the
// winner (not the same layout with devices in another order), or nil.
func nextShape(ranked []*Candidate) *Candidate {
	for _, c := range ranked[min(1, len(ranked)):] {
		if c.ShortLabel() != ranked[0].ShortLabel() {
			return c
		}
	}
	return nil
}

// tieBreak says which criterion ordered two candidates that tie on the
// goal.
func (s *searcher) tieBreak(a, b *Candidate) string {
	ma, mb := a.Metrics, b.Metrics
	switch {
	case s.opts.Goal != GoalThroughput && s.throughput(a) != s.throughput(b):
		return "ordered by throughput"
	case ma.FirstLatencyNS != mb.FirstLatencyNS:
		return "ordered by first-sample latency"
	case a.Devices != b.Devices:
		return "ordered by device count"
	}
	return "the same numbers; ordered by name"
}

// findRate bisects the Poisson arrival rate between 0 and c's capacity
// for the highest at which c's p95 sample latency (and first-sample
// latency, under its SLO) stays within the SLO, simulating RateSamples
// arrivals from the plan's seed at each rate. Latency is taken to grow
// with the rate, as a queue's does; that holds for one-sample
// micro-batches without jitter (fixed service times, the same arrival
// draws scaled), and is an assumption where micro-batches form from the
// queue or steps jitter. A candidate that meets the SLO at its capacity
// bound gets the bound itself.
func (s *searcher) findRate(c *Candidate) {
	// failed is set when a simulation could not run at all (it is not an
	// SLO miss): c fails with its reason.
	var failed string
	ok := func(rate float64) bool {
		q := c.Plan.Clone()
		q.Workload = plan.Workload{Samples: s.opts.RateSamples, Seed: c.Plan.Workload.Seed,
			Arrival: plan.Arrival{Kind: plan.ArrivalPoisson, Rate: rate}}
		r := &Candidate{Plan: q}
		if !s.simulate(r) {
			if failed == "" {
				failed = fmt.Sprintf("at %s: %s", timeline.FormatRate(rate), r.Why)
			}
			return false
		}
		m := r.Metrics
		if (s.opts.SLOFirstNS > 0 && m.FirstLatencyNS > s.opts.SLOFirstNS) || m.LatencyP95NS > s.opts.SLOP95NS {
			return false
		}
		c.Metrics = m // the metrics at the highest rate that met the SLO
		return true
	}
	hi := c.Capacity
	if math.IsInf(hi, 0) {
		hi = 2 * c.nominalCapacity // jitter leaves no hard bound: search up to twice the mean
	}
	if math.IsInf(hi, 0) || !(hi > 0) {
		c.Fate, c.Why = FateFailed, "no finite capacity to search below"
		return
	}
	lo := hi / (1 << rateSteps)
	defer func() {
		if failed != "" && s.stopped == nil {
			c.Fate, c.Why, c.Rate = FateFailed, failed, 0
		}
	}()
	if !ok(lo) {
		c.Fate, c.Why = FateSLO, fmt.Sprintf("p95 sample latency over the SLO of %s even at %s", timeline.FormatNS(s.opts.SLOP95NS), timeline.FormatRate(lo))
		return
	}
	c.Rate = lo
	if ok(hi) { // the SLO holds up to the capacity bound: the bound is the answer
		c.Rate, c.Fate, c.RateCapped = hi, FateBest, true
		return
	}
	for range rateSteps {
		mid := (lo + hi) / 2
		if ok(mid) {
			lo, c.Rate = mid, mid
		} else {
			hi = mid
		}
	}
	c.Fate = FateBest
}
