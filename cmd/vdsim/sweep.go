package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/vdpp/vdpp/cmd/internal/cliutil"
	"github.com/vdpp/vdpp/plan"
	"github.com/vdpp/vdpp/reports"
	"github.com/vdpp/vdpp/study"
)

func sweepCommand() *cli.Command {
	flags := append(cliutil.WhatIfFlags(envPrefix, false),
		&cli.StringFlag{Name: "devices", EnvVars: cliutil.Env(envPrefix, "sweep-devices"), Usage: "device counts `N,N,...` to simulate (default: 1, 2, 4, … up to the plan's device count, and that count)"},
		&cli.StringFlag{Name: "layouts", Value: "pipeline,dp,hybrid", EnvVars: cliutil.Env(envPrefix, "layouts"), Usage: "layouts to simulate: pipeline (1 pipeline × N stages), dp (N pipelines × 1 stage), hybrid (R pipelines × N/R stages for every R that divides N, 1 < R < N)"},
		&cli.StringFlag{Name: "out", EnvVars: cliutil.Env(envPrefix, "sweep-out"), Usage: "write scaling.png and sweep.md to `DIR`"},
		replaceFlag("sweep-replace"),
		progressFlag(),
	)
	return &cli.Command{
		Name:      "sweep",
		Usage:     "simulate a plan on several device counts and layouts; print a table and draw a scaling chart",
		ArgsUsage: "[PLAN]",
		Description: "For each device count and layout, the plan's devices are resized (copies of its first device; the devices " +
			"must be alike) and its steps split evenly (or balanced, if the plan says so), then simulated with the plan's workload. " +
			"Example: vdsim sweep configs/svd-14f-320x576-1xa5000.yaml --devices 1,2,4,7 --out out/sweep",
		Flags:  flags,
		Action: withPlan(sweepAction),
	}
}

func sweepAction(c *cli.Context, p *plan.Plan) error {
	var err error
	stdout, stderr := c.App.Writer, c.App.ErrWriter
	counts := study.DefaultCounts(len(p.Devices))
	if c.IsSet("devices") {
		if counts, err = cliutil.ParseInts(c.String("devices")); err != nil {
			return cliutil.Usage(fmt.Errorf("--devices: %w", err))
		}
		for _, n := range counts {
			if err := (plan.Overrides{Devices: &n}).Check(); err != nil {
				return cliutil.Usage(err)
			}
		}
	}
	kinds, err := study.ParseLayoutKinds(c.String("layouts"))
	if err != nil {
		return cliutil.Usage(fmt.Errorf("--layouts: %w", err))
	}
	out := c.String("out")
	if out != "" {
		if err := prepareOut(c, out, "vdsim sweep", []string{"scaling.png", "sweep.md"}); err != nil {
			return err
		}
	}
	w, err := newWatcher(c)
	if err != nil {
		return err
	}
	w.setPhase("layout", p.Workload.Samples)
	res, err := study.SweepWatched(p, counts, kinds, w.watch)
	nothing := "nothing was printed or written"
	if out != "" {
		nothing = "no outputs were written (" + out + " holds only its manifest)"
	}
	if err = w.close(err, nothing); err != nil {
		return simError(err)
	}
	for _, n := range res.Notes {
		fmt.Fprintf(stderr, "vdsim: %s\n", n)
	}
	if len(res.Rows) == 0 {
		return cliutil.Usage(fmt.Errorf("sweep: --layouts %s at --devices %s gives no layout to simulate (a hybrid needs at least 2 pipelines of at least 2 stages: 4, 6, 8, 9, … devices; a pipeline at most one stage per step); nothing was written",
			c.String("layouts"), strings.Trim(strings.Join(strings.Fields(fmt.Sprint(counts)), ","), "[]")))
	}
	p = res.Plan
	rows := sweepRows(res)
	fmt.Fprintf(stdout, "%s: %d samples, %d steps, %s; %s\n\n", p.Name, p.Workload.Samples, p.Sampler.Steps, p.Devices[0].Kind, costsLine(p))
	header, cells := reports.SweepTable(rows)
	tw := tabwriter.NewWriter(stdout, 0, 0, 3, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, row := range cells {
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	tw.Flush()
	ran := res.Ran()
	if ran == 0 {
		return fmt.Errorf("sweep: none of the %d layouts could be simulated (each row says why); nothing was written", len(res.Rows))
	}
	if failed := len(res.Rows) - ran; failed > 0 {
		fmt.Fprintf(stderr, "vdsim: sweep: %d of %d layouts could not be simulated; each of their rows says why\n", failed, len(res.Rows))
	}
	if out == "" {
		return nil
	}
	series := reports.SweepSeries(rows)
	png := filepath.Join(out, "scaling.png")
	md := filepath.Join(out, "sweep.md")
	title := fmt.Sprintf("%s: %d samples, %d steps (simulated)", p.Name, p.Workload.Samples, p.Sampler.Steps)
	if err := reports.WriteScalingPNG(png, title, series); err != nil {
		return err
	}
	rep := reports.SweepReport{Plan: p, Rows: rows, Images: []reports.Image{{Title: "throughput and first-sample latency against device count", Path: "scaling.png"}}}
	if err := reports.WriteSweepMarkdown(md, rep); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nwrote:\n  %s\n  %s\n", png, md)
	return nil
}

// sweepRows are the rows of a sweep as the report and the table take them.
func sweepRows(res *study.SweepResult) []reports.SweepRow {
	rows := make([]reports.SweepRow, len(res.Rows))
	for i, r := range res.Rows {
		rows[i] = reports.SweepRow{
			Layout: r.Kind.Name(), Devices: r.Devices, Replicas: r.Replicas, Stages: r.Stages,
			Series: r.Series(), Metrics: r.Metrics,
		}
		if r.Err != nil {
			rows[i].Err = r.Err.Error()
		}
	}
	return rows
}
