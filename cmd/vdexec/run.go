package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	osexec "os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/vdpp/vdpp/internal/atomicfile"

	"github.com/urfave/cli/v2"

	"github.com/vdpp/vdpp/cmd/internal/cliutil"
	"github.com/vdpp/vdpp/exec"
	"github.com/vdpp/vdpp/exec/ort"
	"github.com/vdpp/vdpp/internal/outdir"
	"github.com/vdpp/vdpp/models"
	"github.com/vdpp/vdpp/plan"
	"github.com/vdpp/vdpp/reports"
	"github.com/vdpp/vdpp/study"
	"github.com/vdpp/vdpp/timeline"
)

// Flag names of run.
const (
	flagOut         = "out"
	flagOnInterrupt = "on-interrupt"
	flagTimeout     = "timeout"
	flagJSON        = "json"
	flagReplace     = "replace"
	flagListen      = "listen"
	flagExternal    = "external-workers"
)

// runOutputs are the patterns of what a run writes in its output folder
// (the manifest that --replace reads).
var runOutputs = outdir.Spec{Tool: "vdexec run", Patterns: []string{
	"sample_*", "timeline.json", "trace.json", "gantt.png", "metrics.json",
}}

// signalExit returns the exit status of a run stopped by s and the word
// that says so: 143 and "terminated" for SIGTERM, otherwise (SIGINT, or a
// run cancelled without a signal) 130 and "interrupted".
func signalExit(s os.Signal) (int, string) {
	if s == syscall.SIGTERM {
		return cliutil.ExitTerminated, "terminated"
	}
	return cliutil.ExitInterrupted, "interrupted"
}

// exitNow ends the process at a second Ctrl-C; a variable so that nothing
// in the tests can call os.Exit by accident.
var exitNow = os.Exit

func runCommand() *cli.Command {
	flags := append(cliutil.WhatIfFlags(envPrefix, true),
		ortLibFlag(),
		imagesFlag(),
		&cli.StringFlag{Name: flagOut, Aliases: []string{"o"}, Value: filepath.Join("out", "run"), EnvVars: cliutil.Env(envPrefix, flagOut),
			Usage: "output `DIR`: one sample_NNNNN folder per finished sample, then timeline.json, trace.json (Perfetto), gantt.png and metrics.json; it must be empty or new unless --replace"},
		&cli.BoolFlag{Name: flagReplace, EnvVars: cliutil.Env(envPrefix, flagReplace),
			Usage: "reuse a non-empty --out folder: first remove what an earlier vdpp run wrote there (the entries its .vdpp-outputs manifest lists); anything else there is refused"},
		&cli.StringFlag{Name: flagOnInterrupt, Value: exec.InterruptFinish, EnvVars: cliutil.Env(envPrefix, flagOnInterrupt),
			Usage: "at Ctrl-C: finish (let the samples already admitted complete) or abandon (stop at the next step; in-flight samples produce nothing)"},
		&cli.DurationFlag{Name: flagTimeout, Value: exec.DefaultTimeout, EnvVars: cliutil.Env(envPrefix, flagTimeout),
			Usage: "transport " + workerTransports() + ": how long to wait for the worker processes to start and connect"},
		&cli.BoolFlag{Name: flagJSON, EnvVars: cliutil.Env(envPrefix, flagJSON), Usage: "print the metrics as JSON (as in metrics.json) instead of a table"},
		&cli.StringFlag{Name: flagListen, Value: "127.0.0.1:0", EnvVars: cliutil.Env(envPrefix, flagListen),
			Usage: "transport " + workerTransports() + ": the `ADDR` (host:port, port 0: any free one) the coordinator listens on for its workers; workers on other hosts need one they reach, such as 0.0.0.0:29500"},
		&cli.BoolFlag{Name: flagExternal, EnvVars: cliutil.Env(envPrefix, flagExternal),
			Usage: "transport " + workerTransports() + ": start no worker; wait (--timeout) for a `vdexec worker` per stage device, started by a cluster's launcher or by hand with the run's token ($" + exec.EnvWorkerToken + " or --" + flagTokenFile + ")"},
		tokenFileFlag("run"),
		backendFlag(),
	)
	flags = append(flags, ncclLibFlags()...)
	return &cli.Command{
		Name:      "run",
		Usage:     "run a plan for real: videos, timeline, Perfetto trace, Gantt chart and metrics",
		ArgsUsage: "[PLAN]",
		Description: "Runs the plan with ONNX Runtime: one session per stage device (cpu: the device's threads as " +
			"intra-op threads; cuda: its device index), samples pipelined through the stages as the plan says. " +
			"Sample i is conditioned on image i mod N of --images (the tiny model's templates without it). " +
			"The output folder must be new or empty (--replace removes an earlier run's outputs first, and only those). " +
			"Each finished sample gets DIR/sample_NNNNN/ (PNG frames, video.gif, sample.json); at the end " +
			"DIR/timeline.json, trace.json, gantt.png and metrics.json are written (atomically) and the metrics " +
			"printed, with the executor's own overhead per step. Transport " + workerTransports() + " starts one `vdexec worker` " +
			"process per device on this host (--" + flagBackend + " picks the transport instead of the plan); with --external-workers it starts none and waits for workers that a " +
			"cluster's launcher started (see `vdexec rank` and `vdexec launch`). Ctrl-C stops admitting samples (see --on-interrupt) and still " +
			"writes the timeline; a second Ctrl-C exits at once.",
		Flags:  flags,
		Action: runAction,
	}
}

func runAction(c *cli.Context) error {
	args, err := cliutil.Positional(c)
	if err != nil {
		if cliutil.IsHelp(err) {
			return nil
		}
		return err
	}
	return runPlanArgs(c, args, "run", "")
}

// runPlanArgs runs the plan of args as `vdexec run` does; cmd names the
// command in messages, and a listen address other than "" makes the run
// wait for external workers there (`vdexec rank` at rank 0).
func runPlanArgs(c *cli.Context, args []string, cmd, listen string) error {
	if err := setNCCLLibs(c, cmd); err != nil {
		return err
	}
	if _, err := backendWord(c, cmd); err != nil {
		return err
	}
	p, err := loadPlanArgs(c, args)
	if err != nil {
		return err
	}
	backend, err := applyBackend(c, p, cmd)
	if err != nil {
		return err
	}
	rf, err := runFlags(c, p, cmd, listen)
	if err != nil {
		return err
	}
	rf.backend = backend
	stderr := c.App.ErrWriter
	pr := newProgress(stderr, cliutil.IsTerminal(stderr))
	for _, line := range rf.prepared.Lines(rf.out) {
		pr.printf("vdexec: %s\n", line)
	}
	pr.printf("vdexec: running %s: %d samples, %s, %d steps, transport %s, ONNX Runtime %s; outputs in %s\n",
		p.Name, p.Workload.Samples, study.LayoutLabel(p), p.Sampler.Steps, p.Transport, ort.Version(), rf.out)

	ctx, cancel := context.WithCancel(c.Context)
	defer cancel()
	signals := watchSignals(cancel, pr, rf.mode)
	defer signals.stop()

	opts, err := runOptions(c, args, p, rf, pr)
	if err != nil {
		return err
	}
	// The UNet calls of the stages that run in this process are timed,
	// for the executor's overhead per step.
	timer := exec.NewUNetTimer()
	res, runErr := exec.Run(ctx, p, timer.Factory(ort.Factory(p, false)), opts)
	pr.end()
	if res == nil || res.Timeline == nil {
		if runErr == nil {
			runErr = errors.New("run: the executor returned no result")
		}
		return runErr
	}
	werr := reportRun(c, p, res, exec.StepOverhead(res.Timeline, timer), rf.out, runErr)
	switch {
	case runErr != nil:
		return errors.Join(runErr, werr)
	case werr != nil:
		return werr
	case res.Interrupted:
		return interruptedExit(signals.caught(), res, rf.mode)
	}
	return nil
}

// runSetup is what run's flags and checks give a run.
type runSetup struct {
	mode     string           // --on-interrupt
	out      string           // --out, made ready by outdir.Prepare
	images   *models.ImageSet // the conditioning images
	prepared outdir.Prepared  // what making --out ready removed
	listen   string           // --listen ("": as exec's default)
	external bool             // --external-workers
	token    string           // the user's token, with external workers
	backend  string           // --backend's choice for the worker processes ("": not given)
}

// runFlags checks run's flags and, before any work, what the run needs:
// the plan runs in this build, its images load, its model files exist and
// their element types are the plan's dtype, the ONNX Runtime library loads
// and the output folder is ready (new or empty, or with --replace cleared
// of an earlier run's outputs, and writable).
func runFlags(c *cli.Context, p *plan.Plan, cmd, listen string) (runSetup, error) {
	rf := runSetup{mode: c.String(flagOnInterrupt), out: c.String(flagOut)}
	if rf.mode != exec.InterruptFinish && rf.mode != exec.InterruptAbandon {
		return rf, cliutil.Usage(fmt.Errorf("%s: --%s %q: want %s or %s", cmd, flagOnInterrupt, rf.mode, exec.InterruptFinish, exec.InterruptAbandon))
	}
	if err := checkTimeout(cmd, c); err != nil {
		return rf, err
	}
	if err := externalFlags(c, p, cmd, listen, &rf); err != nil {
		return rf, err
	}
	if c.IsSet(flagTimeout) && !exec.WorkerProcesses(p.Transport) {
		// Not an error: the variable may be set for other runs.
		fmt.Fprintf(c.App.ErrWriter, "note: %s applies to transport %s only (the worker processes' start-up); this plan's transport is %s, so it has no effect\n",
			cliutil.Source(c, flagTimeout), workerTransports(), p.Transport)
	}
	if err := checkRunnable(p, c.IsSet(flagImages)); err != nil {
		return rf, err
	}
	var err error
	if rf.images, _, err = conditioning(c, p); err != nil {
		return rf, err
	}
	if err := checkModelFiles(p); err != nil {
		return rf, err
	}
	if err := exec.CheckModelTypes(p); err != nil {
		return rf, err
	}
	if err := initORT(c); err != nil {
		return rf, err
	}
	if rf.out == "" {
		return rf, cliutil.Usage(fmt.Errorf("run: --%s is empty: give an output folder", flagOut))
	}
	if rf.prepared, err = outdir.Prepare(rf.out, c.Bool(flagReplace), "--"+flagReplace, runOutputs); err != nil {
		return rf, fmt.Errorf("run: --%s: %w", flagOut, err)
	}
	return rf, nil
}

// externalFlags checks --listen, --external-workers and --token-file
// (listen other than "": `vdexec rank` at rank 0, which always waits for
// external workers there).
func externalFlags(c *cli.Context, p *plan.Plan, cmd, listen string, rf *runSetup) error {
	rf.external = c.Bool(flagExternal) || listen != ""
	rf.listen = listen
	if listen == "" && c.IsSet(flagListen) {
		rf.listen = c.String(flagListen)
		if err := checkListen(rf.listen); err != nil {
			return cliutil.Usage(fmt.Errorf("%s: %s %q: %w", cmd, cliutil.Source(c, flagListen), rf.listen, err))
		}
	}
	workers := exec.WorkerProcesses(p.Transport)
	switch {
	case rf.external && !workers:
		msg := fmt.Sprintf("%s: external workers need a plan with transport tcp; plan %s has transport %s, whose stages run in this process", cmd, p.Name, p.Transport)
		if w := workerTransports(); w != string(plan.TransportTCP) {
			msg += " (worker processes run transport " + w + ")"
		}
		return cliutil.Usage(errors.New(msg))
	case !rf.external && c.IsSet(flagTokenFile):
		return cliutil.Usage(fmt.Errorf("%s: %s is for --%s only: the workers `vdexec run` starts get a fresh token of their own", cmd, cliutil.Source(c, flagTokenFile), flagExternal))
	case c.IsSet(flagListen) && !workers:
		fmt.Fprintf(c.App.ErrWriter, "note: %s applies to transport %s only; this plan's transport is %s, so it has no effect\n", cliutil.Source(c, flagListen), workerTransports(), p.Transport)
	}
	if rf.external {
		tok, err := userToken(os.Getenv, c.String(flagTokenFile), "--"+flagTokenFile)
		if err != nil {
			return cliutil.Usage(fmt.Errorf("%s: %w", cmd, err))
		}
		rf.token = tok
	}
	return nil
}

// checkListen checks the syntax of a listen address: HOST:PORT with a
// port from 0 (any free one) to 65535; the host may be empty (every
// interface).
func checkListen(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("want HOST:PORT, such as 0.0.0.0:29500 (%v)", err)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 || !isDigits(port) {
		return fmt.Errorf("want HOST:PORT with a port from 0 (any free one) to 65535; %q is not one", port)
	}
	return nil
}

// checkTimeout checks --timeout of cmd (run or worker): a positive
// duration, else a usage error.
func checkTimeout(cmd string, c *cli.Context) error {
	if d := c.Duration(flagTimeout); d <= 0 {
		return cliutil.Usage(fmt.Errorf("%s: --%s %s: want a positive duration such as 30s", cmd, flagTimeout, d))
	}
	return nil
}

// runOptions are the executor's options of a run; a transport whose
// stages run in worker processes (tcp) starts them with this program
// (workerLauncher).
func runOptions(c *cli.Context, args []string, p *plan.Plan, rf runSetup, pr *progress) (exec.Options, error) {
	opts := exec.Options{
		OutDir:      rf.out,
		OnInterrupt: rf.mode,
		Progress:    pr.update,
		Timeout:     c.Duration(flagTimeout),
		Versions:    map[string]string{"onnxruntime": ort.Version()},
		Log:         func(msg string) { pr.printf("vdexec: %s\n", msg) },
	}
	if rf.images != nil {
		opts.Images, opts.Conditioning = rf.images.Image, rf.images.Label
	}
	opts.Listen = rf.listen
	if rf.external {
		opts.ExternalWorkers, opts.Token = true, rf.token
		devs := stageDevices(p)
		opts.Listening = func(addr string) {
			pr.printf("vdexec: coordinator listening on %s; waiting up to %v for %d external workers (ranks 1 to %d: %s)\n",
				addr, opts.Timeout, len(devs), len(devs), strings.Join(devs, ", "))
		}
		return opts, nil
	}
	if exec.WorkerProcesses(p.Transport) {
		var err error
		if opts.WorkerCommand, err = workerLauncher(c, args, rf.backend); err != nil {
			return opts, err
		}
	}
	return opts, nil
}

// reportRun writes the run's files into out and prints its metrics (a
// table, or JSON with --json) and the files written, with the run's
// failure (runErr, nil if none) recorded; it returns the errors of the
// writes.
func reportRun(c *cli.Context, p *plan.Plan, res *exec.Result, overhead []exec.DeviceOverhead, out string, runErr error) error {
	// The timeline says, as metrics.json does, how the run ended.
	res.Timeline.Meta.Interrupted = res.Interrupted
	if runErr != nil {
		res.Timeline.Meta.Error = runErr.Error()
	}
	m := res.Timeline.Metrics()
	r := runJSON(p, res, m, overhead, runErr)
	files, werr := writeRunFiles(out, p, res, r)
	w := c.App.Writer
	if c.Bool(flagJSON) {
		if err := writeMetricsJSON(c.App.Writer, r); err != nil {
			return err
		}
		w = c.App.ErrWriter
	} else {
		writeRunTable(c.App.Writer, p, res, m, overhead, runErr)
	}
	fmt.Fprintf(w, "\nwrote %d sample folder(s) in %s", len(res.Outputs), out)
	if len(files) > 0 {
		fmt.Fprintln(w, ", and:")
		for _, f := range files {
			fmt.Fprintf(w, "  %s\n", f)
		}
	} else {
		fmt.Fprintln(w)
	}
	return werr
}

// interruptedExit is the error of a run that s stopped early, with the
// exit status of s.
func interruptedExit(s os.Signal, res *exec.Result, mode string) error {
	code, word := signalExit(s)
	return cli.Exit(fmt.Sprintf("run %s: %d of %d samples finished (--on-interrupt %s); the timeline and metrics of what ran are written", word, res.Done, res.Total, mode), code)
}

// signalWatch watches SIGINT and SIGTERM during a run.
type signalWatch struct {
	sigs  chan os.Signal
	done  chan struct{}
	mu    sync.Mutex
	first os.Signal // the signal that cancelled the run, nil if none
}

// watchSignals makes the first SIGINT or SIGTERM cancel the run (stop
// admitting samples) and a second one exit at once with status 130 for
// SIGINT or 143 for SIGTERM. Call stop on the result to stop watching.
func watchSignals(cancel context.CancelFunc, pr *progress, mode string) *signalWatch {
	w := &signalWatch{sigs: make(chan os.Signal, 2), done: make(chan struct{})}
	signal.Notify(w.sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		select {
		case s := <-w.sigs:
			w.mu.Lock()
			w.first = s
			w.mu.Unlock()
			what := "finishing the samples already admitted"
			if mode == exec.InterruptAbandon {
				what = "abandoning the samples in flight at their next step"
			}
			pr.printf("vdexec: %s: no new samples will start; %s, then writing the timeline (again to exit at once)\n", s, what)
			cancel()
		case <-w.done:
			return
		}
		select {
		case s := <-w.sigs:
			pr.printf("vdexec: %s again: exiting now; finished samples stay, no timeline is written\n", s)
			code, _ := signalExit(s)
			exitNow(code)
		case <-w.done:
		}
	}()
	return w
}

// caught returns the signal that cancelled the run, or nil if none did.
func (w *signalWatch) caught() os.Signal {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.first
}

// stop stops watching the signals.
func (w *signalWatch) stop() {
	signal.Stop(w.sigs)
	close(w.done)
}

// workerLauncher returns the command that starts the worker process of a
// device for the transports that run workers (tcp, nccl): this binary's
// `worker` command with the same plan (the same file, or the built-in
// one), the same what-if flags, the same ONNX Runtime library and, where
// --backend was given, the transport it chose (backend: nccl or gloo,
// never auto, so that every process runs the same plan). The NCCL
// libraries reach the workers in $VDPP_NCCL_LIB and $VDPP_CUDART_LIB.
func workerLauncher(c *cli.Context, args []string, backend string) (func(device, rendezvous string) (*osexec.Cmd, error), error) {
	l, err := workerLauncherSamples(c, args, backend)
	if err != nil {
		return nil, err
	}
	return func(device, rendezvous string) (*osexec.Cmd, error) { return l(device, rendezvous, 0) }, nil
}

// workerLauncherSamples is workerLauncher for a run of samples samples
// (0: as the plan and flags say), as vdexec profile's short run needs.
func workerLauncherSamples(c *cli.Context, args []string, backend string) (func(device, rendezvous string, samples int) (*osexec.Cmd, error), error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("run: find this program to start the worker processes: %w", err)
	}
	planArg := ""
	if len(args) == 1 {
		if planArg, err = filepath.Abs(args[0]); err != nil {
			return nil, fmt.Errorf("run: %s: %w", args[0], err)
		}
	}
	var fwd []string
	for _, f := range append(cliutil.WhatIfFlags(envPrefix, true), imagesFlag()) {
		name := f.Names()[0]
		if c.IsSet(name) {
			fwd = append(fwd, fmt.Sprintf("--%s=%v", name, c.Value(name)))
		}
	}
	if backend != "" {
		fwd = append(fwd, "--"+flagBackend+"="+backend)
	}
	timeout := c.Duration(flagTimeout)
	if timeout <= 0 { // a command without --timeout (profile)
		timeout = exec.DefaultTimeout
	}
	return func(device, rendezvous string, samples int) (*osexec.Cmd, error) {
		a := []string{"worker", "--plan", planArg, "--device", device, "--" + flagCoordinator, rendezvous,
			"--" + flagORTLib, ort.Library(), "--" + flagTimeout, timeout.String()}
		a = append(a, fwd...)
		if samples > 0 { // the last --samples wins
			a = append(a, fmt.Sprintf("--samples=%d", samples))
		}
		cmd := osexec.Command(self, a...)
		cmd.Stdout = os.Stderr
		return cmd, nil
	}, nil
}

// runResult is the JSON of metrics.json and of run --json.
type runResult struct {
	Plan     string            `json:"plan"`
	File     string            `json:"file,omitempty"`
	Layout   string            `json:"layout"`
	Source   string            `json:"source"`
	Machine  string            `json:"machine,omitempty"`
	Versions map[string]string `json:"versions,omitempty"`
	// Done counts the samples that finished, their folders written.
	Done        int  `json:"done"`
	Total       int  `json:"total"`
	Interrupted bool `json:"interrupted"`
	// Error is the failure that stopped the run early ("" if none): the
	// metrics are those of what ran until then.
	Error   string           `json:"error,omitempty"`
	Metrics timeline.Metrics `json:"metrics"`
	// Overhead is the executor's own time per step, per device (inproc only).
	Overhead []exec.DeviceOverhead `json:"executor_overhead,omitempty"`
}

func runJSON(p *plan.Plan, res *exec.Result, m timeline.Metrics, overhead []exec.DeviceOverhead, runErr error) runResult {
	r := runResult{
		Plan: p.Name, File: p.File, Layout: study.LayoutLabel(p), Source: "exec",
		Machine: res.Timeline.Meta.Machine, Versions: res.Timeline.Meta.Versions,
		Done: res.Done, Total: res.Total, Interrupted: res.Interrupted,
		Metrics: m, Overhead: overhead,
	}
	if runErr != nil {
		r.Error = runErr.Error()
	}
	return r
}

func writeMetricsJSON(w io.Writer, r runResult) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("run: write json: %w", err)
	}
	return nil
}

// writeRunFiles writes timeline.json, trace.json, gantt.png and
// metrics.json (r) into dir, each atomically, and returns the paths
// written. It writes as many as it can and returns the errors together.
func writeRunFiles(dir string, p *plan.Plan, res *exec.Result, r runResult) ([]string, error) {
	tl := res.Timeline
	var files []string
	var errs []error
	try := func(name string, write func(path string) error) {
		path := filepath.Join(dir, name)
		if err := write(path); err != nil {
			errs = append(errs, fmt.Errorf("run: %w", err))
			return
		}
		files = append(files, path)
	}
	try("timeline.json", func(path string) error { return timeline.WriteFile(path, tl) })
	try("trace.json", func(path string) error {
		var buf bytes.Buffer
		if err := timeline.WriteTrace(&buf, tl); err != nil {
			return err
		}
		return atomicfile.Write(path, buf.Bytes())
	})
	if len(tl.Spans) > 0 {
		try("gantt.png", func(path string) error {
			panels := []reports.GanttPanel{{Title: "measured, " + study.LayoutLabel(p), TL: tl}}
			return reports.WriteGanttPNG(path, panels, reports.GanttOptions{})
		})
	}
	try("metrics.json", func(path string) error {
		data, err := json.MarshalIndent(r, "", "  ")
		if err != nil {
			return err
		}
		return atomicfile.Write(path, append(data, '\n'))
	})
	return files, errors.Join(errs...)
}

// writeRunTable prints the run's metrics: the headline numbers, then one
// row per device, then the executor's overhead per step.
func writeRunTable(w io.Writer, p *plan.Plan, res *exec.Result, m timeline.Metrics, overhead []exec.DeviceOverhead, runErr error) {
	kind := "?"
	if len(p.Devices) > 0 {
		kind = p.Devices[0].Kind
	}
	status := ""
	switch {
	case runErr != nil:
		status = " (failed: see the error below)"
	case res.Interrupted:
		status = " (interrupted)"
	}
	fmt.Fprintf(w, "%s: %d of %d samples%s, %s on %d × %s, %d steps, measured on %s\n",
		p.Name, res.Done, res.Total, status, study.LayoutLabel(p), len(p.Devices), kind, p.Sampler.Steps, res.Timeline.Meta.Machine)
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "metric\tmeasured\t\n")
	row := func(name, v string) { fmt.Fprintf(tw, "%s\t%s\t\n", name, v) }
	if m.Samples == 0 {
		row("samples finished", "0")
	} else {
		for _, c := range timeline.Columns() {
			row(c.Label, c.Text(&m))
		}
	}
	tw.Flush()

	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 3, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "device\tutilisation\tbusy\tidle: fill\tdrain\tbetween\twait\twarm-up\t")
	for _, d := range m.Devices {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", d.Device, reports.FormatPercent(d.Utilisation), reports.FormatNS(d.BusyNS),
			reports.FormatNS(d.FillNS), reports.FormatNS(d.DrainNS), reports.FormatNS(d.BetweenNS), reports.FormatNS(d.WaitNS), reports.FormatNS(d.WarmupNS))
	}
	tw.Flush()

	if len(overhead) == 0 {
		if exec.WorkerProcesses(p.Transport) {
			fmt.Fprintf(w, "\nexecutor overhead per step: not measured with transport %s (the UNet calls run in the worker processes)\n", p.Transport)
		}
		return
	}
	fmt.Fprintln(w, "\nexecutor overhead per step (step-span time outside the UNet call: sampler math, copies, bookkeeping)")
	tw = tabwriter.NewWriter(w, 0, 0, 3, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "device\tUNet calls\tUNet per call\toverhead per step\tof a step\t")
	all := overhead
	if t, ok := exec.TotalOverhead(overhead); ok && len(overhead) > 1 {
		all = append(append([]exec.DeviceOverhead(nil), overhead...), t)
	}
	for _, o := range all {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t\n", o.Device, o.Calls, reports.FormatSeconds(float64(o.UNetNS)/float64(o.Calls)/1e9),
			formatMicros(o.PerStepNS), reports.FormatPercent(o.Fraction))
	}
	tw.Flush()
}

// formatMicros prints nanoseconds as microseconds with three significant
// digits.
func formatMicros(ns float64) string {
	return strconv.FormatFloat(ns/1e3, 'g', 3, 64) + " µs"
}

// progress reports samples as they finish: a bar redrawn in place on a
// terminal, one line per sample otherwise.
type progress struct {
	w     io.Writer
	tty   bool
	hist  []exec.ProgressEvent // the last few events, for the current rate
	width int                  // length of the last bar drawn
	cols  int                  // terminal width in columns
	mu    sync.Mutex           // shared with the signal goroutine's messages
}

func newProgress(w io.Writer, tty bool) *progress {
	return &progress{w: w, tty: tty, cols: termColumns()}
}

// defaultColumns is the terminal width assumed when COLUMNS is unset.
const defaultColumns = 80

// termColumns returns the terminal width from the COLUMNS environment
// variable, or defaultColumns if it is unset or not a positive number.
func termColumns() int {
	n, err := strconv.Atoi(os.Getenv("COLUMNS"))
	if err != nil || n <= 0 {
		return defaultColumns
	}
	return n
}

// printf prints a message line, clearing the bar first on a terminal.
func (pr *progress) printf(format string, args ...any) {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	pr.clear()
	fmt.Fprintf(pr.w, format, args...)
	pr.width = 0
}

func (pr *progress) clear() {
	if pr.tty && pr.width > 0 {
		fmt.Fprintf(pr.w, "\r%*s\r", pr.width, "")
	}
}

// rateWindow is how many recent completions the current throughput uses.
const rateWindow = 5

// update is exec.Options.Progress.
func (pr *progress) update(e exec.ProgressEvent) {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	pr.hist = append(pr.hist, e)
	if len(pr.hist) > rateWindow+1 {
		pr.hist = pr.hist[len(pr.hist)-rateWindow-1:]
	}
	rate := e.Throughput
	if first := pr.hist[0]; len(pr.hist) > 1 && e.Elapsed > first.Elapsed {
		rate = float64(e.Done-first.Done) / (e.Elapsed - first.Elapsed).Seconds()
	}
	eta := "?"
	if rate > 0 && e.Total > e.Done {
		eta = formatDuration(time.Duration(float64(e.Total-e.Done) / rate * float64(time.Second)))
	} else if e.Total <= e.Done {
		eta = "0s"
	}
	if !pr.tty {
		fmt.Fprintf(pr.w, "vdexec: %d/%d samples done at %s (%.3g samples/s now, ETA %s)\n",
			e.Done, e.Total, formatDuration(e.Elapsed), rate, eta)
		return
	}
	line := fitProgress(e.Done, e.Total, fmt.Sprintf("  %.3g samples/s", rate), "  elapsed "+formatDuration(e.Elapsed), "  ETA "+eta, pr.cols-1)
	n := utf8.RuneCountInString(line)
	pad := max(0, pr.width-n)
	fmt.Fprintf(pr.w, "\r%s%*s", line, pad, "")
	pr.width = n
}

// Bar lengths of the terminal progress line.
const (
	barLen    = 30
	minBarLen = 10
)

// fitProgress returns the terminal progress line of done samples out of
// total with the given rate, elapsed and ETA parts, in at most width
// characters (the caller leaves the last column free so that the line never
// wraps and the \r redraw stays on one line). It drops the least important
// parts first: the ETA, then the rate; then it shortens the bar, drops the
// elapsed time, shortens the bar further, and at last cuts the line.
func fitProgress(done, total int, rate, elapsed, eta string, width int) string {
	count := fmt.Sprintf(" %d/%d samples", done, total)
	fits := func(tail string, bar int) bool { return utf8.RuneCountInString(tail)+bar+2 <= width }
	for _, tail := range []string{count + rate + elapsed + eta, count + rate + elapsed, count + elapsed} {
		if fits(tail, barLen) {
			return progressBar(done, total, barLen) + tail
		}
	}
	if tail := count + elapsed; fits(tail, minBarLen) {
		return progressBar(done, total, width-2-utf8.RuneCountInString(tail)) + tail
	}
	if fits(count, 1) {
		return progressBar(done, total, min(barLen, width-2-utf8.RuneCountInString(count))) + count
	}
	r := []rune(count[1:])
	return string(r[:min(len(r), max(0, width))])
}

// progressBar returns "[###...]" with n cells, filled in proportion to done
// out of total.
func progressBar(done, total, n int) string {
	filled := 0
	if total > 0 {
		filled = min(n, max(0, done)*n/total)
	}
	return "[" + strings.Repeat("#", filled) + strings.Repeat(".", n-filled) + "]"
}

// end finishes the bar's line on a terminal.
func (pr *progress) end() {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	if pr.tty && pr.width > 0 {
		fmt.Fprintln(pr.w)
		pr.width = 0
	}
}

// formatDuration rounds a duration for a progress line.
func formatDuration(d time.Duration) string {
	switch {
	case d >= time.Minute:
		return d.Round(time.Second).String()
	case d >= time.Second:
		return d.Round(100 * time.Millisecond).String()
	default:
		return d.Round(time.Millisecond).String()
	}
}
