package main

import (
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/vdpp/vdpp/cmd/internal/cliutil"
	"github.com/vdpp/vdpp/exec"
	"github.com/vdpp/vdpp/exec/gpu"
	"github.com/vdpp/vdpp/exec/ort"
	"github.com/vdpp/vdpp/internal/outdir"
	"github.com/vdpp/vdpp/plan"
	"github.com/vdpp/vdpp/reports"
)

// Flag names of profile.
const (
	flagReps   = "reps"
	flagWarmup = "warmup"
	flagTCP    = "tcp"
	flagDate   = "date"
)

// Bounds of --reps and --warmup: a profile of the largest plan stays
// within hours, and a typo (an extra zero or three) is caught at once.
const (
	maxReps   = 10000
	maxWarmup = 1000
)

func profileCommand() *cli.Command {
	flags := append(cliutil.WhatIfFlags(envPrefix, true),
		ortLibFlag(),
		imagesFlag(),
		&cli.StringFlag{Name: flagOut, Aliases: []string{"o"}, Value: filepath.Join("out", "profile.yaml"), EnvVars: cliutil.Env(envPrefix, "profile-out"),
			Usage: "write the cost profile to `FILE` (YAML, read by vdsim --costs); an existing file is refused unless --replace"},
		&cli.BoolFlag{Name: flagReplace, EnvVars: cliutil.Env(envPrefix, "profile-replace"),
			Usage: "overwrite the --out file if it exists (without it an existing file is refused)"},
		&cli.IntFlag{Name: flagReps, Value: 100, EnvVars: cliutil.Env(envPrefix, flagReps), Usage: fmt.Sprintf("timed repetitions of each measurement (1 to %d)", maxReps)},
		&cli.IntFlag{Name: flagWarmup, Value: 5, EnvVars: cliutil.Env(envPrefix, flagWarmup), Usage: fmt.Sprintf("untimed calls before the timed ones (0 to %d)", maxWarmup)},
		&cli.BoolFlag{Name: flagTCP, EnvVars: cliutil.Env(envPrefix, flagTCP), Usage: "also measure hand-offs over loopback TCP (always done for plans with transport tcp)"},
		&cli.StringFlag{Name: flagDate, EnvVars: cliutil.Env(envPrefix, flagDate), Usage: "provenance date `YYYY-MM-DD` (default today)"},
		&cli.StringFlag{Name: flagNVMLLib, EnvVars: cliutil.Env(envPrefix, flagNVMLLib),
			Usage: "NVML library `FILE` that measures the memory of cuda devices (default " + gpu.DefaultLibrary + ", as the driver installs it; only plans with cuda devices load it)"},
		backendFlag(),
	)
	flags = append(flags, ncclLibFlags()...)
	return &cli.Command{
		Name:      "profile",
		Usage:     "measure the plan's costs on this machine and write a cost profile for vdsim",
		ArgsUsage: "[PLAN]",
		Description: "Opens one session per stage device, as a run does, and measures with all devices busy at once: " +
			"the UNet call per micro-batch size the plan uses (mean of --reps after --warmup, over a real sampling " +
			"trajectory), the warm-up of a fresh session's first calls, image encode, VAE decode with video " +
			"encoding, host time per step outside the UNet call, hand-off time per " +
			"transport, and memory: on a cuda device its GPU's used memory from NVML, on a cpu device the host's resident set " +
			"(the profile's notes say which for each device). The profile records its provenance (CPU, threads, ONNX Runtime and Go " +
			"versions, date). Predict with it: vdsim run PLAN --costs FILE.",
		Flags:  flags,
		Action: profileAction,
	}
}

func profileAction(c *cli.Context) error {
	args, err := cliutil.Positional(c)
	if err != nil {
		if cliutil.IsHelp(err) {
			return nil
		}
		return err
	}
	if err := setNCCLLibs(c, "profile"); err != nil {
		return err
	}
	if _, err := backendWord(c, "profile"); err != nil {
		return err
	}
	p, err := loadPlanArgs(c, args)
	if err != nil {
		return err
	}
	backend, err := applyBackend(c, p, "profile")
	if err != nil {
		return err
	}
	reps, warm := c.Int(flagReps), c.Int(flagWarmup)
	if reps < 1 || reps > maxReps {
		return cliutil.Usage(fmt.Errorf("profile: --%s %d: want 1 to %d timed repetitions", flagReps, reps, maxReps))
	}
	if warm < 0 || warm > maxWarmup {
		return cliutil.Usage(fmt.Errorf("profile: --%s %d: want 0 to %d untimed calls", flagWarmup, warm, maxWarmup))
	}
	out := c.String(flagOut)
	if out == "" {
		return cliutil.Usage(fmt.Errorf("profile: --%s is empty: give the profile's file name", flagOut))
	}
	if err := checkDate(c.String(flagDate), c.IsSet(flagDate), time.Now()); err != nil {
		return err
	}
	if err := checkRunnable(p, c.IsSet(flagImages)); err != nil {
		return err
	}
	// The profile encodes and times the images a run would use: those of
	// --images, else the family's built-in ones (the tiny model's templates).
	imgs, _, err := conditioning(c, p)
	if err != nil {
		return err
	}
	if err := checkModelFiles(p); err != nil {
		return err
	}
	if err := exec.CheckModelTypes(p); err != nil {
		return err
	}
	if err := initORT(c); err != nil {
		return err
	}
	// Before the measurements, not after them: the file can be written,
	// and it is new (or --replace allows overwriting it).
	if err := outdir.CheckNewFile(out, c.Bool(flagReplace), "--"+flagReplace); err != nil {
		return fmt.Errorf("profile: --%s: %w", flagOut, err)
	}
	if warm == 0 {
		warm = -1 // exec.ProfileOptions: negative means none, 0 the default
	}
	fmt.Fprintf(c.App.ErrWriter, "vdexec: profiling %s on %d device(s): %d warm-up and %d timed repetitions each\n", p.Name, len(p.Devices), max(warm, 0), reps)
	popts := exec.ProfileOptions{
		Reps: reps, Warmup: warm, TCP: c.Bool(flagTCP),
		Runtime: ort.Runtime(p),
		Date:    c.String(flagDate),
	}
	if imgs != nil {
		popts.Images = imgs.Image
	}
	if hasCUDA(p) {
		popts.NVML = gpu.Open(c.String(flagNVMLLib))
	}
	if exec.WorkerProcesses(p.Transport) {
		if popts.WorkerCommand, err = workerLauncherSamples(c, args, backend); err != nil {
			return err
		}
	}
	prof, err := exec.Profile(c.Context, p, ort.Factory(p, true), popts)
	if err != nil {
		return err
	}
	if err := exec.WriteProfile(out, prof); err != nil {
		return err
	}
	writeProfileSummary(c.App.Writer, p, prof)
	planArg := "configs/" + defaultPlanName
	if len(args) == 1 {
		planArg = args[0]
	}
	fmt.Fprintf(c.App.Writer, "\nwrote %s\npredict with it: vdsim run %s --costs %s\n", out, planArg, out)
	return nil
}

// hasCUDA reports whether a device of the plan has provider cuda.
func hasCUDA(p *plan.Plan) bool {
	for _, d := range p.Devices {
		if d.Provider == plan.ProviderCUDA {
			return true
		}
	}
	return false
}

// checkDate checks --date s (set: given on the command line or in its
// environment variable): not given (today), or a real date written
// YYYY-MM-DD, as vdsim reads it from the profile, and not after today
// (now's date, local time): a measurement cannot be dated in the future.
func checkDate(s string, set bool, now time.Time) error {
	today := now.Format(time.DateOnly)
	if s == "" {
		if set {
			return cliutil.Usage(fmt.Errorf("profile: --%s is empty: give a date written YYYY-MM-DD, such as %s, or leave the flag out for today", flagDate, today))
		}
		return nil
	}
	if err := plan.CheckDate(s, now); err != nil {
		return cliutil.Usage(fmt.Errorf("profile: --%s: %w", flagDate, err))
	}
	return nil
}

// writeProfileSummary prints what was measured: per device kind the UNet
// call per micro-batch, the first call, encode, decode and host time per
// step; per transport the hand-off of this plan's latent.
func writeProfileSummary(w io.Writer, p *plan.Plan, prof *plan.Profile) {
	pv := prof.Provenance
	fmt.Fprintf(w, "cost profile of %s, measured on %s (%s), %s\n\n", p.Name, pv.Machine, pv.Date, pv.Runtime)
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "device kind\tUNet per micro-batch\tfirst call\tencode\tdecode\thost per step\t")
	kinds := make([]string, 0, len(prof.Devices))
	for k := range prof.Devices {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		d := prof.Devices[k]
		var unet []string
		sizes := make([]int, 0, len(d.UNetMS))
		for b := range d.UNetMS {
			sizes = append(sizes, b)
		}
		sort.Ints(sizes)
		for _, b := range sizes {
			unet = append(unet, fmt.Sprintf("b%d %s", b, formatMS(d.UNetMS[b])))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t\n", k, strings.Join(unet, ", "), formatMS(d.FirstCallMS[1]),
			formatMS(d.EncodeMS), formatMS(d.DecodeMS), formatMS(d.HostMSPerStep))
	}
	tw.Flush()

	fmt.Fprintln(w, "\nhost work and warm-up per device kind (from a short run of the plan):")
	tw = tabwriter.NewWriter(w, 0, 0, 3, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "device kind	first stage per sample	last stage per sample	first encode	first decode	jitter	drift	")
	for _, k := range kinds {
		d := prof.Devices[k]
		first := func(v []float64) string {
			switch len(v) {
			case 0:
				return "no warm-up"
			case 1:
				return formatMS(v[0])
			}
			return fmt.Sprintf("%s, then %d slow calls", formatMS(v[0]), len(v)-1)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", k, formatMS(d.SampleFirstMS), formatMS(d.SampleLastMS),
			first(d.EncodeFirstMS), first(d.DecodeFirstMS), reports.FormatPercent(d.Jitter), reports.FormatPercent(d.Drift))
	}
	tw.Flush()

	fmt.Fprintln(w, "\nmemory per device kind:")
	for _, k := range kinds {
		m := prof.Devices[k].Memory
		fmt.Fprintf(w, "  %s: runtime %.3g GiB, activations %.3g GiB per sample\n", k, m.Runtime, m.ActivationsPerSample)
	}
	for _, l := range strings.Split(pv.Notes, "\n") {
		if strings.Contains(l, " memory: ") {
			fmt.Fprintf(w, "  %s\n", l)
		}
	}

	fmt.Fprintf(w, "\nhand-off of one latent (%d bytes):\n", p.Model.LatentBytes())
	tw = tabwriter.NewWriter(w, 0, 0, 3, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "transport\tlatency\tbandwidth\tthis latent\treceive\tset-up\t")
	names := make([]string, 0, len(prof.Transports))
	for t := range prof.Transports {
		names = append(names, t)
	}
	sort.Strings(names)
	for _, t := range names {
		l := prof.Transports[t]
		recv, setup := "-", "-"
		if t == string(p.Transport) { // measured in the run of the plan
			recv, setup = reports.FormatNS(l.ReceiveNS()), formatMS(l.SetupMS)
		}
		fmt.Fprintf(tw, "%s\t%.3g µs\t%.3g GB/s\t%s\t%s\t%s\t\n", t, l.LatencyUS, l.BandwidthGBps, reports.FormatNS(l.TransferNS(p.Model.LatentBytes())), recv, setup)
	}
	tw.Flush()
	for _, k := range kinds {
		d := prof.Devices[k]
		if u := d.UNetMS[1]; u > 0 {
			fmt.Fprintf(w, "host time per step on %s: %s of a step (%s outside a %s UNet call)\n", k,
				reports.FormatPercent(d.HostMSPerStep/(u+d.HostMSPerStep)), formatMS(d.HostMSPerStep), formatMS(u))
		}
	}
}

// formatMS prints milliseconds with three significant digits.
func formatMS(ms float64) string {
	return reports.FormatSeconds(ms / 1e3)
}
