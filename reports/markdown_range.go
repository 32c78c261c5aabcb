package reports

import (
	"fmt"
	"strings"

	"github.com/vdpp/vdpp/timeline"
)

// Range is a predicted range of the metrics, as a report shows it (the
// CLI fills it from study.Range): each metric's p10, p50 and p90 over
// seeded simulations of the plan that draw their own step jitter and cost
// scale, and, beside a measurement, where the measured headline metrics
// fell against it.
type Range struct {
	// Runs is the number of simulations; 0 when there is no range, and
	// Note says why.
	Runs int
	// Spread says what varied between the runs, in words.
	Spread string
	// Note, when Runs is 0, says why there is no range.
	Note string
	// Quantiles are by metric column (timeline.Column.JSONKey); a column
	// without a value in every run has none.
	Quantiles map[string]Quantiles
	// Checks are where the measured headline metrics fell.
	Checks []RangeCheck
}

// Quantiles are a metric's p10, p50 and p90 over a range's runs.
type Quantiles struct{ P10, P50, P90 float64 }

// RangeCheck is where a measured metric (by column Key) fell against its
// range: "inside" [P10, P90], "below" or "above".
type RangeCheck struct {
	Key      string
	Measured float64
	Range    Quantiles
	Where    string
}

// RangeDefinition defines the predicted range once, for a report's
// definitions and the CLI's notes.
const RangeDefinition = "p10–p90 of each metric over seeded simulations of the same plan and workload (the same arrivals), " +
	"each drawing its own step jitter (the profile's jitter, the relative standard deviation of a step) and its own cost scale per device kind, " +
	"uniform within ±drift (the profile's drift, how much the mean UNet call moved between repeated profile passes) on UNet, encode and decode times (first calls included); " +
	"p10 is the smallest value with at least 10% of the runs at or below it (nearest rank), p90 likewise. " +
	"The point prediction is the plan's own simulation. Even a perfect model leaves about one measurement in five outside [p10, p90]; " +
	"more fall outside when the machine drifted further than the profile measured."

// of returns the quantiles of col; false when the range has none.
func (g *Range) of(col timeline.Column) (Quantiles, bool) {
	if g == nil || g.Runs == 0 {
		return Quantiles{}, false
	}
	q, ok := g.Quantiles[col.JSONKey()]
	return q, ok
}

// Over is what a range is over, in words: "p10–p90 over 40 seeded runs:
// step jitter 10.5%, ...".
func (g *Range) Over() string {
	return fmt.Sprintf("p10–p90 over %d seeded runs: %s", g.Runs, g.Spread)
}

// FormatRange writes the interval [lo, hi] of column col's values, with
// the unit once when both ends share it: "1.02 – 1.10 s", "812 ms – 1.02 s",
// "87.3% – 88.1%".
func FormatRange(col timeline.Column, lo, hi float64) string {
	a, b := col.Format(lo), col.Format(hi)
	if i, j := strings.LastIndexByte(a, ' '), strings.LastIndexByte(b, ' '); i > 0 && j > 0 && a[i:] == b[j:] {
		a = a[:i]
	}
	return a + " – " + b
}

// throughputColumn is the throughput a range is read by beside the runs
// ms: steady-state throughput when the range has it and no run lacks a
// steady state, else overall throughput (timeline.ThroughputForRanking's
// rule).
func (g *Range) throughputColumn(ms ...*timeline.Metrics) timeline.Column {
	key := "throughput"
	col, _ := timeline.LookupColumn(key)
	if _, ok := g.of(col); !ok {
		key = "overall_throughput"
	}
	for _, m := range ms {
		if m != nil && m.TooFewSamples {
			key = "overall_throughput"
		}
	}
	col, _ = timeline.LookupColumn(key)
	return col
}

// verdictLines are the range's lines in the verdict: where the
// measurement fell, or the predicted range of the headline metrics, or
// why there is none.
func (g *Range) verdictLines(pred *timeline.Metrics) []string {
	if g == nil {
		return nil
	}
	if g.Runs == 0 {
		return []string{"No predicted range: " + g.Note + "."}
	}
	if len(g.Checks) > 0 {
		var parts []string
		for _, c := range g.Checks {
			col, _ := timeline.LookupColumn(c.Key)
			where := "inside it"
			if c.Where != "inside" {
				where = "**" + c.Where + " it**"
			}
			parts = append(parts, fmt.Sprintf("%s %s is %s (%s)", col.Label, col.Format(c.Measured), where, FormatRange(col, c.Range.P10, c.Range.P90)))
		}
		return []string{fmt.Sprintf("Measured against the predicted range (%s): %s.", g.Over(), strings.Join(parts, "; "))}
	}
	first, _ := timeline.LookupColumn("first_latency")
	var parts []string
	for _, col := range []timeline.Column{first, g.throughputColumn(pred)} {
		if q, ok := g.of(col); ok {
			parts = append(parts, fmt.Sprintf("%s %s", col.Label, FormatRange(col, q.P10, q.P90)))
		}
	}
	if len(parts) == 0 {
		return nil
	}
	return []string{fmt.Sprintf("Predicted range (%s): %s.", g.Over(), strings.Join(parts, ", "))}
}

// cell is the range of col in a table cell, "—" when there is none.
func (g *Range) cell(col timeline.Column) string {
	if q, ok := g.of(col); ok {
		return FormatRange(col, q.P10, q.P90)
	}
	return "—"
}

// checkCell is where the measured value of col fell, "—" when it was not
// checked.
func (g *Range) checkCell(col timeline.Column) string {
	if g == nil {
		return "—"
	}
	for _, c := range g.Checks {
		if c.Key == col.Key {
			return c.Where
		}
	}
	return "—"
}

// hasQuantiles reports whether the range has any metric to show.
func (g *Range) hasQuantiles() bool { return g != nil && g.Runs > 0 && len(g.Quantiles) > 0 }
