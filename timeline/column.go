package timeline

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"sync"
)

// Unit is what the values of a column count.
type Unit string

// Units of the columns.
const (
	UnitNS        Unit = "ns"       // nanoseconds, shown as s, ms, µs or ns
	UnitPerSecond Unit = "per_s"    // samples per second
	UnitFraction  Unit = "fraction" // a share of 1, shown as a percentage
)

// Column is one metric of the table (Columns) from which every CLI table,
// JSON form, Markdown report and prediction-error table is made, so that a
// metric is named, defined, read and written in one place.
type Column struct {
	// Key names the metric in JSON: ratio maps use Key itself, the metrics
	// object Key with its unit (JSONKey): "first_latency", "first_latency_ns".
	Key string
	// Label is the metric's name in tables: "first-sample latency".
	Label string
	// Short is the label in narrow tables ("throughput"); empty: Label.
	Short string
	// Def is the metric's definition, in one line.
	Def string
	// Unit is what its values count.
	Unit Unit
	// Get reads the metric off m; NaN when m does not know it.
	Get func(m *Metrics) float64
	// Format writes one value with its unit, three significant digits.
	Format func(v float64) string
	// Why, if set, says why m has no value (Get is NaN): Text writes
	// "n/a (WHY)". Empty: the value stands.
	Why func(m *Metrics) string
	// Headline marks the metrics a one-line summary leads with (first-sample
	// latency and throughput; see Headlines).
	Headline bool

	// percentile is p for the column of the p-th latency percentile.
	percentile float64
}

// JSONKey is the column's key in the JSON form of Metrics: Key with the
// unit, "_ns" or "_per_s" (fractions have none).
func (c Column) JSONKey() string {
	switch c.Unit {
	case UnitNS:
		return c.Key + "_ns"
	case UnitPerSecond:
		return c.Key + "_per_s"
	}
	return c.Key
}

// ShortLabel is Short, or Label when the column has no short label.
func (c Column) ShortLabel() string {
	if c.Short != "" {
		return c.Short
	}
	return c.Label
}

// Text is the column's value in m, formatted.
func (c Column) Text(m *Metrics) string {
	if c.Why != nil {
		if why := c.Why(m); why != "" {
			return "n/a (" + why + ")"
		}
	}
	return c.Format(c.Get(m))
}

// Error formats the signed error of a predicted value against a measured
// one: the relative error (predicted − measured) / measured in percent, or
// for a fraction the difference in percentage points.
func (c Column) Error(predicted, measured float64) string {
	if c.Unit == UnitFraction {
		return FormatSignedPP(predicted - measured)
	}
	return FormatSignedPercent(RelError(predicted, measured))
}

// Ratio returns the column's value in a over its value in b; ok is false
// when b's is 0 or either is unknown.
func (c Column) Ratio(a, b *Metrics) (r float64, ok bool) {
	x, y := c.Get(a), c.Get(b)
	if y == 0 || math.IsNaN(x) || math.IsNaN(y) {
		return 0, false
	}
	return x / y, true
}

// Columns returns the metric table, in the order tables print it.
func Columns() []Column { return slices.Clone(columns) }

// Headlines returns the columns marked Headline, in table order: what a
// one-line summary of a run or of a prediction's error reports.
func Headlines() []Column {
	var out []Column
	for _, c := range columns {
		if c.Headline {
			out = append(out, c)
		}
	}
	return out
}

// LookupColumn returns the column of the given Key.
func LookupColumn(key string) (Column, bool) {
	for _, c := range columns {
		if c.Key == key {
			return c, true
		}
	}
	return Column{}, false
}

// Ratios returns a / b for every column (by Key) where the ratio is
// defined: how a run compares with a baseline, in JSON.
func Ratios(a, b *Metrics) map[string]float64 {
	out := map[string]float64{}
	for _, c := range columns {
		if r, ok := c.Ratio(a, b); ok {
			out[c.Key] = r
		}
	}
	return out
}

// MarshalJSON writes m as its fields, by their json tags, then the value
// of every column that is not a field under its JSONKey (null when m does
// not know it). Devices, stages and span counts are never null.
func (m Metrics) MarshalJSON() ([]byte, error) {
	type fields Metrics // the same struct without this method
	f := fields(m)
	if f.Devices == nil {
		f.Devices = []DeviceMetrics{}
	}
	if f.Stages == nil {
		f.Stages = []StageMetrics{}
	}
	if f.SpanCounts == nil {
		f.SpanCounts = map[Kind]int{}
	}
	b, err := json.Marshal(f)
	if err != nil {
		return nil, fmt.Errorf("timeline: metrics json: %w", err)
	}
	var extra bytes.Buffer
	for _, c := range columns {
		k := c.JSONKey()
		if metricsFieldKeys()[k] {
			continue
		}
		v := c.Get(&m)
		val := []byte("null")
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			if val, err = json.Marshal(v); err != nil {
				return nil, fmt.Errorf("timeline: metrics json: %s: %w", k, err)
			}
		}
		fmt.Fprintf(&extra, ",%q:%s", k, val)
	}
	b = append(b[:len(b)-1], extra.Bytes()...)
	return append(b, '}'), nil
}

// metricsFieldKeys is the set of JSON keys of the fields of Metrics.
var metricsFieldKeys = sync.OnceValue(func() map[string]bool {
	keys := map[string]bool{}
	t := reflect.TypeFor[Metrics]()
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			keys[name] = true
		}
	}
	return keys
})

// nsColumn is a column of nanoseconds.
func nsColumn(key, label, def string, get func(m *Metrics) int64) Column {
	return Column{Key: key, Label: label, Def: def, Unit: UnitNS,
		Get: func(m *Metrics) float64 { return float64(get(m)) }, Format: formatNS}
}

func headline(c Column) Column {
	c.Headline = true
	return c
}

func formatNS(v float64) string { return FormatSeconds(v / 1e9) }

// latencyPercentile is the column of the p-th percentile of sample latency.
func latencyPercentile(p float64) Column {
	return Column{
		Key:   fmt.Sprintf("latency_p%g", p),
		Label: fmt.Sprintf("sample latency p%g", p),
		Def: fmt.Sprintf("the smallest sample latency (done − release) with at least %g%% of the samples at or below it "+
			"(nearest rank; see sample latency)", p),
		Unit: UnitNS,
		Get: func(m *Metrics) float64 {
			if v, ok := m.LatencyPercentileNS(p); ok {
				return float64(v)
			}
			return math.NaN()
		},
		Format:     formatNS,
		percentile: p,
	}
}

// meanUtilisation is the mean of the devices' utilisation (0 without devices).
func meanUtilisation(m *Metrics) float64 {
	if len(m.Devices) == 0 {
		return 0
	}
	var s float64
	for _, d := range m.Devices {
		s += d.Utilisation
	}
	return s / float64(len(m.Devices))
}

// latencyDefinition is the definition of sample latency, naming the
// percentiles that the column table reports.
func latencyDefinition() string {
	var ps []string
	for _, c := range columns {
		if c.percentile > 0 {
			ps = append(ps, fmt.Sprintf("p%g", c.percentile))
		}
	}
	list := strings.Join(ps, ", ")
	if n := len(ps); n > 1 {
		list = strings.Join(ps[:n-1], ", ") + " and " + ps[n-1]
	}
	return "Sample latency: done minus release, per sample; reported as mean and as " + list + " by nearest rank " +
		"(the smallest latency with at least p% of the samples at or below it). " +
		"Exact while at most 65536 samples have been seen; beyond that the percentiles come from a " +
		"log-bucketed histogram (buckets 1% wide) whose estimate is within 0.5% of the exact value. " +
		"The mean is always exact."
}
