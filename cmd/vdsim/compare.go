package main

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/vdpp/vdpp/cmd/internal/cliutil"
	"github.com/vdpp/vdpp/plan"
	"github.com/vdpp/vdpp/reports"
	"github.com/vdpp/vdpp/study"
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
			"simulation with the costs the run itself spent, which separates the pipeline model's own error from the cost profile's. " +
			"A file that is not a whole timeline of a run, runs in the wrong order, or a --plan that is not the one the prediction ran " +
			"is an error. Two runs that are well formed but not comparable (different plans, an interrupted or failed measured run, " +
			"different sample counts) still get their report, whose verdict says so, and compare exits 1. " +
			"With --plan and a profile that measured a spread (jitter, drift), the plan's predicted range (p10–p90 over " +
			"--range-runs seeded runs, as vdsim run gives it) is computed too, and compare says whether the measured " +
			"first-sample latency and throughput fell inside it, below or above.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "plan", EnvVars: cliutil.Env(envPrefix, "compare-plan"), Usage: "the plan `FILE` both runs are of (for the plan table, provenance and baseline)"},
			&cli.StringFlag{Name: cliutil.FlagCosts, EnvVars: cliutil.Env(envPrefix, "compare-costs"), Usage: "cost profile `FILE` for --plan, instead of the plan's costs"},
			&cli.StringFlag{Name: "out", EnvVars: cliutil.Env(envPrefix, "compare-out"), Usage: "write report.md and gantt.png to `DIR` (required; a new or empty folder, or one an earlier compare wrote with --replace)"},
			rangeRunsFlag("compare-range-runs"),
			replaceFlag("compare-replace"),
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
		return cliutil.Usage(fmt.Errorf("compare: want two timeline files, PREDICTED.json MEASURED.json; got %d argument(s)", len(args)))
	}
	out := c.String("out")
	if out == "" {
		return cliutil.Usage(fmt.Errorf("compare: --out DIR is required: report.md and gantt.png go there"))
	}
	for _, in := range args {
		if sameDir(filepath.Dir(in), out) {
			return cliutil.Usage(fmt.Errorf("compare: --out %s is the folder of the input %s: the report goes to a folder of its own (a run's folder would be cleared with --replace)", out, in))
		}
	}
	runs, err := rangeRuns(c)
	if err != nil {
		return err
	}
	stdout, stderr := c.App.Writer, c.App.ErrWriter
	var p *plan.Plan
	if pf := c.String("plan"); pf != "" {
		if p, err = cliutil.LoadPlan([]string{pf}, nil, c.String(cliutil.FlagCosts), stderr); err != nil {
			return err
		}
	} else if c.IsSet(cliutil.FlagCosts) {
		return cliutil.Usage(fmt.Errorf("compare: --costs is for --plan; give the plan too"))
	}
	cmp, err := study.CompareFiles(args[0], args[1], p, time.Now())
	if err != nil {
		return err
	}
	if err := prepareOut(c, out, "vdsim compare", []string{"report.md", "gantt.png"}); err != nil {
		return err
	}
	for _, w := range cmp.Warnings {
		fmt.Fprintf(stderr, "vdsim: warning: %s\n", w)
	}
	if cmp.HindsightErr != nil {
		fmt.Fprintf(stderr, "vdsim: no hindsight simulation: %v\n", cmp.HindsightErr)
	}
	if err := cmp.AddRange(runs, nil); err != nil {
		fmt.Fprintf(stderr, "vdsim: no predicted range: %v\n", err)
	}
	md, gantt, err := writeCompareOutputs(out, cmp)
	if err != nil {
		return err
	}
	writeCompareTable(stdout, cmp, args[0], args[1])
	fmt.Fprintf(stdout, "wrote:\n  %s\n  %s\n", md, gantt)
	if len(cmp.NotComparable) > 0 {
		return fmt.Errorf("compare: the runs are not comparable: %s (the report's verdict says so: %s)", strings.Join(cmp.NotComparable, "; "), md)
	}
	return nil
}

// writeCompareOutputs writes report.md and gantt.png into dir and returns
// their paths.
func writeCompareOutputs(dir string, cmp *study.Comparison) (md, gantt string, err error) {
	gantt = filepath.Join(dir, "gantt.png")
	panels := []reports.GanttPanel{{Title: "predicted", TL: cmp.PredictedTimeline}, {Title: "measured", TL: cmp.MeasuredTimeline}}
	if err := reports.WriteGanttPNG(gantt, panels, reports.GanttOptions{}); err != nil {
		return "", "", err
	}
	rep := reports.Report{
		Plan: cmp.Plan, Predicted: cmp.Predicted, Measured: cmp.Measured,
		Baseline: cmp.Baseline, BaselineNote: cmp.BaselineNote, Hindsight: cmp.Hindsight, NotComparable: cmp.NotComparable,
		Range:  reportRange(cmp.Range, cmp.RangeChecks),
		Images: []reports.Image{{Title: "Gantt charts: predicted (top) and measured (bottom), on one time axis", Path: "gantt.png"}},
	}
	for _, w := range cmp.Warnings {
		rep.Notes = append(rep.Notes, "Warning: "+w+".")
	}
	switch {
	case cmp.Plan == nil:
		rep.BaselineNote = "no --plan given"
	case cmp.Plan.Profile == nil:
		rep.BaselineNote += " (give --costs)"
	}
	md = filepath.Join(dir, "report.md")
	if err := reports.WriteMarkdown(md, rep); err != nil {
		return "", "", err
	}
	return md, gantt, nil
}

// writeCompareTable prints every metric predicted, measured and the signed
// error, then the hindsight errors.
func writeCompareTable(w io.Writer, cmp *study.Comparison, predFile, measFile string) {
	p, q := &cmp.Predicted.Metrics, &cmp.Measured.Metrics
	fmt.Fprintf(w, "%s: predicted (%s) against measured (%s)\n\n", cmp.PredictedTimeline.Meta.Plan, predFile, measFile)
	if len(cmp.NotComparable) > 0 {
		fmt.Fprintf(w, "verdict: %s\n\n", strings.ReplaceAll(reports.NotComparableVerdict(cmp.NotComparable), "**", ""))
	}
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	fmt.Fprintln(tw, "metric\tpredicted\tmeasured\terror\t")
	for _, col := range timeline.Columns() {
		a, b := col.Get(p), col.Get(q)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", col.Label, col.Text(p), col.Text(q), col.Error(a, b))
	}
	tw.Flush()
	fmt.Fprintln(w, "\nerror = (predicted − measured) / measured; per device and per stage in the report")
	writeRangeChecks(w, cmp)
	if cmp.Hindsight == nil {
		return
	}
	fmt.Fprintf(w, "hindsight (simulated with the costs this run spent): %s — the pipeline model's own error\n", headlineErrors(&cmp.Hindsight.Metrics, q))
	if cmp.HindsightMean != nil {
		fmt.Fprintf(w, "  with the run's mean costs instead (no variation from sample to sample): %s\n", headlineErrors(&cmp.HindsightMean.Metrics, q))
	}
}

// headlineErrors is the error of h against q in the headline metrics.
func headlineErrors(h, q *timeline.Metrics) string {
	var errs []string
	for _, col := range timeline.Headlines() {
		if col.Key == "throughput" && (h.TooFewSamples || q.TooFewSamples) {
			col, _ = timeline.LookupColumn("overall_throughput") // no steady state to compare
		}
		errs = append(errs, col.ShortLabel()+" "+col.Error(col.Get(h), col.Get(q)))
	}
	return strings.Join(errs, ", ")
}

// sameDir reports whether a and b name the same folder.
func sameDir(a, b string) bool {
	x, errA := filepath.Abs(a)
	y, errB := filepath.Abs(b)
	return errA == nil && errB == nil && filepath.Clean(x) == filepath.Clean(y)
}

// writeRangeChecks prints where the measured headline metrics fell
// against the predicted range, or why there is none; nothing without a
// range (no plan or profile).
func writeRangeChecks(w io.Writer, cmp *study.Comparison) {
	rng := cmp.Range
	switch {
	case rng == nil:
		return
	case rng.Runs == 0:
		fmt.Fprintf(w, "predicted range: none, %s\n", rng.Note)
		return
	}
	fmt.Fprintf(w, "measured against the predicted range, p10–p90 over %d seeded runs (%s):\n", rng.Runs, rng.Spread)
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	for _, ch := range cmp.RangeChecks {
		fmt.Fprintf(tw, "  %s\t%s\t%s\tp10–p90 %s\n", ch.Column.Label, ch.Column.Format(ch.Measured), ch.Where, reports.FormatRange(ch.Column, ch.Range.P10, ch.Range.P90))
	}
	tw.Flush()
}
