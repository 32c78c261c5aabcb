package reports

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vdpp/vdpp/plan"
	"github.com/vdpp/vdpp/timeline"
)

// twoStage builds a timeline of a 2-stage pipeline: n samples released at
// 0, stage 0 takes a ns per sample, stage 1 b ns, hand-off instant.
func twoStage(source string, n int, a, b int64) *timeline.Timeline {
	tl := &timeline.Timeline{Meta: timeline.Meta{
		Plan: "svd-14f-320x576-2xa5000", Source: source, Devices: []string{"gpu0", "gpu1"},
		Machine: source + "-machine", Versions: map[string]string{"go": "go1.26", "vdpp": "dev"},
		Created: "2026-01-02T03:04:05Z",
	}}
	var free0, free1 int64
	for i := 0; i < n; i++ {
		s0, e0 := free0, free0+a
		free0 = e0
		s1 := max(e0, free1)
		e1 := s1 + b
		free1 = e1
		tl.AddSpan(timeline.Span{Device: "gpu0", Kind: timeline.KindStep, Samples: []int{i}, Stage: 0, FirstStep: 0, LastStep: 13, Start: s0, End: e0, Warmup: i == 0})
		tl.AddSpan(timeline.Span{Device: "gpu1", Kind: timeline.KindStep, Samples: []int{i}, Stage: 1, FirstStep: 14, LastStep: 27, Start: s1, End: e1, Warmup: i == 0})
		tl.AddSample(timeline.Sample{ID: i, Release: 0, Done: e1})
	}
	return tl
}

// dataParallel builds two one-stage pipelines running whole samples of t ns.
func dataParallel(n int, t int64) *timeline.Timeline {
	tl := &timeline.Timeline{Meta: timeline.Meta{Plan: "svd-14f-320x576-2xa5000-dp", Source: "sim", Devices: []string{"gpu0", "gpu1"}}}
	for i := 0; i < n; i++ {
		d := i % 2
		s := int64(i/2) * t
		tl.AddSpan(timeline.Span{Device: []string{"gpu0", "gpu1"}[d], Kind: timeline.KindStep, Samples: []int{i}, Pipeline: d, FirstStep: 0, LastStep: 27, Start: s, End: s + t})
		tl.AddSample(timeline.Sample{ID: i, Pipeline: d, Release: 0, Done: s + t})
	}
	return tl
}

func loadPlan(t *testing.T) *plan.Plan {
	t.Helper()
	p, err := plan.Load("../configs/svd-14f-320x576-2xa5000.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		gl, wl := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
		for i := 0; i < len(gl) || i < len(wl); i++ {
			var g, w string
			if i < len(gl) {
				g = gl[i]
			}
			if i < len(wl) {
				w = wl[i]
			}
			if g != w {
				t.Fatalf("%s differs at line %d:\n got: %s\nwant: %s\n(run go test -update if the change is intended)", path, i+1, g, w)
			}
		}
	}
}

func TestMarkdownGolden(t *testing.T) {
	p := loadPlan(t)
	// Measured stages are 10% and 30% slower than predicted.
	pred := twoStage("sim", 4, 1_000_000_000, 2_000_000_000)
	meas := twoStage("exec", 4, 1_100_000_000, 2_600_000_000)
	base := dataParallel(4, 3_000_000_000)
	cases := []struct {
		name string
		r    Report
	}{
		{"markdown_compare.golden", Report{Plan: p, Predicted: NewRun(pred), Measured: NewRun(meas), Baseline: NewRun(base),
			Images: []Image{{Title: "Gantt charts", Path: "gantt.png"}}}},
		{"markdown_predicted.golden", Report{Plan: p, Predicted: NewRun(pred), BaselineNote: "turned off with --no-dp"}},
		{"markdown_noplan.golden", Report{Title: "two timelines", Predicted: NewRun(pred), Measured: NewRun(meas)}},
		{"markdown_range_predicted.golden", Report{Plan: p, Predicted: NewRun(pred), BaselineNote: "turned off with --no-dp", Range: handRange(pred, nil)}},
		{"markdown_range_compare.golden", Report{Plan: p, Predicted: NewRun(pred), Measured: NewRun(meas), Range: handRange(pred, meas)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := RenderMarkdown(&buf, c.r); err != nil {
				t.Fatal(err)
			}
			checkGolden(t, c.name, buf.Bytes())
		})
	}
}

// TestMarkdownErrors checks the numbers of the error table against values
// computed by hand from the timelines' construction, not from the code.
func TestMarkdownErrors(t *testing.T) {
	pred := twoStage("sim", 4, 1_000_000_000, 2_000_000_000)
	meas := twoStage("exec", 4, 1_100_000_000, 2_600_000_000)
	var buf bytes.Buffer
	if err := RenderMarkdown(&buf, Report{Plan: loadPlan(t), Predicted: NewRun(pred), Measured: NewRun(meas)}); err != nil {
		t.Fatal(err)
	}
	md := buf.String()
	// First sample: predicted 1+2 = 3 s, measured 1.1+2.6 = 3.7 s: −18.9%.
	// Throughput: stage 1 sets the rate, 1/2 against 1/2.6 samples/s: +30.0%.
	// Stage 0 busy: 4 s against 4.4 s: −9.09%; stage 1: 8 s against 10.4 s: −23.1%.
	for _, want := range []string{
		"| first-sample latency | 3.00 s | 3.70 s | −18.9% |",
		"| steady-state throughput | 0.500 samples/s | 0.385 samples/s | +30.0% |",
		"| 0 | 0 | gpu0 | 4.00 s | 4.40 s | −9.09% |",
		"| 0 | 1 | gpu1 | 8.00 s | 10.4 s | −23.1% |",
		"> **Warning:** " + CostWarning,
		"![Gantt", // no images given: must not appear
	} {
		has := strings.Contains(md, want)
		if want == "![Gantt" {
			has = !has
		}
		if !has {
			t.Errorf("report lacks %q", want)
		}
	}
	if err := RenderMarkdown(&buf, Report{}); err == nil {
		t.Error("a report without runs was accepted")
	}
}

func TestWriteMarkdownAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "report.md")
	r := Report{Predicted: NewRun(twoStage("sim", 3, 1e9, 1e9))}
	if err := WriteMarkdown(path, r); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("want only report.md in the directory, got %d entries", len(entries))
	}
	if err := WriteMarkdown(filepath.Join(dir, "missing", "r.md"), r); err == nil || !strings.HasPrefix(err.Error(), "reports: markdown:") {
		t.Errorf("write into a missing directory: got %v", err)
	}
}

func TestSweepMarkdownGolden(t *testing.T) {
	one := twoStage("sim", 4, 1e9, 1e9).Metrics()
	two := dataParallel(4, 2e9).Metrics()
	rows := []SweepRow{
		{Layout: "pipeline", Devices: 1, Replicas: 1, Stages: 1, Metrics: &one},
		{Layout: "data parallel", Devices: 2, Replicas: 2, Stages: 1, Metrics: &two},
		{Layout: "pipeline", Devices: 40, Replicas: 1, Stages: 40, Err: "28 steps cannot fill 40 stages"},
	}
	var buf bytes.Buffer
	if err := RenderSweepMarkdown(&buf, SweepReport{Plan: loadPlan(t), Rows: rows, Images: []Image{{"scaling", "scaling.png"}}}); err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "markdown_sweep.golden", buf.Bytes())
	_, cells := SweepTable(rows)
	// 4 samples through two 1 s stages: throughput 3/3 s = 1/s. Data parallel,
	// 2 s per sample on 2 devices: pairs done at 2 s and 4 s, each device
	// one sample per 2 s, so 2 × 1/2 s = 1/s (a whole wave is not counted
	// as coming out at once).
	if cells[0][3] != "1.00 samples/s" || cells[1][4] != "1.00×" || !strings.Contains(cells[2][len(cells[2])-1], "cannot fill") {
		t.Errorf("sweep cells: %q", cells)
	}
	if err := RenderSweepMarkdown(&buf, SweepReport{}); err == nil {
		t.Error("empty sweep accepted")
	}
}

// A sweep row with too few samples for a steady state shows its
// steady-state throughput as n/a, and every row is compared by overall
// throughput (samples / makespan) instead.
func TestSweepTooFewSamples(t *testing.T) {
	few := twoStage("sim", 2, 1e9, 1e9).Metrics() // done at 2 s and 3 s: 1 s steady after 2 s of fill
	many := twoStage("sim", 4, 1e9, 1e9).Metrics()
	if !few.TooFewSamples || many.TooFewSamples {
		t.Fatalf("too few samples: 2 samples %v, 4 samples %v; want true, false", few.TooFewSamples, many.TooFewSamples)
	}
	rows := []SweepRow{
		{Layout: "pipeline", Devices: 1, Replicas: 1, Stages: 1, Metrics: &many, Series: "pipeline"},
		{Layout: "pipeline", Devices: 2, Replicas: 1, Stages: 2, Metrics: &few, Series: "pipeline"},
	}
	header, cells := SweepTable(rows)
	if header[4] != "vs 1 device (overall)" || cells[1][3] != "n/a (too few samples)" {
		t.Errorf("header %q, cells %q", header, cells)
	}
	// Overall: 4 samples in 5 s against 2 in 3 s.
	if want := FormatRatio((2.0 / 3) / (4.0 / 5)); cells[1][4] != want {
		t.Errorf("speed-up %q, want %q (by overall throughput)", cells[1][4], want)
	}
	if s := SweepSeries(rows); !s[0].Points[0].Overall || s[0].Points[1].Throughput != 2.0/3 {
		t.Errorf("chart points %+v, want overall throughput", s[0].Points)
	}
}

func TestComputeDrift(t *testing.T) {
	st := func(ns ...int64) timeline.Metrics {
		var m timeline.Metrics
		for i, v := range ns {
			m.Stages = append(m.Stages, timeline.StageMetrics{StageKey: timeline.StageKey{Stage: i}, BusyNS: v})
		}
		return m
	}
	// Stages off in opposite directions but equal in sum: no drift line.
	if got := computeDrift(st(100, 200), st(150, 150)); got != "" {
		t.Errorf("equal total compute: got %q", got)
	}
	// 10% more compute predicted than measured: the line names +10.0%.
	if got := computeDrift(st(110, 110), st(100, 100)); !strings.Contains(got, "+10.0%") {
		t.Errorf("10%% drift: got %q", got)
	}
}

// TestHindsightColumns: with a hindsight run, the error table gains its
// value and its error against the measurement, and the verdict says how far
// the model itself was off.
func TestHindsightColumns(t *testing.T) {
	pred := NewRun(twoStage("sim", 4, 1e9, 1e9))  // 1 s stages: throughput 1/s
	meas := NewRun(twoStage("exec", 4, 2e9, 2e9)) // 2 s stages: 0.5/s
	hind := NewRun(twoStage("sim", 4, 2e9, 25e8)) // 2.5 s bottleneck: 0.4/s, −20%
	var buf bytes.Buffer
	if err := RenderMarkdown(&buf, Report{Predicted: pred, Measured: meas, Hindsight: hind}); err != nil {
		t.Fatal(err)
	}
	md := buf.String()
	if !strings.Contains(md, "| metric | predicted | measured | error | hindsight | hindsight error |") {
		t.Errorf("no hindsight columns:\n%s", md)
	}
	if !strings.Contains(md, "| steady-state throughput | 1.00 samples/s | 0.500 samples/s | +100% | 0.400 samples/s | −20.0% |") {
		t.Errorf("throughput row without the hindsight error of −20%%:\n%s", md)
	}
	if !strings.Contains(md, "on steady-state throughput: that is the pipeline model's own error") || !strings.Contains(md, "−20.0% on steady-state throughput") {
		t.Errorf("verdict without the hindsight sentence:\n%s", md)
	}
}

// handRange is a range around pred from its stages 5% faster and 5%
// slower, with 20 runs, checked against meas when it is given.
func handRange(pred, meas *timeline.Timeline) *Range {
	n := len(pred.Samples)
	runs := []timeline.Metrics{
		twoStage("sim", n, 950_000_000, 1_900_000_000).Metrics(),
		pred.Metrics(),
		twoStage("sim", n, 1_050_000_000, 2_100_000_000).Metrics(),
	}
	g := &Range{Runs: 20, Spread: "step jitter 3%, cost scale within ±5% per device kind", Quantiles: map[string]Quantiles{}}
	for _, col := range timeline.Columns() {
		var v []float64
		for i := range runs {
			v = append(v, col.Get(&runs[i]))
		}
		slices.Sort(v)
		if !math.IsNaN(v[0]) {
			g.Quantiles[col.JSONKey()] = Quantiles{v[0], v[1], v[2]}
		}
	}
	if meas == nil {
		return g
	}
	m := meas.Metrics()
	for _, key := range []string{"first_latency", "throughput"} {
		col, _ := timeline.LookupColumn(key)
		q := g.Quantiles[col.JSONKey()]
		c := RangeCheck{Key: key, Measured: col.Get(&m), Range: q, Where: "inside"}
		switch {
		case c.Measured < q.P10:
			c.Where = "below"
		case c.Measured > q.P90:
			c.Where = "above"
		}
		g.Checks = append(g.Checks, c)
	}
	return g
}

func TestRangeLines(t *testing.T) {
	pred := twoStage("sim", 4, 1e9, 2e9)
	var buf bytes.Buffer
	none := &Range{Note: "no spread measured (jitter and drift are 0 in the profile)"}
	if err := RenderMarkdown(&buf, Report{Predicted: NewRun(pred), Range: none}); err != nil {
		t.Fatal(err)
	}
	md := buf.String()
	if !strings.Contains(md, "- No predicted range: no spread measured (jitter and drift are 0 in the profile).") ||
		strings.Contains(md, "p10–p90") || strings.Contains(md, "predicted range.**") {
		t.Errorf("a range without runs:\n%s", md)
	}
	lat, _ := timeline.LookupColumn("first_latency")
	tput, _ := timeline.LookupColumn("throughput")
	util, _ := timeline.LookupColumn("mean_utilisation")
	for _, c := range []struct {
		col    timeline.Column
		lo, hi float64
		want   string
	}{
		{lat, 1.02e9, 1.1e9, "1.02 – 1.10 s"},
		{lat, 812e6, 1.02e9, "812 ms – 1.02 s"},
		{tput, 3.8, 4.02, "3.80 – 4.02 samples/s"},
		{util, 0.873, 0.881, "87.3% – 88.1%"},
	} {
		if got := FormatRange(c.col, c.lo, c.hi); got != c.want {
			t.Errorf("FormatRange(%s, %g, %g) = %q, want %q", c.col.Key, c.lo, c.hi, got, c.want)
		}
	}
}
