package main

import (
	"bytes"
	"encoding/json"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/vdpp/vdpp/cmd/internal/cliutil"
	"github.com/vdpp/vdpp/plan"
	"github.com/vdpp/vdpp/sim"
	"github.com/vdpp/vdpp/study"
	"github.com/vdpp/vdpp/timeline"
)

// vdsim runs the app in-process and returns its exit status and output.
func vdsim(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = cliutil.Main(newApp(&out, &errb), append([]string{"vdsim"}, args...), &errb)
	return code, out.String(), errb.String()
}

func mustRun(t *testing.T, args ...string) (string, string) {
	t.Helper()
	code, out, errs := vdsim(t, args...)
	if code != 0 {
		t.Fatalf("vdsim %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out, errs)
	}
	return out, errs
}

const ref7 = "../../configs/svd-14f-320x576-7xa5000.yaml"

func TestValidateConfigs(t *testing.T) {
	files, _ := filepath.Glob("../../configs/*.yaml")
	if len(files) < 5 {
		t.Fatalf("found %d configs", len(files))
	}
	for _, f := range files {
		out, _ := mustRun(t, "validate", f)
		p, err := plan.Load(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"plan " + p.Name, "pipeline 0", "ok"} {
			if !strings.Contains(out, want) {
				t.Errorf("validate %s: output lacks %q:\n%s", f, want, out)
			}
		}
		if p.Profile != nil && !strings.Contains(out, "memory (GiB)") {
			t.Errorf("validate %s: no memory table", f)
		}
	}
}

func TestDefaultPlan(t *testing.T) {
	dir := t.TempDir() // run from elsewhere: the default must not need the configs folder
	wd, _ := os.Getwd()
	if err := os.Chdir(dir); err != nil {
		t.Fatal(err)
	}
	defer os.Chdir(wd)
	out, errs := mustRun(t, "run")
	if !strings.Contains(errs, "built-in reference plan") || !strings.Contains(out, "svd-14f-320x576-7xa5000") {
		t.Errorf("default plan not announced or not used:\nstdout %s\nstderr %s", out, errs)
	}
	out, _ = mustRun(t, "validate")
	if !strings.Contains(out, "gpu6") || !strings.Contains(out, "7 × a5000 24 GiB (gpu0..gpu6)") {
		t.Errorf("validate default: %s", out)
	}
}

func TestRunTable(t *testing.T) {
	out, _ := mustRun(t, "run", ref7)
	for _, want := range []string{
		"first-sample latency", "steady-state throughput", "makespan", "sample latency p99",
		"pipeline 1×7", "data parallel 7×1", "ratio", "First sample: the pipeline",
		// 10 samples on 7 data-parallel devices leave no steady state: the
		// verdict compares overall throughput.
		"n/a (too few samples)", "overall throughput", "Throughput (overall, samples / makespan: too few samples for a steady state): the pipeline delivers",
		"gpu6", "fits", "not measured on this machine",
		"6.31 GiB / 24 GiB", // memory_gb is GiB: gpu0's need / have
	} {
		if !strings.Contains(out, want) {
			t.Errorf("run output lacks %q:\n%s", want, out)
		}
	}
	out, _ = mustRun(t, "run", "--no-dp", ref7)
	if strings.Contains(out, "data parallel 7×1") || !strings.Contains(out, "--no-dp") {
		t.Errorf("--no-dp still compares:\n%s", out)
	}
	out, _ = mustRun(t, "run", "../../configs/svd-14f-320x576-7xa5000-dp.yaml")
	if !strings.Contains(out, "already data parallel") {
		t.Errorf("dp plan:\n%s", out)
	}
}

// runJSONOut parses run --json output.
func runJSONOut(t *testing.T, args ...string) runJSON {
	t.Helper()
	out, _ := mustRun(t, append([]string{"run", "--json"}, args...)...)
	var j runJSON
	if err := json.Unmarshal([]byte(out), &j); err != nil {
		t.Fatalf("run --json output does not parse: %v\n%s", err, out)
	}
	return j
}

func TestRunJSONMatchesTimelineMetrics(t *testing.T) {
	j := runJSONOut(t, "--samples", "10", ref7)
	p, err := plan.Load(ref7)
	if err != nil {
		t.Fatal(err)
	}
	n := 10
	if err := p.Apply(plan.Overrides{Samples: &n}); err != nil {
		t.Fatal(err)
	}
	res, err := sim.Run(p, sim.Options{Trace: true})
	if err != nil {
		t.Fatal(err)
	}
	m := res.Timeline.Metrics()
	got, want := j.Metrics, m
	if got.Samples != 10 || got.FirstLatencyNS != m.FirstLatencyNS || got.Throughput != m.Throughput ||
		got.TooFewSamples != m.TooFewSamples || got.OverallThroughput != m.OverallThroughput ||
		got.MakespanNS != m.MakespanNS || got.LatencyP95NS != m.LatencyP95NS || got.LatencyMeanNS != m.LatencyMeanNS {
		t.Errorf("json metrics %+v\nwant %+v", got, want)
	}
	for i, d := range m.Devices {
		g := got.Devices[i]
		if g.Device != d.Device || g.BusyNS != d.BusyNS || g.Utilisation != d.Utilisation || g.FillNS != d.FillNS || g.DrainNS != d.DrainNS || g.BetweenNS != d.BetweenNS {
			t.Errorf("device %d: json %+v, timeline %+v", i, g, d)
		}
	}
	if j.DataParallel == nil || j.Ratio["overall_throughput"] != m.OverallThroughput/j.DataParallel.OverallThroughput {
		t.Errorf("data parallel / ratio missing or wrong: %+v %v", j.DataParallel, j.Ratio)
	}
	// 10 samples on 7 devices: four data-parallel devices run one sample
	// each, so data parallel has no steady state, and no steady-state
	// ratio is given.
	if _, ok := j.Ratio["throughput"]; !j.DataParallel.TooFewSamples || ok {
		t.Errorf("data parallel of 10 samples on 7 devices: too few samples %v, throughput ratio %v", j.DataParallel.TooFewSamples, j.Ratio)
	}
	if j.Measured || len(j.Memory) != 7 || !j.Memory[0].Fits {
		t.Errorf("costs_measured %v, memory %+v", j.Measured, j.Memory)
	}
}

func TestFlagsAfterPlan(t *testing.T) {
	for _, args := range [][]string{
		{ref7, "--samples", "3"},
		{ref7, "--samples=3"},
		{"--samples", "3", ref7},
		{ref7, "--num-samples", "3"},
	} {
		j := runJSONOut(t, args...)
		if j.Metrics.Samples != 3 {
			t.Errorf("run --json %v: %d samples, want 3", args, j.Metrics.Samples)
		}
	}
	j := runJSONOut(t, ref7, "--no-dp")
	if j.DataParallel != nil {
		t.Error("trailing boolean --no-dp ignored")
	}
	t.Setenv("VDSIM_SAMPLES", "4")
	if j := runJSONOut(t, ref7); j.Metrics.Samples != 4 {
		t.Errorf("VDSIM_SAMPLES=4: %d samples", j.Metrics.Samples)
	}
}

func TestWhatIfFlags(t *testing.T) {
	j := runJSONOut(t, "--no-dp", "--total-steps", "14", "--devices", "2", "--samples", "2", ref7)
	if len(j.Metrics.Devices) != 2 || len(j.Metrics.Stages) != 2 {
		t.Errorf("--devices 2: %d devices, %d stages", len(j.Metrics.Devices), len(j.Metrics.Stages))
	}
	// 14 steps of 300 ms on two stages: one sample does 14 UNet calls.
	j28 := runJSONOut(t, "--no-dp", "--devices", "2", "--samples", "2", ref7)
	if d := j28.Metrics.FirstLatencyNS - j.Metrics.FirstLatencyNS; d != 14*300_000_000 {
		t.Errorf("28 − 14 steps changed first latency by %d ns, want 14 × 300 ms", d)
	}
	j = runJSONOut(t, "--no-dp", "--latent-shape", "2 4 14 40 72", "--samples", "4", ref7)
	if j.Metrics.Samples != 4 || !strings.Contains(j.Layout, "pipeline") {
		t.Errorf("latent shape: %+v", j)
	}
	j = runJSONOut(t, "--replicas", "7", "--samples", "7", ref7)
	if j.Layout != "data parallel 7×1" {
		t.Errorf("--replicas 7: layout %q", j.Layout)
	}
}

func TestErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("name: x\nmodel: {family: svd, frames: 14, latent: {channels: 4, height: 40, width: 72}}\nsampler: {steps: 0}\ndevices: {count: 2, kind: a5000}\nworkload: {samples: 2}\nbogus: 3\n"), 0o644)
	cases := []struct {
		args []string
		want []string
	}{
		{[]string{"run", "--samples", "x", ref7}, []string{"vdsim run", "invalid value", "samples"}},
		{[]string{"run", ref7, "--samples", "x"}, []string{"invalid value \"x\"", "--samples"}},
		{[]string{"run", ref7, "--bogus"}, []string{"not defined", "--bogus"}},
		{[]string{"run", ref7, "--samples"}, []string{"needs an argument"}},
		{[]string{"run", "--samples", "0", ref7}, []string{"samples must be at least 1"}},
		{[]string{"run", "--latent-shape", "1 4 14", ref7}, []string{"want 5: B C F H W"}},
		{[]string{"run", "--latent-shape", "1 4 16 40 72", ref7}, []string{"costs", "profile"}},
		{[]string{"run", "--micro-batch", "40", ref7}, []string{"memory_gb", "needs"}},
		{[]string{"run", "missing.yaml"}, []string{"missing.yaml"}},
		{[]string{"run", bad}, []string{"bad.yaml:6:1: bogus", "bad.yaml:3:", "sampler.steps"}},
		{[]string{"run", "../../configs/tiny-cpu-2stage.yaml"}, []string{"no cost profile", "--costs"}},
		{[]string{"run", ref7, ref7}, []string{"want one plan file"}},
		{[]string{"run", "--costs", "nope.yaml", ref7}, []string{"cost profile", "nope.yaml"}},
		{[]string{"sweep", "--devices", "1,x", ref7}, []string{"--devices", "\"x\""}},
		{[]string{"sweep", "--layouts", "ring", ref7}, []string{"\"ring\" is not a layout"}},
		{[]string{"compare", "a.json"}, []string{"want two timeline files"}},
		{[]string{"nosuch"}, []string{"nosuch"}},
	}
	for _, c := range cases {
		code, out, errs := vdsim(t, c.args...)
		if code == 0 {
			t.Errorf("vdsim %v: exit 0, want an error\n%s", c.args, out)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(errs, w) {
				t.Errorf("vdsim %v: stderr lacks %q:\n%s", c.args, w, errs)
			}
		}
	}
}

func TestRunOut(t *testing.T) {
	dir := t.TempDir()
	out, _ := mustRun(t, "run", ref7, "--samples", "4", "--out", dir)
	for _, f := range []string{"timeline.json", "trace.json", "gantt.png", "metrics.json", "report.md"} {
		path := filepath.Join(dir, f)
		if !strings.Contains(out, path) {
			t.Errorf("output does not name %s", path)
		}
		if st, err := os.Stat(path); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	tl, err := timeline.ReadFile(filepath.Join(dir, "timeline.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(tl.Samples) != 4 {
		t.Errorf("timeline has %d samples", len(tl.Samples))
	}
	decodePNG(t, filepath.Join(dir, "gantt.png"))

	// Above the trace limit only the metrics are written.
	dir2 := t.TempDir()
	_, errs := mustRun(t, "run", ref7, "--samples", "5", "--trace-limit", "4", "--no-dp", "--out", dir2)
	if !strings.Contains(errs, "--trace-limit") {
		t.Errorf("no note about the trace limit: %s", errs)
	}
	if _, err := os.Stat(filepath.Join(dir2, "timeline.json")); err == nil {
		t.Error("timeline.json written above the trace limit")
	}
	if _, err := os.Stat(filepath.Join(dir2, "metrics.json")); err != nil {
		t.Error(err)
	}

	// compare: the predicted timeline against a copy "measured" 10% slower.
	slow := *tl
	slow.Meta.Source = "exec"
	slow.Spans = append([]timeline.Span(nil), tl.Spans...)
	slow.Samples = append([]timeline.Sample(nil), tl.Samples...)
	for i := range slow.Spans {
		slow.Spans[i].Start = slow.Spans[i].Start * 11 / 10
		slow.Spans[i].End = slow.Spans[i].End * 11 / 10
	}
	for i := range slow.Samples {
		slow.Samples[i].Done = slow.Samples[i].Done * 11 / 10
	}
	meas := filepath.Join(dir, "measured.json")
	if err := timeline.WriteFile(meas, &slow); err != nil {
		t.Fatal(err)
	}
	rep := filepath.Join(dir, "cmp")
	out, _ = mustRun(t, "compare", filepath.Join(dir, "timeline.json"), meas, "--plan", ref7, "--out", rep)
	// Every time is 1.1× longer when measured: the error is 1/1.1 − 1 = −9.09%.
	if !strings.Contains(out, "−9.09%") {
		t.Errorf("compare output lacks the −9.09%% error:\n%s", out)
	}
	// The "measurement" is the prediction stretched, so the costs read off it
	// give it back: the hindsight simulation is off by well under 1%.
	if !regexp.MustCompile(`hindsight \(simulated with the costs this run spent\): first-sample latency [+−]?0(\.\d+)?%, (overall )?throughput [+−]?0(\.\d+)?%`).MatchString(out) {
		t.Errorf("compare output lacks a hindsight line within 1%%:\n%s", out)
	}
	md, err := os.ReadFile(filepath.Join(rep, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"## Prediction error", "| first-sample latency |", "−9.09%", "### Per stage", "](gantt.png)", "data parallel"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report.md lacks %q", want)
		}
	}
	decodePNG(t, filepath.Join(rep, "gantt.png"))
}

func TestSweep(t *testing.T) {
	dir := t.TempDir()
	out, _ := mustRun(t, "sweep", "../../configs/svd-14f-320x576-1xa5000.yaml", "--devices", "1,2,4", "--samples", "4", "--out", dir)
	for _, want := range []string{"pipeline", "data parallel", "hybrid", "2 × 2", "1 × 4", "4 × 1", "scaling.png"} {
		if !strings.Contains(out, want) {
			t.Errorf("sweep output lacks %q:\n%s", want, out)
		}
	}
	img := decodePNG(t, filepath.Join(dir, "scaling.png"))
	if img.X < 400 || img.Y < 200 {
		t.Errorf("scaling.png is %v", img)
	}
	md, err := os.ReadFile(filepath.Join(dir, "sweep.md"))
	if err != nil || !strings.Contains(string(md), "| 4 | hybrid | 2 × 2 |") {
		t.Errorf("sweep.md: %v\n%s", err, md)
	}
	// A device count that cannot run is a row with its reason, not a failure.
	out, _ = mustRun(t, "sweep", "../../configs/svd-14f-320x576-1xa5000.yaml", "--devices", "1,40", "--layouts", "pipeline", "--samples", "2")
	if !strings.Contains(out, "cannot fill 40 stages") {
		t.Errorf("sweep with 40 devices:\n%s", out)
	}
}

// TestMillionSamples runs a large workload through the streaming path.
func TestMillionSamples(t *testing.T) {
	n := "1000000"
	if testing.Short() {
		n = "100000"
	}
	j := runJSONOut(t, "--no-dp", "--devices", "2", "--samples", n, ref7)
	if want, _ := strconv.Atoi(n); j.Metrics.Samples != want || j.Metrics.LatencyExact {
		t.Errorf("samples %d, exact %v", j.Metrics.Samples, j.Metrics.LatencyExact)
	}
}

func decodePNG(t *testing.T, path string) (size struct{ X, Y int }) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	b := img.Bounds()
	size.X, size.Y = b.Dx(), b.Dy()
	return size
}

func TestHelp(t *testing.T) {
	out, _ := mustRun(t, "run", ref7, "--help")
	if !strings.Contains(out, "--samples") || !strings.Contains(out, "VDSIM_SAMPLES") {
		t.Errorf("help:\n%s", out)
	}
	out, _ = mustRun(t, "--help")
	for _, c := range []string{"validate", "run", "sweep", "compare"} {
		if !strings.Contains(out, c) {
			t.Errorf("app help lacks %s", c)
		}
	}
}

// TestSearch runs the search command to files and checks that the winner
// it writes runs in vdsim unchanged, with the metrics the search printed.
func TestSearch(t *testing.T) {
	dir := t.TempDir()
	out, _ := mustRun(t, "search", ref7, "--goal", "latency", "--max-devices", "4", "--out", dir, "--top", "3")
	for _, want := range []string{"search for the lowest first-sample latency", "1      data parallel 4×1 mb 1", "why the others lost:", "winner.yaml", "runner-up.yaml", "pareto.png", "search.md"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	run, _ := mustRun(t, "run", filepath.Join(dir, "winner.yaml"), "--no-dp")
	if !strings.Contains(run, "data parallel 4×1") || !strings.Contains(run, "9.79 s") {
		t.Errorf("the winner runs differently:\n%s", run)
	}
	for _, bad := range [][]string{{"--goal", "speed"}, {"--goal", "rate"}, {"--top", "0"}, {"--micro-batches", "x"}} {
		if code, _, errs := vdsim(t, append([]string{"search", ref7}, bad...)...); code == 0 || errs == "" {
			t.Errorf("search %v: exit %d, stderr %q", bad, code, errs)
		}
	}
}

// TestSearchWinnerWithCostsFlag: a --costs path relative to the working
// folder (not to the plan) still reaches the written winner.
func TestSearchWinnerWithCostsFlag(t *testing.T) {
	dir := t.TempDir()
	costs := "../../configs/profiles/a5000-svd-14f-320x576.yaml"
	mustRun(t, "search", "../../configs/svd-14f-320x576-2xa5000.yaml", "--costs", costs, "--out", dir)
	if out, _ := mustRun(t, "run", filepath.Join(dir, "winner.yaml"), "--no-dp"); !strings.Contains(out, "2 × a5000") {
		t.Errorf("the winner runs differently:\n%s", out)
	}
}

// spreadCosts writes the reference profile with a measured spread (5%
// step jitter, 4% drift) and returns its path.
func spreadCosts(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("../../configs/profiles/a5000-svd-14f-320x576.yaml")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(data), "    jitter: 0\n", "    jitter: 0.05\n    drift: 0.04\n", 1)
	if text == string(data) {
		t.Fatal("the reference profile has no line \"    jitter: 0\" to replace")
	}
	path := filepath.Join(t.TempDir(), "spread.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

const ref2 = "../../configs/svd-14f-320x576-2xa5000.yaml"

// run prints the predicted range under the point prediction, which stays
// the plan's own simulation; --json and --out carry every metric's range;
// a profile without a spread says so instead of a range.
func TestRunRange(t *testing.T) {
	costs := spreadCosts(t)
	args := []string{ref2, "--costs", costs, "--samples", "6", "--range-runs", "10", "--no-dp"}
	out, _ := mustRun(t, append([]string{"run"}, args...)...)
	for _, want := range []string{
		"predicted range, p10–p90 over 10 seeded runs (step jitter 5%, cost scale within ±4% per device kind):",
		"  first-sample latency ", "p10–p90 ", "(p50 ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("run output lacks %q:\n%s", want, out)
		}
	}
	j := runJSONOut(t, args...)
	p, err := cliutil.LoadPlan([]string{ref2}, nil, costs, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	n := 6
	if err := p.Apply(plan.Overrides{Samples: &n}); err != nil {
		t.Fatal(err)
	}
	res, err := sim.Run(p, sim.Options{Trace: true})
	if err != nil {
		t.Fatal(err)
	}
	point := res.Timeline.Metrics()
	if j.Metrics.FirstLatencyNS != point.FirstLatencyNS || j.Metrics.MakespanNS != point.MakespanNS {
		t.Errorf("the point prediction moved: json %+v, simulation %+v", j.Metrics, point)
	}
	if j.Range == nil || j.Range.Runs != 10 || j.Range.Samples != 6 {
		t.Fatalf("json range %+v", j.Range)
	}
	q, ok := j.Range.Metrics["first_latency_ns"]
	if !ok || !(q.P10 <= q.P50 && q.P50 <= q.P90) || q.P10 == q.P90 {
		t.Errorf("json first-latency range %+v", q)
	}

	dir := t.TempDir()
	mustRun(t, append([]string{"run", "--out", dir}, args...)...)
	var mj struct {
		Range *study.Range `json:"range"`
	}
	data, err := os.ReadFile(filepath.Join(dir, "metrics.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &mj); err != nil || mj.Range == nil || !reflect.DeepEqual(mj.Range.Metrics, j.Range.Metrics) {
		t.Errorf("metrics.json range %+v (%v), want the --json one", mj.Range, err)
	}
	md, err := os.ReadFile(filepath.Join(dir, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| predicted p10–p90 |", "- Predicted range (p10–p90 over 10 seeded runs", "- **predicted range.**"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report.md lacks %q", want)
		}
	}

	_, errs := mustRun(t, append([]string{"run", "--progress", "always"}, args...)...)
	if !strings.Contains(errs, "vdsim: simulating the predicted range 10 of 10, 6 of 6 samples") {
		t.Errorf("no progress line of the range:\n%s", errs)
	}

	out, _ = mustRun(t, "run", ref2, "--samples", "4", "--no-dp")
	if !strings.Contains(out, "predicted range: none, no spread measured (jitter and drift are 0 in the profile)") || strings.Contains(out, "p10–p90") {
		t.Errorf("a profile without a spread:\n%s", out)
	}
}

// compare says whether the measurement fell inside the predicted range:
// a run 1.5× slower than predicted is above it in latency and below it
// in throughput.
func TestCompareRange(t *testing.T) {
	costs := spreadCosts(t)
	dir := t.TempDir()
	pred := filepath.Join(dir, "pred")
	mustRun(t, "run", ref2, "--costs", costs, "--samples", "6", "--no-dp", "--out", pred)
	tl, err := timeline.ReadFile(filepath.Join(pred, "timeline.json"))
	if err != nil {
		t.Fatal(err)
	}
	slow := *tl
	slow.Meta.Source = "exec"
	slow.Spans = append([]timeline.Span(nil), tl.Spans...)
	slow.Samples = append([]timeline.Sample(nil), tl.Samples...)
	for i := range slow.Spans {
		slow.Spans[i].Start, slow.Spans[i].End = slow.Spans[i].Start*3/2, slow.Spans[i].End*3/2
	}
	for i := range slow.Samples {
		slow.Samples[i].Done = slow.Samples[i].Done * 3 / 2
	}
	meas := filepath.Join(dir, "measured.json")
	if err := timeline.WriteFile(meas, &slow); err != nil {
		t.Fatal(err)
	}
	rep := filepath.Join(dir, "cmp")
	out, _ := mustRun(t, "compare", filepath.Join(pred, "timeline.json"), meas, "--plan", ref2, "--costs", costs, "--range-runs", "10", "--out", rep)
	if !regexp.MustCompile(`measured against the predicted range, p10–p90 over 10 seeded runs \(step jitter 5%, cost scale within ±4% per device kind\):\n` +
		`  first-sample latency +\S+ s +above +p10–p90 .*\n  (steady-state|overall) throughput +\S+ samples/s +below +p10–p90 `).MatchString(out) {
		t.Errorf("compare output lacks the range checks:\n%s", out)
	}
	if !strings.Contains(out, "hindsight (simulated with the costs this run spent)") {
		t.Errorf("the hindsight line is gone:\n%s", out)
	}
	md, err := os.ReadFile(filepath.Join(rep, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Measured against the predicted range (p10–p90 over 10 seeded runs", "is **above it**", "is **below it**", "| measured against predicted p10–p90 |"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report.md lacks %q", want)
		}
	}
	// Without --plan there is no range, and nothing is said of one.
	out, _ = mustRun(t, "compare", filepath.Join(pred, "timeline.json"), meas, "--out", rep, "--replace")
	if strings.Contains(out, "predicted range") {
		t.Errorf("a range without a plan:\n%s", out)
	}
}
