package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/vdpp/vdpp/cmd/internal/cliutil"
	"github.com/vdpp/vdpp/plan"
	"github.com/vdpp/vdpp/reports"
	"github.com/vdpp/vdpp/timeline"
)

// Sweep layouts.
const (
	layoutPipeline = "pipeline"
	layoutDP       = "dp"
	layoutHybrid   = "hybrid"
)

func sweepCommand() *cli.Command {
	flags := append(cliutil.WhatIfFlags(envPrefix, false),
		&cli.StringFlag{Name: "devices", EnvVars: cliutil.Env(envPrefix, "sweep-devices"), Usage: "device counts `N,N,...` to simulate (default: 1, 2, 4, … up to the plan's device count, and that count)"},
		&cli.StringFlag{Name: "layouts", Value: "pipeline,dp,hybrid", EnvVars: cliutil.Env(envPrefix, "layouts"), Usage: "layouts to simulate: pipeline (1 pipeline × N stages), dp (N pipelines × 1 stage), hybrid (R pipelines × N/R stages for every R that divides N, 1 < R < N)"},
		&cli.StringFlag{Name: "out", EnvVars: cliutil.Env(envPrefix, "sweep-out"), Usage: "write scaling.png and sweep.md to `DIR`"},
	)
	return &cli.Command{
		Name:      "sweep",
		Usage:     "simulate a plan on several device counts and layouts; print a table and draw a scaling chart",
		ArgsUsage: "[PLAN]",
		Description: "For each device count and layout, the plan's devices are resized (copies of its first device; the devices " +
			"must be alike) and its steps split evenly (or balanced, if the plan says so), then simulated with the plan's workload. " +
			"Example: vdsim sweep configs/svd-14f-320x576-1xa5000.yaml --devices 1,2,4,7 --out out/sweep",
		Flags:  flags,
		Action: sweepAction,
	}
}

func sweepAction(c *cli.Context) error {
	p, err := loadPlan(c)
	if err != nil {
		if cliutil.IsHelp(err) {
			return nil
		}
		return err
	}
	stdout, stderr := c.App.Writer, c.App.ErrWriter
	counts := defaultCounts(len(p.Devices))
	if c.IsSet("devices") {
		if counts, err = cliutil.ParseInts(c.String("devices")); err != nil {
			return fmt.Errorf("--devices: %w", err)
		}
	}
	layouts, err := parseLayouts(c.String("layouts"))
	if err != nil {
		return err
	}
	if p.Profile == nil {
		_, err := simulate(p, false) // says why and what to do
		return err
	}
	if p.Layout.Assignment == "explicit" {
		fmt.Fprintf(stderr, "vdsim: %s has an explicit layout; the sweep splits the steps evenly instead\n", p.Name)
		p.Layout.Assignment = "even"
		p.Layout.Stages, p.Layout.Pipelines = nil, nil
	}

	var rows []reports.SweepRow
	series := map[string]*reports.ScalingSeries{}
	var order []string
	add := func(name string, pt reports.ScalingPoint) {
		s, ok := series[name]
		if !ok {
			s = &reports.ScalingSeries{Name: name}
			series[name] = s
			order = append(order, name)
		}
		s.Points = append(s.Points, pt)
	}
	for _, n := range counts {
		for _, l := range layouts {
			for _, r := range replicaCounts(l, n) {
				row := reports.SweepRow{Layout: layoutName(l), Devices: n, Replicas: r, Stages: n / r}
				m, err := sweepOne(p, n, r)
				if err != nil {
					row.Err = strings.ReplaceAll(err.Error(), "\n", "; ")
				} else {
					row.Metrics = m
					add(seriesName(l, r), reports.ScalingPoint{Devices: n, Throughput: m.Throughput, FirstLatencyS: timeline.Seconds(m.FirstLatencyNS)})
				}
				rows = append(rows, row)
			}
		}
	}

	fmt.Fprintf(stdout, "%s: %d samples, %d steps, %s; %s\n\n", p.Name, p.Workload.Samples, p.Sampler.Steps, p.Devices[0].Kind, costsLine(p))
	header, cells := reports.SweepTable(rows)
	tw := tabwriter.NewWriter(stdout, 0, 0, 3, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, row := range cells {
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	tw.Flush()

	out := c.String("out")
	if out == "" {
		return nil
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	var list []reports.ScalingSeries
	for _, name := range order {
		list = append(list, *series[name])
	}
	png := filepath.Join(out, "scaling.png")
	md := filepath.Join(out, "sweep.md")
	if len(list) == 0 {
		return fmt.Errorf("sweep: no layout could run, so there is no chart to draw")
	}
	title := fmt.Sprintf("%s: %d samples, %d steps (simulated)", p.Name, p.Workload.Samples, p.Sampler.Steps)
	if err := reports.WriteScalingPNG(png, title, list); err != nil {
		return err
	}
	rep := reports.SweepReport{Plan: p, Rows: rows, Images: []reports.Image{{Title: "throughput and first-sample latency against device count", Path: "scaling.png"}}}
	if err := reports.WriteSweepMarkdown(md, rep); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nwrote:\n  %s\n  %s\n", png, md)
	return nil
}

// sweepOne simulates p on n devices as r pipelines of n/r stages.
func sweepOne(p *plan.Plan, n, r int) (*timeline.Metrics, error) {
	q := p.Clone()
	if err := q.Apply(plan.Overrides{Devices: &n, Replicas: &r}); err != nil {
		return nil, err
	}
	run, err := simulate(q, false)
	if err != nil {
		return nil, err
	}
	return &run.metrics, nil
}

// defaultCounts is 1, 2, 4, … below n, and n (1, 2, 4, 8 when n is 1).
func defaultCounts(n int) []int {
	if n <= 1 {
		return []int{1, 2, 4, 8}
	}
	var out []int
	for k := 1; k < n; k *= 2 {
		out = append(out, k)
	}
	return append(out, n)
}

func parseLayouts(s string) ([]string, error) {
	var out []string
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' }) {
		switch f {
		case layoutPipeline, layoutDP, layoutHybrid:
			out = append(out, f)
		case "data-parallel", "data_parallel":
			out = append(out, layoutDP)
		default:
			return nil, fmt.Errorf("--layouts: %q is not a layout; want pipeline, dp or hybrid, comma-separated", f)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("--layouts: empty; want pipeline, dp or hybrid, comma-separated")
	}
	return out, nil
}

// replicaCounts lists the pipeline counts of layout l on n devices.
func replicaCounts(l string, n int) []int {
	switch l {
	case layoutPipeline:
		return []int{1}
	case layoutDP:
		return []int{n}
	}
	var out []int
	for r := 2; r < n; r++ {
		if n%r == 0 {
			out = append(out, r)
		}
	}
	return out
}

func layoutName(l string) string {
	if l == layoutDP {
		return "data parallel"
	}
	return l
}

func seriesName(l string, r int) string {
	switch l {
	case layoutPipeline:
		return "pipeline (1 × N stages)"
	case layoutDP:
		return "data parallel (N × 1 stage)"
	}
	return fmt.Sprintf("hybrid (%d pipelines)", r)
}
