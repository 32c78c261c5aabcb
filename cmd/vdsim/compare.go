package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/vdpp/vdpp/cmd/internal/cliutil"
	"github.com/vdpp/vdpp/plan"
	"github.com/vdpp/vdpp/reports"
	"github.com/vdpp/vdpp/sim"
	"github.com/vdpp/vdpp/timeline"
)

func compareCommand() *cli.Command {
	return &cli.Command{
		Name:      "compare",
		Usage:     "compare a predicted timeline with a measured one: Markdown report with signed errors and Gantt charts",
		ArgsUsage: "PREDICTED.json MEASURED.json",
		Description: "Reads two timelines of the same plan (from `vdsim run --out` and `vdexec run`), writes DIR/report.md " +
			"with the signed error of every metric, device and stage, and DIR/gantt.png with both runs on one time axis, " +
			"and prints the headline errors. With --plan, the report shows the plan and its cost profile, adds the " +
			"predicted data-parallel baseline on the same devices and, for a measured (exec) timeline, a hindsight " +
			"simulation with the costs the run itself spent, which separates the pipeline model's own error from the cost profile's.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "plan", EnvVars: cliutil.Env(envPrefix, "compare-plan"), Usage: "the plan `FILE` both runs are of (for the plan table, provenance and baseline)"},
			&cli.StringFlag{Name: cliutil.FlagCosts, EnvVars: cliutil.Env(envPrefix, "compare-costs"), Usage: "cost profile `FILE` for --plan, instead of the plan's costs"},
			&cli.StringFlag{Name: "out", Value: ".", EnvVars: cliutil.Env(envPrefix, "compare-out"), Usage: "write report.md and gantt.png to `DIR`"},
		},
		Action: compareAction,
	}
}

func compareAction(c *cli.Context) error {
	args, err := cliutil.Positional(c)
	if err != nil {
		if cliutil.IsHelp(err) {
			return nil
		}
		return err
	}
	if len(args) != 2 {
		return fmt.Errorf("compare: want two timeline files, PREDICTED.json MEASURED.json; got %d argument(s)", len(args))
	}
	stdout, stderr := c.App.Writer, c.App.ErrWriter
	pred, err := timeline.ReadFile(args[0])
	if err != nil {
		return err
	}
	meas, err := timeline.ReadFile(args[1])
	if err != nil {
		return err
	}
	if pred.Meta.Source == "exec" && meas.Meta.Source == "sim" {
		fmt.Fprintf(stderr, "vdsim: warning: %s is from exec and %s from sim; the order is PREDICTED MEASURED\n", args[0], args[1])
	}
	if pred.Meta.Plan != meas.Meta.Plan {
		fmt.Fprintf(stderr, "vdsim: warning: the timelines are of different plans (%q and %q)\n", pred.Meta.Plan, meas.Meta.Plan)
	}
	rep := reports.Report{Predicted: reports.NewRun(pred), Measured: reports.NewRun(meas)}
	if pf := c.String("plan"); pf != "" {
		p, err := cliutil.LoadPlan([]string{pf}, nil, c.String(cliutil.FlagCosts), stderr)
		if err != nil {
			return err
		}
		if p.Name != pred.Meta.Plan {
			fmt.Fprintf(stderr, "vdsim: warning: --plan is %q but the predicted timeline is of %q\n", p.Name, pred.Meta.Plan)
		}
		rep.Plan = p
		rep.Baseline, rep.BaselineNote = compareBaseline(p, rep.Predicted.Metrics.Samples)
		rep.Hindsight = compareHindsight(p, meas, stderr)
	} else {
		rep.BaselineNote = "no --plan given"
	}
	out := c.String("out")
	if err := os.MkdirAll(out, 0o755); err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	gantt := filepath.Join(out, "gantt.png")
	panels := []reports.GanttPanel{{Title: "predicted", TL: pred}, {Title: "measured", TL: meas}}
	if err := reports.WriteGanttPNG(gantt, panels, reports.GanttOptions{}); err != nil {
		return err
	}
	rep.Images = []reports.Image{{Title: "Gantt charts: predicted (top) and measured (bottom), on one time axis", Path: "gantt.png"}}
	md := filepath.Join(out, "report.md")
	if err := reports.WriteMarkdown(md, rep); err != nil {
		return err
	}

	p, q := rep.Predicted.Metrics, rep.Measured.Metrics
	fmt.Fprintf(stdout, "%s: predicted (%s) against measured (%s)\n\n", pred.Meta.Plan, args[0], args[1])
	tw := tabwriter.NewWriter(stdout, 0, 0, 3, ' ', 0)
	fmt.Fprintln(tw, "metric\tpredicted\tmeasured\terror\t")
	for _, row := range runRows[:5] {
		a, b := row.get(&p), row.get(&q)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", row.name, row.fmt(a), row.fmt(b), reports.FormatSignedPercent(reports.RelError(a, b)))
	}
	tw.Flush()
	fmt.Fprintln(stdout, "\nerror = (predicted − measured) / measured; per device and per stage in the report")
	if h := rep.Hindsight; h != nil {
		q := rep.Measured.Metrics
		fmt.Fprintf(stdout, "hindsight (simulated with the costs this run spent): first-sample latency %s, throughput %s — the pipeline model's own error\n",
			reports.FormatSignedPercent(reports.RelError(float64(h.Metrics.FirstLatencyNS), float64(q.FirstLatencyNS))),
			reports.FormatSignedPercent(reports.RelError(h.Metrics.Throughput, q.Throughput)))
	}
	fmt.Fprintf(stdout, "wrote:\n  %s\n  %s\n", md, gantt)
	return nil
}

// compareBaseline simulates the plan as data parallel with the given
// sample count, or says why not.
func compareBaseline(p *plan.Plan, samples int) (*reports.Run, string) {
	if p.Profile == nil {
		return nil, "the plan has no cost profile (give --costs)"
	}
	if isDataParallel(p) {
		return nil, "the plan is already data parallel"
	}
	q := p.Clone()
	if samples > 0 {
		if err := q.Apply(plan.Overrides{Samples: &samples}); err != nil {
			return nil, strings.ReplaceAll(err.Error(), "\n", "; ")
		}
	}
	dp, err := q.DataParallel()
	if err != nil {
		return nil, "data parallel cannot run on these devices: " + strings.ReplaceAll(err.Error(), "\n", "; ")
	}
	r, err := simulate(dp, false)
	if err != nil {
		return nil, "data parallel cannot run on these devices: " + strings.ReplaceAll(err.Error(), "\n", "; ")
	}
	return &reports.Run{Meta: r.res.Meta, Metrics: r.metrics}, ""
}

// compareHindsight simulates the plan again with the costs the measured run
// spent (sim.Hindsight), for the same number of samples. It returns nil,
// and says why on stderr, when that cannot be done.
func compareHindsight(p *plan.Plan, meas *timeline.Timeline, stderr io.Writer) *reports.Run {
	if meas.Meta.Source != "exec" {
		return nil
	}
	hp, err := sim.Hindsight(p, meas)
	if err == nil {
		n := len(meas.Samples)
		err = hp.Apply(plan.Overrides{Samples: &n})
	}
	var res *sim.Result
	if err == nil {
		res, err = sim.Run(hp, sim.Options{Trace: true})
	}
	if err != nil {
		fmt.Fprintf(stderr, "vdsim: no hindsight simulation: %v\n", err)
		return nil
	}
	return reports.NewRun(res.Timeline)
}
