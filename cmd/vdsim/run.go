package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/vdpp/vdpp/internal/atomicfile"

	"github.com/urfave/cli/v2"

	"github.com/vdpp/vdpp/cmd/internal/cliutil"
	"github.com/vdpp/vdpp/plan"
	"github.com/vdpp/vdpp/reports"
	"github.com/vdpp/vdpp/sim"
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
		&cli.IntFlag{Name: "trace-limit", Value: defaultTraceLimit, EnvVars: cliutil.Env(envPrefix, "trace-limit"), Usage: "keep the full timeline (for --out) only up to this many samples; above it metrics are streamed and no timeline, trace or Gantt chart is written"},
	)
	return &cli.Command{
		Name:      "run",
		Usage:     "simulate a plan: latency, throughput, bubbles, memory, and data parallel side by side",
		ArgsUsage: "[PLAN]",
		Description: "Simulates the plan with its cost profile and prints first-sample latency, steady-state throughput, " +
			"makespan, sample latency percentiles, per-device utilisation and idle time, and memory. Unless --no-dp, " +
			"the same devices and workload are also simulated as data parallel (every device runs whole samples) " +
			"and shown side by side with the ratio of each metric.",
		Flags:  flags,
		Action: runAction,
	}
}

// simRun is one simulated plan.
type simRun struct {
	plan    *plan.Plan
	res     *sim.Result
	metrics timeline.Metrics
}

// simulate runs p with a streaming metrics accumulator, keeping the full
// timeline when trace is set.
func simulate(p *plan.Plan, trace bool) (*simRun, error) {
	if p.Profile == nil {
		return nil, fmt.Errorf("plan %s has no cost profile, so it cannot be simulated: set costs: in the plan or pass --costs FILE (measure one with `vdexec profile`)", p.Name)
	}
	names := make([]string, len(p.Devices))
	for i, d := range p.Devices {
		names[i] = d.Name
	}
	acc := timeline.NewAccumulator(names)
	res, err := sim.Run(p, sim.Options{Trace: trace, Recorder: acc})
	if err != nil {
		var me *sim.MemoryError
		if errors.As(err, &me) {
			return nil, fmt.Errorf("%w; lower the micro-batch, use more stages, or larger devices", err)
		}
		return nil, err
	}
	return &simRun{plan: p, res: res, metrics: acc.Result()}, nil
}

// isDataParallel reports whether every pipeline of p is one stage.
func isDataParallel(p *plan.Plan) bool {
	for _, pl := range p.Pipelines {
		if len(pl.Stages) != 1 {
			return false
		}
	}
	return true
}

func runAction(c *cli.Context) error {
	p, err := loadPlan(c)
	if err != nil {
		if cliutil.IsHelp(err) {
			return nil
		}
		return err
	}
	stdout, stderr := c.App.Writer, c.App.ErrWriter
	out := c.String("out")
	limit := c.Int("trace-limit")
	trace := out != "" && p.Workload.Samples <= limit
	if out != "" && !trace {
		fmt.Fprintf(stderr, "vdsim: %d samples is more than --trace-limit %d: metrics are streamed; timeline.json, trace.json and gantt.png are not written\n", p.Workload.Samples, limit)
	}
	main, err := simulate(p, trace)
	if err != nil {
		return err
	}
	var dp *simRun
	dpNote := ""
	switch {
	case c.Bool("no-dp"):
		dpNote = "turned off with --no-dp"
	case isDataParallel(p):
		dpNote = "the plan is already data parallel (one stage per pipeline)"
	default:
		q, err := p.DataParallel()
		if err == nil {
			dp, err = simulate(q, trace)
		}
		if err != nil {
			dpNote = "data parallel on these devices cannot run: " + strings.ReplaceAll(err.Error(), "\n", "; ")
			dp = nil
		}
	}

	var files []string
	if out != "" {
		if files, err = writeRunOutputs(out, main, dp, dpNote); err != nil {
			return err
		}
	}
	if c.Bool("json") {
		for _, f := range files {
			fmt.Fprintf(stderr, "vdsim: wrote %s\n", f)
		}
		return writeRunJSON(stdout, main, dp, dpNote, files)
	}
	writeRunTable(stdout, main, dp, dpNote)
	if len(files) > 0 {
		fmt.Fprintln(stdout, "\nwrote:")
		for _, f := range files {
			fmt.Fprintf(stdout, "  %s\n", f)
		}
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
	return fmt.Sprintf("warning: %s (profile source: %s, %s)", reports.CostWarning, pv.Source, p.Profile.File)
}

type metricRow struct {
	name string
	get  func(m *timeline.Metrics) float64
	fmt  func(v float64) string
}

func nsRow(name string, get func(m *timeline.Metrics) float64) metricRow {
	return metricRow{name, get, func(v float64) string { return reports.FormatSeconds(v / 1e9) }}
}

var runRows = []metricRow{
	nsRow("first-sample latency", func(m *timeline.Metrics) float64 { return float64(m.FirstLatencyNS) }),
	{"steady-state throughput", func(m *timeline.Metrics) float64 { return m.Throughput }, reports.FormatRate},
	nsRow("makespan", func(m *timeline.Metrics) float64 { return float64(m.MakespanNS) }),
	nsRow("sample latency mean", func(m *timeline.Metrics) float64 { return m.LatencyMeanNS }),
	nsRow("sample latency p50", func(m *timeline.Metrics) float64 { return float64(m.LatencyP50NS) }),
	nsRow("sample latency p95", func(m *timeline.Metrics) float64 { return float64(m.LatencyP95NS) }),
	nsRow("sample latency p99", func(m *timeline.Metrics) float64 { return float64(m.LatencyP99NS) }),
	{"mean device utilisation", meanUtil, reports.FormatPercent},
}

func meanUtil(m *timeline.Metrics) float64 {
	if len(m.Devices) == 0 {
		return 0
	}
	s := 0.0
	for _, d := range m.Devices {
		s += d.Utilisation
	}
	return s / float64(len(m.Devices))
}

func writeRunTable(w io.Writer, r, dp *simRun, dpNote string) {
	p := r.plan
	fmt.Fprintf(w, "%s: %d samples, %s on %d × %s, %d steps\n", p.Name, r.metrics.Samples, cliutil.LayoutLabel(p), len(p.Devices), p.Devices[0].Kind, p.Sampler.Steps)
	fmt.Fprintln(w, costsLine(p))
	fmt.Fprintln(w)

	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	mine := cliutil.LayoutLabel(p)
	if dp != nil {
		fmt.Fprintf(tw, "metric\t%s\t%s\t%s\n", mine, cliutil.LayoutLabel(dp.plan), "ratio")
	} else {
		fmt.Fprintf(tw, "metric\t%s\n", mine)
	}
	for _, row := range runRows {
		a := row.get(&r.metrics)
		if dp != nil {
			b := row.get(&dp.metrics)
			ratio := "—"
			if b != 0 {
				ratio = reports.FormatRatio(a / b)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", row.name, row.fmt(a), row.fmt(b), ratio)
		} else {
			fmt.Fprintf(tw, "%s\t%s\n", row.name, row.fmt(a))
		}
	}
	tw.Flush()
	fmt.Fprintln(w)
	if dp != nil {
		fmt.Fprintf(w, "ratio = %s / %s (same devices, same %d samples)\n", mine, cliutil.LayoutLabel(dp.plan), dp.metrics.Samples)
		for _, line := range reports.BaselineVerdict(r.metrics, dp.metrics, "the "+strings.SplitN(mine, " ", 2)[0], "data parallel") {
			fmt.Fprintln(w, line)
		}
	} else {
		fmt.Fprintf(w, "no data-parallel comparison: %s\n", dpNote)
	}

	fmt.Fprintf(w, "\ndevices (%s)\n", mine)
	mem := map[string]sim.DeviceMemory{}
	for _, m := range r.res.Memory {
		mem[m.Device] = m
	}
	tw = tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	fmt.Fprintln(tw, "device\tutilisation\tbusy\tidle: fill\tdrain\tbetween\tmemory need / have\tfits")
	for _, d := range r.metrics.Devices {
		m := mem[d.Device]
		have := "unknown"
		if m.HaveGB > 0 {
			have = fmt.Sprintf("%.3g GB", m.HaveGB)
		}
		fits := "yes"
		if !m.Fits {
			fits = fmt.Sprintf("NO (%.3g GB over)", m.OverGB())
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%.3g GB / %s\t%s\n", d.Device, reports.FormatPercent(d.Utilisation), reports.FormatNS(d.BusyNS),
			reports.FormatNS(d.FillNS), reports.FormatNS(d.DrainNS), reports.FormatNS(d.BetweenNS), m.NeedGB, have, fits)
	}
	tw.Flush()
}

// ratios are pipeline / data parallel for each metric, in JSON.
func ratios(a, b *timeline.Metrics) map[string]float64 {
	out := map[string]float64{}
	keys := []string{"first_latency", "throughput", "makespan", "latency_mean", "latency_p50", "latency_p95", "latency_p99", "mean_utilisation"}
	for i, row := range runRows {
		if y := row.get(b); y != 0 {
			out[keys[i]] = row.get(a) / y
		}
	}
	return out
}

// runJSON is what run --json prints.
type runJSON struct {
	Plan         string               `json:"plan"`
	File         string               `json:"file,omitempty"`
	Layout       string               `json:"layout"`
	Profile      string               `json:"profile"`
	Measured     bool                 `json:"costs_measured"`
	Metrics      cliutil.MetricsJSON  `json:"metrics"`
	Memory       []sim.DeviceMemory   `json:"memory"`
	DataParallel *cliutil.MetricsJSON `json:"data_parallel"`
	DPNote       string               `json:"data_parallel_note,omitempty"`
	// Ratio is this plan's metric / data parallel's, per metric.
	Ratio map[string]float64 `json:"ratio,omitempty"`
	Files []string           `json:"files,omitempty"`
}

func writeRunJSON(w io.Writer, r, dp *simRun, dpNote string, files []string) error {
	j := runJSON{
		Plan: r.plan.Name, File: r.plan.File, Layout: cliutil.LayoutLabel(r.plan),
		Profile:  r.plan.Profile.ProvenanceString(),
		Measured: r.plan.Profile.Provenance.Source == "measured",
		Metrics:  cliutil.NewMetricsJSON(r.metrics), Memory: r.res.Memory,
		DPNote: dpNote, Files: files,
	}
	if dp != nil {
		m := cliutil.NewMetricsJSON(dp.metrics)
		j.DataParallel = &m
		j.Ratio = ratios(&r.metrics, &dp.metrics)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(j); err != nil {
		return fmt.Errorf("write json: %w", err)
	}
	return nil
}

// writeRunOutputs writes the files of run --out and returns their paths.
func writeRunOutputs(dir string, r, dp *simRun, dpNote string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("--out: %w", err)
	}
	var files []string
	path := func(name string) string {
		p := filepath.Join(dir, name)
		files = append(files, p)
		return p
	}
	var images []reports.Image
	if tl := r.res.Timeline; tl != nil {
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
		panels := []reports.GanttPanel{{Title: "predicted, " + cliutil.LayoutLabel(r.plan), TL: tl}}
		if dp != nil && dp.res.Timeline != nil {
			panels = append(panels, reports.GanttPanel{Title: "predicted, " + cliutil.LayoutLabel(dp.plan) + " (baseline)", TL: dp.res.Timeline})
		}
		if err := reports.WriteGanttPNG(path("gantt.png"), panels, reports.GanttOptions{}); err != nil {
			return nil, err
		}
		title := "Gantt chart: " + cliutil.LayoutLabel(r.plan)
		if len(panels) > 1 {
			title += " (top) and the data-parallel baseline (bottom), on one time axis"
		}
		images = append(images, reports.Image{Title: title, Path: "gantt.png"})
	}
	mj := map[string]any{"plan": r.plan.Name, "layout": cliutil.LayoutLabel(r.plan), "metrics": cliutil.NewMetricsJSON(r.metrics)}
	if dp != nil {
		mj["data_parallel"] = cliutil.NewMetricsJSON(dp.metrics)
		mj["ratio"] = ratios(&r.metrics, &dp.metrics)
	}
	data, err := json.MarshalIndent(mj, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("metrics json: %w", err)
	}
	if err := atomicfile.Write(path("metrics.json"), append(data, '\n')); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	rep := reports.Report{
		Title:     "vdsim prediction: " + r.plan.Name,
		Plan:      r.plan,
		Predicted: &reports.Run{Meta: r.res.Meta, Metrics: r.metrics},
		Images:    images,
	}
	if dp != nil {
		rep.Baseline = &reports.Run{Meta: dp.res.Meta, Metrics: dp.metrics}
	} else {
		rep.BaselineNote = dpNote
	}
	if err := reports.WriteMarkdown(path("report.md"), rep); err != nil {
		return nil, err
	}
	return files, nil
}
