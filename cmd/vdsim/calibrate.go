package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/vdpp/vdpp/cmd/internal/cliutil"
	"github.com/vdpp/vdpp/internal/atomicfile"
	"github.com/vdpp/vdpp/internal/outdir"
	"github.com/vdpp/vdpp/plan"
	"github.com/vdpp/vdpp/study"
)

func calibrateCommand() *cli.Command {
	return &cli.Command{
		Name:      "calibrate",
		Usage:     "fit a cost profile's free parameters to measured runs (vdexec metrics.json, or a CSV of benchmark runs)",
		ArgsUsage: "[PLAN.yaml] RUNS...",
		Description: "Fits step cost (unet_ms 1), warm-up (first_call_ms 1 − unet_ms 1), per-sample overhead (sample_last_ms), " +
			"per-hop cost (latency_us of the plan's transport) and set-up (setup_ms, setup_ms_per_rank) to measured runs, " +
			"by bounded least squares (every parameter ≥ 0) on the relative errors of first-sample latency, steady seconds " +
			"per sample and makespan, each run modelled by simulating it. The plan (the first argument when it ends in .yaml " +
			"or .yml, else the built-in reference plan) gives the model shape, device kind, sampler steps and transport; its " +
			"cost profile (or --costs) is the starting point and keeps every number that is not fitted (memory, encode, " +
			"decode, host time, bandwidth). Each run is simulated on its own device count (copies of the plan's first " +
			"device), as one pipeline with the steps split evenly or as data parallel, micro-batch 1, every sample " +
			"released at the start. RUNS are metrics.json files written by `vdexec run --out DIR` (or the folder DIR; " +
			"its steps are read from DIR/timeline.json), and CSV files with the header " +
			strings.Join(study.CalCSVColumns, ",") + " (layout pipeline or data-parallel; a time may be empty when " +
			"it was not measured; # starts a comment). Prints every run's measured and fitted metrics with the signed " +
			"error, then each parameter, and says plainly when the runs cannot identify one (runs of one device count " +
			"cannot separate per-hop from per-sample cost): it is then kept at its starting value. With --out, writes " +
			"the profile with provenance source calibrated, naming its inputs.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: cliutil.FlagCosts, EnvVars: cliutil.Env(envPrefix, "calibrate-costs"), Usage: "starting cost profile `FILE`, instead of the plan's costs"},
			&cli.StringFlag{Name: "out", EnvVars: cliutil.Env(envPrefix, "calibrate-out"), Usage: "write the calibrated profile to `FILE` (YAML; a new file unless --replace)"},
			&cli.BoolFlag{Name: "replace", EnvVars: cliutil.Env(envPrefix, "calibrate-replace"), Usage: "let --out overwrite an existing file"},
			&cli.StringFlag{Name: "date", EnvVars: cliutil.Env(envPrefix, "calibrate-date"), Usage: "provenance date `YYYY-MM-DD` of the profile (default today)"},
			&cli.IntFlag{Name: "max-samples", Value: study.DefaultCalMaxSamples, EnvVars: cliutil.Env(envPrefix, "calibrate-max-samples"), Usage: "simulate at most `N` samples per run (a longer run's makespan is extrapolated at its steady rate)"},
		},
		Action: calibrateAction,
	}
}

func calibrateAction(c *cli.Context) error {
	args, err := cliutil.Positional(c)
	if err != nil {
		if cliutil.IsHelp(err) {
			return nil
		}
		return err
	}
	var planArgs []string
	if len(args) > 0 && isPlanFile(args[0]) {
		planArgs, args = args[:1], args[1:]
	}
	if len(args) == 0 {
		return cliutil.Usage(errors.New("calibrate: no runs given; want [PLAN.yaml] RUNS..., where RUNS are vdexec metrics.json files (or their folders) and CSV files"))
	}
	if n := c.Int("max-samples"); n < 1 {
		return cliutil.Usage(fmt.Errorf("calibrate: --max-samples %d: want at least 1", n))
	}
	now := time.Now()
	date := c.String("date")
	if date == "" {
		if c.IsSet("date") {
			return cliutil.Usage(fmt.Errorf("calibrate: --date is empty: give a date written YYYY-MM-DD, such as %s, or leave the flag out for today", now.Format(time.DateOnly)))
		}
		date = now.Format(time.DateOnly)
	}
	if err := plan.CheckDate(date, now); err != nil {
		return cliutil.Usage(fmt.Errorf("calibrate: --date: %w", err))
	}
	day, _ := time.Parse(time.DateOnly, date)
	out := c.String("out")
	if out != "" {
		if err := outdir.CheckNewFile(out, c.Bool("replace"), "--replace"); err != nil {
			return fmt.Errorf("calibrate: --out: %w", err)
		}
	}
	p, err := cliutil.LoadPlan(planArgs, defaultPlan, c.String(cliutil.FlagCosts), c.App.ErrWriter)
	if err != nil {
		return err
	}
	if p.Profile == nil {
		return fmt.Errorf("calibrate: plan %s has no cost profile to start from: set costs: in the plan or pass --costs FILE (measure one with `vdexec profile`); calibrate keeps what it does not fit (memory, encode, decode, bandwidth)", p.Name)
	}
	var runs []study.CalRun
	var inputs []string
	for _, a := range args {
		path, err := runFile(a)
		if err != nil {
			return err
		}
		rs, notes, err := study.ReadCalRuns(path, p.Sampler.Steps)
		if err != nil {
			return err
		}
		for _, n := range notes {
			fmt.Fprintf(c.App.ErrWriter, "vdsim: note: %s\n", n)
		}
		if len(runs)+len(rs) > study.MaxCalRuns {
			return fmt.Errorf("calibrate: more than %d runs in %s; calibrate fits at most %d", study.MaxCalRuns, strings.Join(append(inputs, path), ", "), study.MaxCalRuns)
		}
		runs = append(runs, rs...)
		inputs = append(inputs, path)
	}
	cal, err := study.Calibrate(p, runs, study.CalibrateOptions{MaxSamples: c.Int("max-samples"), Date: day, Inputs: inputs})
	if err != nil {
		return err
	}
	writeCalibration(c.App.Writer, p, cal)
	if out == "" {
		fmt.Fprintln(c.App.Writer, "\nno --out: the calibrated profile was not written")
		return nil
	}
	data, err := cal.Profile.Marshal()
	if err != nil {
		return err
	}
	head := fmt.Sprintf("# Cost profile calibrated by vdsim calibrate from %d run(s) of plan %s: %s.\n# Predict with it: vdsim run PLAN --costs %s\n",
		len(runs), p.Name, strings.Join(inputs, ", "), filepath.Base(out))
	if err := atomicfile.Write(out, append([]byte(head), data...)); err != nil {
		return fmt.Errorf("calibrate: %w", err)
	}
	planArg := "PLAN"
	if len(planArgs) == 1 {
		planArg = planArgs[0]
	}
	fmt.Fprintf(c.App.Writer, "\nwrote %s\npredict with it: vdsim run %s --costs %s\n", out, planArg, out)
	return nil
}

// isPlanFile reports whether a calibrate argument is the plan: a file
// name ending in .yaml or .yml.
func isPlanFile(a string) bool {
	ext := strings.ToLower(filepath.Ext(a))
	return ext == ".yaml" || ext == ".yml"
}

// runFile is the file a RUNS argument names: the file, or DIR/metrics.json
// for a folder.
func runFile(a string) (string, error) {
	fi, err := os.Stat(a)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("calibrate: %s: no such file; give vdexec metrics.json files (or their folders) and CSV files", a)
		}
		return "", fmt.Errorf("calibrate: %s: %w", a, err)
	}
	if !fi.IsDir() {
		return a, nil
	}
	m := filepath.Join(a, "metrics.json")
	if _, err := os.Stat(m); err != nil {
		return "", fmt.Errorf("calibrate: %s is a folder without metrics.json; give the folder of a `vdexec run --out` or the files themselves", a)
	}
	return m, nil
}

// writeCalibration prints the fit: the runs, measured against fitted,
// then the parameters.
func writeCalibration(w io.Writer, p *plan.Plan, cal *study.Calibration) {
	fmt.Fprintf(w, "%s: calibrated %s on %s (%s transport) to %d run(s), %d simulations\n",
		p.Name, profileLabel(p), p.Devices[0].Kind, p.Transport, len(cal.Runs), cal.Simulations)
	for _, n := range cal.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "run\tlayout\tsamples\tmetric\tmeasured\tfitted\terror\t")
	for _, f := range cal.Runs {
		where, label, n := f.Run.Where, f.Run.Label(), fmt.Sprint(f.Run.Samples)
		if f.Simulated < f.Run.Samples {
			n += fmt.Sprintf(" (sim %d)", f.Simulated)
		}
		for i, name := range study.CalMetricNames {
			meas := f.Run.Measured[i]
			if math.IsNaN(meas) {
				continue
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.4g\t%.4g\t%+.2f%%\t\n", where, label, n, name, meas, f.Model[i], 100*f.Residual(i))
			where, label, n = "", "", ""
		}
	}
	tw.Flush()
	fmt.Fprintf(w, "\nerror = (fitted − measured) / measured; rms %.2f%%, largest %.2f%%\n\n", 100*cal.RMS, 100*cal.Max)

	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "parameter\tprofile field\tstart\tvalue\t± std. error\tstatus\t")
	var whys []string
	for _, pr := range cal.Params {
		status, se := "fitted", "—"
		if !math.IsNaN(pr.StdErr) {
			se = fieldValue(pr.Param, pr.StdErr)
		}
		if !pr.Fitted {
			status = "NOT IDENTIFIABLE, kept"
			whys = append(whys, fmt.Sprintf("%s: not identifiable from these runs: %s; kept at %s from the starting profile", pr.Param.Name(), pr.Why, fieldValue(pr.Param, pr.Value)))
		} else if pr.Why != "" {
			status = "fitted (see below)"
			whys = append(whys, fmt.Sprintf("%s: %s", pr.Param.Name(), pr.Why))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t\n", pr.Param.Name(), fieldLabel(pr.Param, p), fieldValue(pr.Param, pr.Start), fieldValue(pr.Param, pr.Value), se, status)
	}
	tw.Flush()
	if len(whys) > 0 {
		fmt.Fprintln(w)
		for _, s := range whys {
			fmt.Fprintln(w, s)
		}
	}
}

// profileLabel names the starting profile.
func profileLabel(p *plan.Plan) string {
	if p.Profile.File != "" {
		return p.Profile.File
	}
	return "the plan's profile"
}

// fieldLabel is the profile field of a parameter, with the device kind or
// transport it belongs to.
func fieldLabel(c study.CalParam, p *plan.Plan) string {
	switch c {
	case study.CalHop, study.CalSetup, study.CalSetupPerRank:
		return fmt.Sprintf("transports.%s.%s", p.Transport, c.Field())
	case study.CalWarmup:
		return c.Field()
	}
	return fmt.Sprintf("devices.%s.%s", p.Devices[0].Kind, c.Field())
}

// fieldValue formats a parameter's value (ms) in its field's unit.
func fieldValue(c study.CalParam, ms float64) string {
	if c == study.CalHop && ms < 1 {
		return fmt.Sprintf("%.4g µs", ms*1e3)
	}
	return fmt.Sprintf("%.4g ms", ms)
}
