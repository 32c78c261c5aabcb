package main

import (
	"fmt"
	"io"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/vdpp/vdpp/cmd/internal/cliutil"
	"github.com/vdpp/vdpp/internal/atomicfile"
	"github.com/vdpp/vdpp/plan"
	"github.com/vdpp/vdpp/reports"
	"github.com/vdpp/vdpp/study"
	"github.com/vdpp/vdpp/timeline"
)

func searchCommand() *cli.Command {
	flags := append(cliutil.WhatIfFlags(envPrefix, false),
		&cli.StringFlag{Name: "goal", Value: string(study.GoalThroughput), EnvVars: cliutil.Env(envPrefix, "goal"), Usage: "what to optimise: throughput, latency (first sample), rate (highest Poisson rate within --slo-p95), devices (fewest reaching --target-throughput)"},
		&cli.DurationFlag{Name: "slo-first", EnvVars: cliutil.Env(envPrefix, "slo-first"), Usage: "first-sample latency at most `D` (e.g. 15s)"},
		&cli.DurationFlag{Name: "slo-p95", EnvVars: cliutil.Env(envPrefix, "slo-p95"), Usage: "p95 sample latency at most `D`; the rate goal needs it"},
		&cli.Float64Flag{Name: "target-throughput", EnvVars: cliutil.Env(envPrefix, "target-throughput"), Usage: "samples/s the devices goal must reach"},
		&cli.IntFlag{Name: "max-devices", EnvVars: cliutil.Env(envPrefix, "max-devices"), Usage: "use at most `N` of the plan's devices (default: all)"},
		&cli.StringFlag{Name: "micro-batches", EnvVars: cliutil.Env(envPrefix, "micro-batches"), Usage: "micro-batch sizes `N,N,...` to try (default: 1 up to the largest the profile measured)"},
		&cli.IntFlag{Name: "rate-samples", Value: study.DefaultRateSamples, EnvVars: cliutil.Env(envPrefix, "rate-samples"), Usage: "Poisson arrivals per simulation of the rate goal"},
		&cli.BoolFlag{Name: "exhaustive", EnvVars: cliutil.Env(envPrefix, "exhaustive"), Usage: "simulate every candidate that fits and meets the SLOs and target by its bounds, even those that cannot beat the best (slower; the same answer, a fuller Pareto chart)"},
		&cli.IntFlag{Name: "top", Value: 5, EnvVars: cliutil.Env(envPrefix, "top"), Usage: "how many of the best candidates to list"},
		&cli.StringFlag{Name: "out", EnvVars: cliutil.Env(envPrefix, "search-out"), Usage: "write search.md, pareto.png, winner.yaml and runner-up.yaml (plans vdsim and vdexec run as they are) to `DIR`"},
		replaceFlag("search-replace"),
		progressFlag(),
	)
	return &cli.Command{
		Name:      "search",
		Usage:     "find the best layout of the plan's devices for a goal",
		ArgsUsage: "[PLAN]",
		Description: "Tries every R pipelines × S stages over up to all the plan's devices (fewer too), the order of devices " +
			"where they or their links differ, even and balanced step splits, the micro-batch sizes the profile covers, and " +
			"blocking and buffered hand-off; sets aside by bounds (throughput ≤ 1 / slowest stage; first latency ≥ the " +
			"work on its path) what cannot win, and simulates the rest with the plan's workload. " +
			"Example: vdsim search configs/svd-14f-320x576-7xa5000.yaml --goal latency --out out/search",
		Flags:  flags,
		Action: withPlan(searchAction),
	}
}

// searchOutputs are what search --out writes, for the folder's manifest.
var searchOutputs = []string{"search.md", "pareto.png", "winner.yaml", "winner-costs.yaml", "runner-up.yaml", "runner-up-costs.yaml"}

func searchAction(c *cli.Context, p *plan.Plan) error {
	opts, err := searchOptions(c)
	if err != nil {
		return err
	}
	out := c.String("out")
	if out != "" {
		if err := prepareOut(c, out, "vdsim search", searchOutputs); err != nil {
			return err
		}
	}
	wt, err := newWatcher(c)
	if err != nil {
		return err
	}
	wt.setPhase("candidate", p.Workload.Samples)
	opts.Watch = wt.watch
	res, err := study.Search(p, opts)
	nothing := "nothing was printed or written"
	if out != "" {
		nothing = "no outputs were written (" + out + " holds only its manifest)"
	}
	if err = wt.close(err, nothing); err != nil {
		return simError(err)
	}
	w := c.App.Writer
	writeSearch(w, res, c.Int("top"))
	if out != "" {
		files, err := writeSearchFiles(out, res, c.Int("top"))
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "\nwrote:\n  %s\n", strings.Join(files, "\n  "))
	}
	if res.Best() == nil {
		return fmt.Errorf("search: no layout meets the constraints (see why the others lost above)")
	}
	return nil
}

// searchOptions reads the search flags. A number that means nothing (a
// negative SLO, a target for another goal) is a usage error.
func searchOptions(c *cli.Context) (study.SearchOptions, error) {
	o := study.SearchOptions{
		Goal:             study.Goal(c.String("goal")),
		SLOFirstNS:       c.Duration("slo-first").Nanoseconds(),
		SLOP95NS:         c.Duration("slo-p95").Nanoseconds(),
		TargetThroughput: c.Float64("target-throughput"),
		MaxDevices:       c.Int("max-devices"),
		RateSamples:      c.Int("rate-samples"),
		NoPrune:          c.Bool("exhaustive"),
	}
	usage := func(format string, a ...any) (study.SearchOptions, error) {
		return o, cliutil.Usage(fmt.Errorf(format, a...))
	}
	for _, f := range []string{cliutil.FlagMicroBatch, "latent-shape"} {
		if c.IsSet(f) {
			return usage("--%s: search tries micro-batch sizes itself; give them with --micro-batches", f)
		}
	}
	if !slices.Contains(study.Goals(), o.Goal) {
		return usage("--goal %q: want throughput, latency, rate or devices", o.Goal)
	}
	for _, d := range []struct {
		name string
		ns   int64
	}{{"slo-first", o.SLOFirstNS}, {"slo-p95", o.SLOP95NS}} {
		if c.IsSet(d.name) && d.ns <= 0 {
			return usage("--%s %s: want a duration above 0 (leave it out for no bound)", d.name, c.Duration(d.name))
		}
	}
	t := o.TargetThroughput
	switch {
	case c.IsSet("target-throughput") && o.Goal != study.GoalDevices:
		return usage("--target-throughput is for --goal devices (the goal is %s)", o.Goal)
	case c.IsSet("target-throughput") && !(t > 0 && !math.IsInf(t, 0)):
		return usage("--target-throughput %v: want samples/s above 0", t)
	case c.IsSet("max-devices") && o.MaxDevices < 1:
		return usage("--max-devices %d: want at least 1 (leave it out for all the plan's devices)", o.MaxDevices)
	case c.IsSet("rate-samples") && o.Goal != study.GoalRate:
		return usage("--rate-samples is for --goal rate (the goal is %s)", o.Goal)
	case c.IsSet("rate-samples") && (o.RateSamples < 20 || o.RateSamples > study.MaxRateSamples):
		return usage("--rate-samples %d: want 20 (a p95 of fewer means little) to %d (each candidate simulates about 15 times that many arrivals)", o.RateSamples, study.MaxRateSamples)
	case o.Goal == study.GoalRate && !c.IsSet("slo-p95"):
		return usage("--goal rate needs --slo-p95 D: the rate is the highest whose p95 sample latency stays within D")
	case o.Goal == study.GoalDevices && !c.IsSet("target-throughput"):
		return usage("--goal devices needs --target-throughput R: the fewest devices that reach R samples/s")
	case c.Int("top") < 1:
		return usage("--top %d: want at least 1", c.Int("top"))
	}
	if c.IsSet("micro-batches") {
		mbs, err := cliutil.ParseInts(c.String("micro-batches"))
		if err != nil {
			return usage("--micro-batches: %w", err)
		}
		o.MicroBatches = mbs
	}
	return o, nil
}

// writeSearch prints the goal, the top candidates, why the others lost and
// the notes.
func writeSearch(w io.Writer, res *study.SearchResult, top int) {
	p := res.Plan
	goal, cons := res.Options.Describe()
	work := fmt.Sprintf("; %d samples", p.Workload.Samples) // the rate goal's arrivals are in its goal
	if res.Options.Goal == study.GoalRate {
		work = ""
	}
	fmt.Fprintf(w, "%s: search for %s%s, %d steps; %s\n", p.Name, goal, work, p.Sampler.Steps, costsLine(p))
	for _, c := range cons {
		fmt.Fprintf(w, "  constraint: %s\n", c)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	rate := res.Options.Goal == study.GoalRate
	head := "rank\tlayout\tthroughput\tfirst-sample latency\tp95 latency\t"
	if rate {
		head += "sustained rate\t"
	}
	fmt.Fprintln(tw, head+"margin")
	for _, r := range searchRows(res, top) {
		line := fmt.Sprintf("%d\t%s\t%s\t%s\t%s\t", r.Rank, r.Label, timeline.FormatRate(r.Throughput), timeline.FormatSeconds(r.FirstLatencyS), timeline.FormatSeconds(r.P95S))
		if rate {
			line += timeline.FormatRate(r.Rate) + "\t"
		}
		fmt.Fprintln(tw, line+r.Why)
	}
	tw.Flush()
	if res.Best() == nil {
		fmt.Fprintln(w, "no layout meets the constraints")
	}
	fmt.Fprintln(w, "\nwhy the others lost:")
	for _, l := range res.Losses() {
		fmt.Fprintf(w, "  %-9s %6d   e.g. %s\n", l.Fate, l.Count, l.Example)
	}
	for _, n := range res.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
}

// searchRows are the top candidates as the table and the report take them.
func searchRows(res *study.SearchResult, top int) []reports.SearchRow {
	var rows []reports.SearchRow
	same := 0 // candidates folded into the last row
	fold := func() {
		if same > 0 {
			rows[len(rows)-1].Why += fmt.Sprintf(" (and %d other device orders with the same numbers)", same)
		}
	}
	for i, c := range res.Ranked {
		if i > 0 && study.Equivalent(c, res.Ranked[i-1]) {
			same++
			continue
		}
		fold()
		if same = 0; len(rows) == top {
			break
		}
		m := c.Metrics
		why := c.Why
		if m.TooFewSamples && !res.Overall && res.Options.Goal != study.GoalRate {
			why += " (throughput: overall, samples / makespan; too few samples for a steady state)"
		}
		rows = append(rows, reports.SearchRow{
			Rank: i + 1, Label: c.Label, Devices: c.Devices, Throughput: res.Throughput(c),
			FirstLatencyS: timeline.Seconds(m.FirstLatencyNS), P95S: timeline.Seconds(m.LatencyP95NS), Rate: c.Rate, Why: why,
		})
	}
	fold()
	return rows
}

// writeSearchFiles writes the winner's plan, the Pareto chart and the
// report into dir.
func writeSearchFiles(dir string, res *study.SearchResult, top int) ([]string, error) {
	var files []string
	rep := reports.SearchReport{Plan: res.Plan, Top: searchRows(res, top), Notes: res.Notes}
	rep.Goal, rep.Constraints = res.Options.Describe()
	for _, l := range res.Losses() {
		rep.Losses = append(rep.Losses, reports.SearchLoss{Reason: string(l.Fate), Count: l.Count, Example: l.Example})
	}
	if best := res.Best(); best != nil {
		path, err := writePlanFile(dir, "winner", best.Plan)
		if err != nil {
			return nil, err
		}
		files, rep.Winner = append(files, path), filepath.Base(path)
	}
	if next := runnerUp(res); next != nil {
		path, err := writePlanFile(dir, "runner-up", next.Plan)
		if err != nil {
			return nil, err
		}
		files = append(files, path)
	}
	if pts := paretoPoints(res); len(pts) > 0 {
		png := filepath.Join(dir, "pareto.png")
		if err := reports.WriteParetoPNG(png, res.Plan.Name+": every simulated layout (frontier labelled, winner ringed)", pts); err != nil {
			return nil, err
		}
		files = append(files, png)
		rep.Images = []reports.Image{{Title: "throughput against first-sample latency of every simulated layout", Path: "pareto.png"}}
	}
	md := filepath.Join(dir, "search.md")
	if err := reports.WriteSearchMarkdown(md, rep); err != nil {
		return nil, err
	}
	return append(files, md), nil
}

// runnerUp is the best ranked candidate of another shape than the winner
// (pipelines × stages, split, micro-batch, hand-off), not the same layout
// with its devices in another order, or nil.
func runnerUp(res *study.SearchResult) *study.Candidate {
	for _, c := range res.Ranked[min(1, len(res.Ranked)):] {
		if c.ShortLabel() != res.Ranked[0].ShortLabel() {
			return c
		}
	}
	return nil
}

// writePlanFile writes plan q as NAME.yaml in dir. A plan that came from
// the built-in configs has no folder to point its costs at, so its
// profile is written beside it as NAME-costs.yaml.
func writePlanFile(dir, name string, q *plan.Plan) (string, error) {
	q = q.Clone()
	if q.Dir == "" && q.Costs != "" && q.Profile != nil {
		b, err := q.Profile.Marshal()
		if err != nil {
			return "", err
		}
		costs := filepath.Join(dir, name+"-costs.yaml")
		if err := atomicfile.Write(costs, b); err != nil {
			return "", fmt.Errorf("search: %w", err)
		}
		abs, err := filepath.Abs(costs)
		if err != nil {
			return "", fmt.Errorf("search: %w", err)
		}
		pr := *q.Profile
		pr.File = abs
		q.Costs, q.Profile = abs, &pr
	}
	b, err := q.Marshal(dir)
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, name+".yaml")
	if err := atomicfile.Write(path, b); err != nil {
		return "", fmt.Errorf("search: %w", err)
	}
	return path, nil
}

// paretoPoints are every simulated candidate, the frontier and the winner
// marked.
func paretoPoints(res *study.SearchResult) []reports.ParetoPoint {
	front := map[*study.Candidate]bool{}
	for _, c := range res.Frontier() {
		front[c] = true
	}
	var pts []reports.ParetoPoint
	for _, c := range res.All {
		if c.Metrics == nil {
			continue
		}
		pts = append(pts, reports.ParetoPoint{Label: c.ShortLabel(), Throughput: res.Throughput(c),
			FirstLatencyS: timeline.Seconds(c.Metrics.FirstLatencyNS), Frontier: front[c], Best: c == res.Best()})
	}
	return pts
}
