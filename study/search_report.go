package study

import (
	"fmt"
	"sort"
	"strings"

	"github.com/vdpp/vdpp/timeline"
)

// ShortLabel names a candidate without its devices: "1×7 balanced mb 1
// buffered", for chart labels.
func (c *Candidate) ShortLabel() string {
	l := fmt.Sprintf("%d×%d", c.Replicas, c.Stages)
	if c.Stages > 1 {
		l += " " + string(c.Assignment)
	}
	l += fmt.Sprintf(" mb %d", c.MicroBatch)
	if c.Stages > 1 {
		l += " " + string(c.Handoff)
	}
	return l
}

// Equivalent reports whether two simulated candidates are the same
// layout shape with the same numbers: device orders that the plan's costs
// cannot tell apart, which a table may show as one row.
func Equivalent(a, b *Candidate) bool {
	return a.ShortLabel() == b.ShortLabel() && a.Devices == b.Devices && a.Rate == b.Rate && a.Metrics != nil && b.Metrics != nil &&
		a.Metrics.Throughput == b.Metrics.Throughput && a.Metrics.OverallThroughput == b.Metrics.OverallThroughput && a.Metrics.FirstLatencyNS == b.Metrics.FirstLatencyNS &&
		a.Metrics.LatencyP95NS == b.Metrics.LatencyP95NS
}

// Frontier returns the simulated candidates that no other simulated one
// beats on both throughput and first-sample latency (the Pareto
// frontier), by latency; candidates with the same pair of numbers keep
// only the first in the search's order.
func (r *SearchResult) Frontier() []*Candidate {
	var sim []*Candidate
	for _, c := range r.All {
		if c.Metrics != nil {
			sim = append(sim, c)
		}
	}
	sort.SliceStable(sim, func(i, j int) bool {
		a, b := sim[i].Metrics, sim[j].Metrics
		if a.FirstLatencyNS != b.FirstLatencyNS {
			return a.FirstLatencyNS < b.FirstLatencyNS
		}
		return r.Throughput(sim[i]) > r.Throughput(sim[j])
	})
	var out []*Candidate
	for _, c := range sim {
		if len(out) == 0 || r.Throughput(c) > r.Throughput(out[len(out)-1]) {
			out = append(out, c)
		}
	}
	return out
}

// Loss is how many candidates lost for one reason, with an example.
type Loss struct {
	Fate    Fate
	Count   int
	Example string
}

// Losses counts the candidates that are not ranked, by fate, most common
// first, each with the first one's label and reason as an example; the
// ranked ones that are not the winner count as "lost on the goal".
func (r *SearchResult) Losses() []Loss {
	idx := map[Fate]int{}
	var out []Loss
	add := func(f Fate, ex string) {
		i, ok := idx[f]
		if !ok {
			i = len(out)
			idx[f] = i
			out = append(out, Loss{Fate: f, Example: ex})
		}
		out[i].Count++
	}
	for _, c := range r.All {
		if c.Fate != FateBest {
			add(c.Fate, c.Label+": "+c.Why)
		}
	}
	if len(r.Ranked) > 1 {
		for _, c := range r.Ranked[1:] {
			add("goal", c.Label+": "+c.Why)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Count > out[j].Count })
	return out
}

// Describe says the goal and constraints in words, for tables and reports.
func (o SearchOptions) Describe() (goal string, constraints []string) {
	switch o.Goal {
	case GoalLatency:
		goal = "the lowest first-sample latency"
	case GoalRate:
		goal = fmt.Sprintf("the highest Poisson arrival rate whose p95 sample latency stays within %s (%d arrivals a simulation)", timeline.FormatNS(o.SLOP95NS), o.RateSamples)
	case GoalDevices:
		goal = fmt.Sprintf("the fewest devices that reach %s, then the highest throughput", timeline.FormatRate(o.TargetThroughput))
	default:
		goal = "the highest throughput (steady-state; overall, samples / makespan, where the samples are too few for a steady state)"
	}
	if o.SLOFirstNS > 0 {
		constraints = append(constraints, "first-sample latency at most "+timeline.FormatNS(o.SLOFirstNS))
	}
	if o.SLOP95NS > 0 && o.Goal != GoalRate {
		constraints = append(constraints, "p95 sample latency at most "+timeline.FormatNS(o.SLOP95NS))
	}
	constraints = append(constraints, fmt.Sprintf("at most %d devices", o.MaxDevices))
	mbs := make([]string, len(o.MicroBatches))
	for i, b := range o.MicroBatches {
		mbs[i] = fmt.Sprint(b)
	}
	constraints = append(constraints, "micro-batch "+strings.Join(mbs, ", ")+"; every layout fits in device memory")
	return goal, constraints
}
