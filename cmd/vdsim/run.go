package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"text/tabwriter"

	"github.com/vdpp/vdpp/internal/atomicfile"
	"github.com/vdpp/vdpp/internal/outdir"

	"github.com/urfave/cli/v2"

	"github.com/vdpp/vdpp/cmd/internal/cliutil"
	"github.com/vdpp/vdpp/plan"
	"github.com/vdpp/vdpp/reports"
	"github.com/vdpp/vdpp/sim"
	"github.com/vdpp/vdpp/study"
	"github.com/vdpp/vdpp/timeline"
)

// defaultTraceLimit is the largest sample count for which run keeps the
// full timeline (for timeline.json, trace.json and gantt.png); above it the
// metrics are streamed and memory stays bounded.
const defaultTraceLimit = 2000

func runCommand() *cli.Command {
	flags := append(cliutil.WhatIfFlags(envPrefix, true),
		&cli.BoolFlag{Name: "json", EnvVars: cliutil.Env(envPrefix, "json"), Usage: "print the metrics as JSON instead of a table"},
		&cli.BoolFlag{Name: "no-dp", EnvVars: cliutil.Env(envPrefix, "no-dp"), Usage: "do not simulate the data-parallel baseline on the same devices"},
		&cli.StringFlag{Name: "out", EnvVars: cliutil.Env(envPrefix, "out"), Usage: "write timeline.json, trace.json (Perfetto), gantt.png, metrics.json and report.md to `DIR`"},
		&cli.IntFlag{Name: "trace-limit", Value: defaultTraceLimit, EnvVars: cliutil.Env(envPrefix, "trace-limit"), Usage: "keep the full timeline (for --out) only up to this many samples; above it metrics are streamed and no timeline, trace or Gantt chart is written (0: never)"},
		rangeRunsFlag("range-runs"),
		replaceFlag("replace"),
		progressFlag(),
	)
	return &cli.Command{
		Name:      "run",
		Usage:     "simulate a plan: latency, throughput, bubbles, memory, and data parallel side by side",
		ArgsUsage: "[PLAN]",
		Description: "Simulates the plan with its cost profile and prints first-sample latency, steady-state throughput, " +
			"makespan, sample latency percentiles, per-device utilisation and idle time, and memory. Unless --no-dp, " +
			"the same devices and workload are also simulated as data parallel (every device runs whole samples) " +
			"and shown side by side with the ratio of each metric. When the profile measured a spread (jitter, drift), " +
			"the plan is simulated --range-runs more times, each with its own step jitter and cost scale, and every metric " +
			"gets its predicted range (p10–p90) under the point prediction.",
		Flags:  flags,
		Action: withPlan(runAction),
	}
}

// simError adds, to an error of a plan that has no costs, what to do.
func simError(err error) error {
	if errors.Is(err, study.ErrNoProfile) {
		return fmt.Errorf("%w: set costs: in the plan or pass --costs FILE (measure one with `vdexec profile`)", err)
	}
	return err
}

// runOutputs are what run --out writes, for the folder's manifest.
var runOutputs = []string{"timeline.json", "trace.json", "gantt.png", "metrics.json", "report.md"}

func runAction(c *cli.Context, p *plan.Plan) (err error) {
	stdout, stderr := c.App.Writer, c.App.ErrWriter
	out := c.String("out")
	limit := c.Int("trace-limit")
	if limit < 0 {
		return cliutil.Usage(fmt.Errorf("--trace-limit %d: want 0 or more samples (0: never keep the timeline)", limit))
	}
	runs, err := rangeRuns(c)
	if err != nil {
		return err
	}
	trace := out != "" && p.Workload.Samples <= limit
	if out != "" {
		if err := prepareOut(c, out, "vdsim run", runOutputs); err != nil {
			return err
		}
		if !trace {
			fmt.Fprintf(stderr, "vdsim: %d samples is more than --trace-limit %d: metrics are streamed; timeline.json, trace.json and gantt.png are not written\n", p.Workload.Samples, limit)
		}
	}
	w, err := newWatcher(c)
	if err != nil {
		return err
	}
	nothing := "nothing was printed or written"
	if out != "" {
		nothing = "no outputs were written (" + out + " holds only its manifest)"
	}
	w.setPhase("the plan", p.Workload.Samples)
	main, err := study.SimulateWatched(p, trace, w.watch)
	if err != nil {
		return w.close(simError(err), nothing)
	}
	var dp *study.Run
	dpNote := "turned off with --no-dp"
	if !c.Bool("no-dp") {
		w.setPhase("the data-parallel baseline", p.Workload.Samples)
		if dp, dpNote, err = study.BaselineWatched(p, trace, w.watch); err != nil {
			return w.close(err, nothing)
		}
	}
	if study.RangeSimulates(p) {
		w.setPhase("the predicted range", p.Workload.Samples)
	}
	rng, err := study.PredictRange(p, runs, w.watch)
	if err != nil {
		return w.close(err, nothing)
	}
	if err := w.close(nil, ""); err != nil {
		return err
	}

	var files []string
	if out != "" {
		if files, err = writeRunOutputs(out, main, dp, dpNote, rng); err != nil {
			return err
		}
	}
	if c.Bool("json") {
		for _, f := range files {
			fmt.Fprintf(stderr, "vdsim: wrote %s\n", f)
		}
		return writeRunJSON(stdout, main, dp, dpNote, rng, files)
	}
	writeRunTable(stdout, main, dp, dpNote, rng)
	if len(files) > 0 {
		fmt.Fprintln(stdout, "\nwrote:")
		for _, f := range files {
			fmt.Fprintf(stdout, "  %s\n", f)
		}
	}
	return nil
}

// replaceFlag is the --replace flag of a command that writes into --out;
// its environment variable is named after name ("replace",
// "sweep-replace").
func replaceFlag(name string) cli.Flag {
	return &cli.BoolFlag{Name: "replace", EnvVars: cliutil.Env(envPrefix, name),
		Usage: "let --out be a folder that an earlier vdpp run wrote: remove what that run wrote there (and nothing else) first"}
}

// prepareOut makes the --out folder ready before the work starts (see
// outdir.Prepare): it refuses a folder that holds files unless --replace,
// and then removes only what an earlier vdpp run wrote there.
func prepareOut(c *cli.Context, dir, tool string, patterns []string) error {
	if c.IsSet("progress") { // a bad flag must not cost the folder its earlier outputs
		if _, err := progressMode(c); err != nil {
			return err
		}
	}
	done, err := outdir.Prepare(dir, c.Bool("replace"), "--replace", outdir.Spec{Tool: tool, Patterns: patterns})
	if err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	for _, line := range done.Lines(dir) {
		fmt.Fprintf(c.App.ErrWriter, "vdsim: %s\n", line)
	}
	return nil
}

// costsLine says where the costs come from, with the warning when they
// were not measured.
func costsLine(p *plan.Plan) string {
	pv := p.Profile.Provenance
	if pv.Source == "measured" {
		s := "costs measured on " + pv.Machine
		if pv.Date != "" {
			s += " (" + pv.Date + ")"
		}
		return s
	}
	return fmt.Sprintf("warning: %s (profile source: %s, %s)", reports.CostWarningFor(pv.Source), pv.Source, p.Profile.File)
}

func writeRunTable(w io.Writer, r, dp *study.Run, dpNote string, rng *study.Range) {
	p := r.Plan
	fmt.Fprintf(w, "%s: %d samples, %s on %d × %s, %d steps\n", p.Name, r.Metrics.Samples, study.LayoutLabel(p), len(p.Devices), p.Devices[0].Kind, p.Sampler.Steps)
	fmt.Fprintln(w, costsLine(p))
	fmt.Fprintln(w)

	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	mine := study.LayoutLabel(p)
	if dp != nil {
		fmt.Fprintf(tw, "metric\t%s\t%s\t%s\n", mine, study.LayoutLabel(dp.Plan), "ratio")
	} else {
		fmt.Fprintf(tw, "metric\t%s\n", mine)
	}
	for _, col := range timeline.Columns() {
		if dp == nil {
			fmt.Fprintf(tw, "%s\t%s\n", col.Label, col.Text(&r.Metrics))
			continue
		}
		ratio := "—"
		if v, ok := col.Ratio(&r.Metrics, &dp.Metrics); ok {
			ratio = timeline.FormatRatio(v)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", col.Label, col.Text(&r.Metrics), col.Text(&dp.Metrics), ratio)
	}
	tw.Flush()
	fmt.Fprintln(w)
	writeRangeLines(w, rng, &r.Metrics)
	if dp != nil {
		fmt.Fprintf(w, "ratio = %s / %s (same devices, same %d samples)\n", mine, study.LayoutLabel(dp.Plan), dp.Metrics.Samples)
		for _, line := range reports.BaselineVerdict(r.Metrics, dp.Metrics, "the "+study.KindOf(p).Name(), "data parallel") {
			fmt.Fprintln(w, line)
		}
	} else {
		fmt.Fprintf(w, "no data-parallel comparison: %s\n", dpNote)
	}
	writeDeviceTable(w, r)
}

// writeDeviceTable prints each device's utilisation, idle split and memory.
func writeDeviceTable(w io.Writer, r *study.Run) {
	fmt.Fprintf(w, "\ndevices (%s)\n", study.LayoutLabel(r.Plan))
	mem := map[string]sim.DeviceMemory{}
	for _, m := range r.Result.Memory {
		mem[m.Device] = m
	}
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	fmt.Fprintln(tw, "device\tutilisation\tbusy\tidle: fill\tdrain\tbetween\tmemory need / have\tfits")
	for _, d := range r.Metrics.Devices {
		m := mem[d.Device]
		have := "unknown"
		if m.HaveGB > 0 {
			have = fmt.Sprintf("%.3g GiB", m.HaveGB)
		}
		fits := "yes"
		if !m.Fits {
			fits = fmt.Sprintf("NO (%.3g GiB over)", m.OverGB())
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%.3g GiB / %s\t%s\n", d.Device, timeline.FormatPercent(d.Utilisation), timeline.FormatNS(d.BusyNS),
			timeline.FormatNS(d.FillNS), timeline.FormatNS(d.DrainNS), timeline.FormatNS(d.BetweenNS), m.NeedGB, have, fits)
	}
	tw.Flush()
}

// runJSON is what run --json prints.
type runJSON struct {
	Plan         string             `json:"plan"`
	File         string             `json:"file,omitempty"`
	Layout       string             `json:"layout"`
	Profile      string             `json:"profile"`
	Measured     bool               `json:"costs_measured"`
	Metrics      timeline.Metrics   `json:"metrics"`
	Memory       []sim.DeviceMemory `json:"memory"`
	DataParallel *timeline.Metrics  `json:"data_parallel"`
	DPNote       string             `json:"data_parallel_note,omitempty"`
	// Ratio is this plan's metric / data parallel's, per metric column.
	Ratio map[string]float64 `json:"ratio,omitempty"`
	// Range is the predicted range of every metric (see study.Range).
	Range *study.Range `json:"range"`
	Files []string     `json:"files,omitempty"`
}

func writeRunJSON(w io.Writer, r, dp *study.Run, dpNote string, rng *study.Range, files []string) error {
	j := runJSON{
		Plan: r.Plan.Name, File: r.Plan.File, Layout: study.LayoutLabel(r.Plan),
		Profile:  r.Plan.Profile.ProvenanceString(),
		Measured: r.Plan.Profile.Provenance.Source == "measured",
		Metrics:  r.Metrics, Memory: r.Result.Memory,
		DPNote: dpNote, Range: rng, Files: files,
	}
	if dp != nil {
		j.DataParallel = &dp.Metrics
		j.Ratio = timeline.Ratios(&r.Metrics, &dp.Metrics)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(j); err != nil {
		return fmt.Errorf("write json: %w", err)
	}
	return nil
}

// writeRunOutputs writes the files of run --out (prepared by
// prepareOut) and returns their paths.
func writeRunOutputs(dir string, r, dp *study.Run, dpNote string, rng *study.Range) ([]string, error) {
	var files []string
	path := func(name string) string {
		p := filepath.Join(dir, name)
		files = append(files, p)
		return p
	}
	images, err := writeTimelineFiles(path, r, dp)
	if err != nil {
		return nil, err
	}
	mj := map[string]any{"plan": r.Plan.Name, "layout": study.LayoutLabel(r.Plan), "metrics": r.Metrics, "range": rng}
	if dp != nil {
		mj["data_parallel"] = dp.Metrics
		mj["ratio"] = timeline.Ratios(&r.Metrics, &dp.Metrics)
	}
	data, err := json.MarshalIndent(mj, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("metrics json: %w", err)
	}
	if err := atomicfile.Write(path("metrics.json"), append(data, '\n')); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	rep := reports.Report{
		Title:     "vdsim prediction: " + r.Plan.Name,
		Plan:      r.Plan,
		Predicted: r.Summary(),
		Images:    images,
		Range:     reportRange(rng, nil),
	}
	if dp != nil {
		rep.Baseline = dp.Summary()
	} else {
		rep.BaselineNote = dpNote
	}
	if err := reports.WriteMarkdown(path("report.md"), rep); err != nil {
		return nil, err
	}
	return files, nil
}

// writeTimelineFiles writes timeline.json, trace.json and gantt.png when
// the run kept its timeline, and returns the images for the report.
func writeTimelineFiles(path func(name string) string, r, dp *study.Run) ([]reports.Image, error) {
	tl := r.Result.Timeline
	if tl == nil {
		return nil, nil
	}
	if err := timeline.WriteFile(path("timeline.json"), tl); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := timeline.WriteTrace(&buf, tl); err != nil {
		return nil, err
	}
	if err := atomicfile.Write(path("trace.json"), buf.Bytes()); err != nil {
		return nil, fmt.Errorf("trace: %w", err)
	}
	panels := []reports.GanttPanel{{Title: "predicted, " + study.LayoutLabel(r.Plan), TL: tl}}
	if dp != nil && dp.Result.Timeline != nil {
		panels = append(panels, reports.GanttPanel{Title: "predicted, " + study.LayoutLabel(dp.Plan) + " (baseline)", TL: dp.Result.Timeline})
	}
	if err := reports.WriteGanttPNG(path("gantt.png"), panels, reports.GanttOptions{}); err != nil {
		return nil, err
	}
	title := "Gantt chart: " + study.LayoutLabel(r.Plan)
	if len(panels) > 1 {
		title += " (top) and the data-parallel baseline (bottom), on one time axis"
	}
	return []reports.Image{{Title: title, Path: "gantt.png"}}, nil
}

// rangeRunsFlag is the --range-runs flag; its environment variable is
// named after name ("range-runs", "compare-range-runs").
func rangeRunsFlag(name string) cli.Flag {
	return &cli.IntFlag{Name: "range-runs", Value: study.DefaultRangeRuns, EnvVars: cliutil.Env(envPrefix, name),
		Usage: fmt.Sprintf("simulate the plan `N` more times (%d to %d), each with its own step jitter and cost scale within ±drift per device kind "+
			"(the profile's jitter and drift), for the predicted range (p10–p90) of every metric; no range when the profile measured neither, "+
			"or above %d samples", study.MinRangeRuns, study.MaxRangeRuns, study.MaxRangeSamples)}
}

// rangeRuns is --range-runs, checked.
func rangeRuns(c *cli.Context) (int, error) {
	n := c.Int("range-runs")
	if n < study.MinRangeRuns || n > study.MaxRangeRuns {
		return 0, cliutil.Usage(fmt.Errorf("%s %d: want %d to %d seeded runs",
			cliutil.Source(c, "range-runs"), n, study.MinRangeRuns, study.MaxRangeRuns))
	}
	return n, nil
}

// writeRangeLines prints the predicted range of the headline metrics
// under the point prediction m, or why there is none.
func writeRangeLines(w io.Writer, rng *study.Range, m *timeline.Metrics) {
	if rng == nil {
		return
	}
	if rng.Runs == 0 {
		fmt.Fprintf(w, "predicted range: none, %s\n\n", rng.Note)
		return
	}
	fmt.Fprintf(w, "predicted range, p10–p90 over %d seeded runs (%s):\n", rng.Runs, rng.Spread)
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	for _, col := range rng.Headlines(m) {
		q, ok := rng.Of(col)
		if !ok {
			continue
		}
		fmt.Fprintf(tw, "  %s\t%s\tp10–p90 %s\t(p50 %s)\n", col.Label, col.Text(m), reports.FormatRange(col, q.P10, q.P90), col.Format(q.P50))
	}
	tw.Flush()
	fmt.Fprintln(w, "  (every metric's range is in --json and in the report of --out)")
	fmt.Fprintln(w)
}

// reportRange is rng, with the checks of a measurement against it, as a
// report takes it; nil for nil.
func reportRange(rng *study.Range, checks []study.RangeCheck) *reports.Range {
	if rng == nil {
		return nil
	}
	g := &reports.Range{Runs: rng.Runs, Spread: rng.Spread, Note: rng.Note}
	if len(rng.Metrics) > 0 {
		g.Quantiles = map[string]reports.Quantiles{}
		for k, q := range rng.Metrics {
			g.Quantiles[k] = reports.Quantiles(q)
		}
	}
	for _, c := range checks {
		g.Checks = append(g.Checks, reports.RangeCheck{Key: c.Key, Measured: c.Measured, Range: reports.Quantiles(c.Range), Where: c.Where})
	}
	return g
}
