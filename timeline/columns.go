package timeline

import "math"

// columns is the metric table, in the order tables print it. Every CLI
// table, JSON form, Markdown report and prediction-error table is made
// from it: to add a metric, add its line here (a latency percentile is
// latencyPercentile(p)). See Column for what each field means.
var columns = []Column{
	headline(nsColumn("first_latency", "first-sample latency",
		"completion of the first finished sample minus its release (see first-sample latency)",
		func(m *Metrics) int64 { return m.FirstLatencyNS })),
	{Key: "throughput", Label: "steady-state throughput", Short: "throughput", Unit: UnitPerSecond, Headline: true,
		Def: "samples per second once the pipelines are full, summed over pipelines (see steady-state throughput)",
		Get: func(m *Metrics) float64 {
			if m.TooFewSamples {
				return math.NaN()
			}
			return m.Throughput
		},
		Why: func(m *Metrics) string {
			if m.TooFewSamples && m.Samples > 0 {
				return "too few samples"
			}
			return ""
		},
		Format: FormatRate},
	{Key: "overall_throughput", Label: "overall throughput", Short: "overall throughput", Unit: UnitPerSecond,
		Def: "samples / makespan, fill and drain included (see overall throughput)",
		Get: func(m *Metrics) float64 { return m.OverallThroughput }, Format: FormatRate},
	nsColumn("makespan", "makespan",
		"from the first release or span start to the last completion or span end (see makespan)",
		func(m *Metrics) int64 { return m.MakespanNS }),
	{Key: "latency_mean", Label: "sample latency mean", Unit: UnitNS,
		Def: "mean of done − release over all samples, exact (see sample latency)",
		Get: func(m *Metrics) float64 { return m.LatencyMeanNS }, Format: formatNS},
	latencyPercentile(50),
	latencyPercentile(90),
	latencyPercentile(95),
	latencyPercentile(99),
	{Key: "mean_utilisation", Label: "mean device utilisation", Short: "mean utilisation", Unit: UnitFraction,
		Def: "mean over the devices of busy time / makespan (see utilisation)",
		Get: meanUtilisation, Format: FormatPercent},
}
