package timeline

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func TestColumnTable(t *testing.T) {
	keys, jsonKeys := map[string]bool{}, map[string]bool{}
	for _, c := range Columns() {
		if c.Key == "" || c.Label == "" || c.Def == "" || c.Get == nil || c.Format == nil {
			t.Errorf("column %q is incomplete: %+v", c.Key, c)
		}
		switch c.Unit {
		case UnitNS, UnitPerSecond, UnitFraction:
		default:
			t.Errorf("column %q: unknown unit %q", c.Key, c.Unit)
		}
		if strings.Contains(c.Def, "\n") {
			t.Errorf("column %q: definition is more than one line", c.Key)
		}
		if keys[c.Key] || jsonKeys[c.JSONKey()] {
			t.Errorf("column %q: key or JSON key %q used twice", c.Key, c.JSONKey())
		}
		keys[c.Key], jsonKeys[c.JSONKey()] = true, true
		if got, ok := LookupColumn(c.Key); !ok || got.Label != c.Label {
			t.Errorf("LookupColumn(%q) = %+v, %v", c.Key, got, ok)
		}
	}
	if _, ok := LookupColumn("no such metric"); ok {
		t.Error("LookupColumn found a column that does not exist")
	}
}

// The JSON form carries every column under its JSON key, with the value the
// column reads, whether the column is a field or not.
func TestMetricsJSONCarriesEveryColumn(t *testing.T) {
	for _, tl := range []*Timeline{pipeline3x4(), arrivals2()} {
		m := tl.Metrics()
		data, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		var obj map[string]any
		if err := json.Unmarshal(data, &obj); err != nil {
			t.Fatalf("%s: %v\n%s", tl.Meta.Plan, err, data)
		}
		for _, c := range Columns() {
			got, ok := obj[c.JSONKey()].(float64)
			if c.Why != nil && c.Why(&m) != "" {
				// n/a in tables; the JSON keeps the figure beside its flag.
				if !ok || obj["throughput_too_few_samples"] != true {
					t.Errorf("%s: JSON %s = %v with throughput_too_few_samples %v, want the figure and true", tl.Meta.Plan, c.JSONKey(), obj[c.JSONKey()], obj["throughput_too_few_samples"])
				}
				continue
			}
			if want := c.Get(&m); !ok || got != want {
				t.Errorf("%s: JSON %s = %v, column reads %v", tl.Meta.Plan, c.JSONKey(), obj[c.JSONKey()], want)
			}
		}
	}
}

// The keys scripts read from metrics.json and --json stay as they were
// before the JSON form became the struct itself, and bookkeeping fields
// stay out of it.
func TestMetricsJSONKeys(t *testing.T) {
	m := pipeline3x4().Metrics()
	data, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var obj struct {
		Top     map[string]any
		Devices []map[string]any `json:"devices"`
		Stages  []map[string]any `json:"stages"`
	}
	if err := json.Unmarshal(data, &obj.Top); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &obj); err != nil {
		t.Fatal(err)
	}
	has := func(where string, o map[string]any, keys ...string) {
		for _, k := range keys {
			if _, ok := o[k]; !ok {
				t.Errorf("%s lacks %q: %v", where, k, o)
			}
		}
	}
	has("metrics", obj.Top, "samples", "first_latency_ns", "first_sample", "throughput_per_s", "throughput_window_ns",
		"makespan_ns", "latency_mean_ns", "latency_p50_ns", "latency_p95_ns", "latency_p99_ns", "latency_min_ns",
		"latency_max_ns", "latency_exact", "warmup_ns", "devices", "stages", "span_counts")
	has("device", obj.Devices[0], "device", "busy_ns", "utilisation", "idle_ns", "fill_ns", "drain_ns", "between_ns",
		"wait_ns", "send_ns", "recv_ns", "warmup_ns")
	has("stage", obj.Stages[0], "pipeline", "stage", "devices", "busy_ns", "step_ns")
	for _, k := range []string{"Batch", "batch", "OriginNS", "origin_ns", "WarmupSpans", "latency"} {
		if _, ok := obj.Top[k]; ok {
			t.Errorf("metrics JSON has %q", k)
		}
	}
	var empty map[string]any
	data, err = json.Marshal(Metrics{})
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &empty); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"devices", "stages", "span_counts"} {
		if empty[k] == nil {
			t.Errorf("empty metrics: %s is null, want empty", k)
		}
	}
}

// nearestRank is the p-th percentile of sorted by its definition.
func nearestRank(sorted []int64, p float64) int64 {
	r := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[max(1, min(r, len(sorted)))-1]
}

func TestLatencyPercentile(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 9))
	for _, n := range []int{1, 7, 1000, maxExact + 1000} {
		a := NewAccumulator(nil)
		lats := make([]int64, n)
		for i := range lats {
			lats[i] = 1 + rnd.Int64N(5e9)
			a.AddSample(Sample{ID: i, Release: int64(i), Done: int64(i) + lats[i]})
		}
		slices.Sort(lats)
		m := a.Result()
		for _, p := range []float64{0.1, 1, 10, 50, 90, 95, 99, 99.9, 100} {
			got, ok := m.LatencyPercentileNS(p)
			want := nearestRank(lats, p)
			tol := 0.0
			if !m.LatencyExact {
				tol = 0.005
			}
			if !ok || math.Abs(float64(got-want)) > tol*float64(want) {
				t.Errorf("n %d p%g: %d (ok %v), want %d within %g", n, p, got, ok, want, tol)
			}
		}
		for _, c := range []struct {
			p     float64
			field int64
		}{{50, m.LatencyP50NS}, {95, m.LatencyP95NS}, {99, m.LatencyP99NS}} {
			if got, _ := m.LatencyPercentileNS(c.p); got != c.field {
				t.Errorf("n %d: LatencyPercentileNS(%g) = %d, field %d", n, c.p, got, c.field)
			}
		}
	}
}

// Metrics read back from JSON know their stored percentiles only, and a
// column of another percentile says so (NaN, shown as n/a, null in JSON).
func TestLatencyPercentileDecoded(t *testing.T) {
	m := pipeline3x4().Metrics()
	data, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var back Metrics
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if got, ok := back.LatencyPercentileNS(95); !ok || got != m.LatencyP95NS {
		t.Errorf("decoded p95 %d %v, want %d", got, ok, m.LatencyP95NS)
	}
	if _, ok := back.LatencyPercentileNS(42); ok {
		t.Error("decoded metrics claim to know p42")
	}
	c := latencyPercentile(42)
	if v := c.Get(&back); !math.IsNaN(v) || c.Text(&back) != "n/a" {
		t.Errorf("p42 column of decoded metrics: %v %q, want NaN n/a", v, c.Text(&back))
	}
}

func TestRatios(t *testing.T) {
	a, b := pipeline3x4().Metrics(), arrivals2().Metrics()
	r := Ratios(&a, &b)
	for _, c := range Columns() {
		x, y := c.Get(&a), c.Get(&b)
		got, ok := r[c.Key]
		if y == 0 || math.IsNaN(x) || math.IsNaN(y) {
			if ok {
				t.Errorf("%s: ratio %v over a zero baseline", c.Key, got)
			}
			continue
		}
		if !ok || got != x/y {
			t.Errorf("%s: ratio %v (%v), want %v / %v", c.Key, got, ok, x, y)
		}
	}
}

func TestColumnError(t *testing.T) {
	for _, c := range []struct {
		key        string
		pred, meas float64
		want       string
	}{
		{"first_latency", 110, 100, FormatSignedPercent(0.1)},
		{"throughput", 0.9, 1, FormatSignedPercent(-0.1)},
		{"mean_utilisation", 0.5, 0.25, FormatSignedPP(0.25)},
	} {
		col, ok := LookupColumn(c.key)
		if !ok {
			t.Fatalf("no column %s", c.key)
		}
		if got := col.Error(c.pred, c.meas); got != c.want {
			t.Errorf("%s error(%v, %v) = %q, want %q", c.key, c.pred, c.meas, got, c.want)
		}
	}
}

// The definition of sample latency names the percentiles the table has.
func TestLatencyDefinitionNamesPercentiles(t *testing.T) {
	var def string
	for _, d := range Definitions() {
		if d.Name == "sample latency" {
			def = d.Text
		}
	}
	n := 0
	for _, c := range Columns() {
		if c.percentile > 0 {
			n++
			if !strings.Contains(def, fmt.Sprintf("p%g", c.percentile)) {
				t.Errorf("sample latency definition does not name p%g: %s", c.percentile, def)
			}
		}
	}
	if n == 0 || !strings.Contains(def, " and ") {
		t.Errorf("%d percentile columns; definition %q", n, def)
	}
}
