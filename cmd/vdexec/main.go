// Command vdexec runs a diffusion-step pipeline plan for real, with ONNX
// Runtime on CPU cores or CUDA devices, and measures the cost profiles that
// vdsim predicts from.
//
//	vdexec validate [PLAN]                 check a plan and everything a run needs
//	vdexec run [PLAN] [--out DIR]          run it: videos, timeline, trace, Gantt chart, metrics
//	vdexec profile [PLAN] [-o FILE]        measure a cost profile for vdsim
//	vdexec doctor [PLAN]                   what this machine has and what the plan needs
//	vdexec rank [PLAN] [--out DIR]         one rank of a cluster job (rank 0 coordinates)
//	vdexec launch [PLAN] --emit KIND       write that job for Slurm, Kubernetes or torchrun
//
// Without PLAN the built-in plan configs/tiny-cpu-2stage.yaml is used (the
// tiny model on two CPU workers); its model files are found from the
// repository root (or any folder below it). Every flag can also be set by
// an environment variable (VDEXEC_SAMPLES, ...), and flags may come before
// or after the plan file. The ONNX Runtime library comes from --ort-lib,
// $VDPP_ORT_LIB, or the checkout's third_party folder (`make ort` fetches
// one). Conditioning images are the tiny
// model's templates, or PNG/JPEG files given with --images (needed for
// family svd).
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/vdpp/vdpp/cmd/internal/cliutil"
	"github.com/vdpp/vdpp/configs"
	"github.com/vdpp/vdpp/exec"
	"github.com/vdpp/vdpp/exec/nccl"
	"github.com/vdpp/vdpp/exec/ort"
	"github.com/vdpp/vdpp/plan"
)

const envPrefix = "VDEXEC"

// defaultPlanName is the embedded plan used when no plan file is given.
const defaultPlanName = "tiny-cpu-2stage.yaml"

// defaultPlan is the embedded plan used when no plan file is given.
var defaultPlan = &cliutil.DefaultPlan{
	FS:   configs.FS,
	Name: defaultPlanName,
	Note: "vdexec: no plan file given; using the built-in plan configs/" + defaultPlanName +
		" (tiny model, 2 CPU stages of one core each, 28 steps)",
}

// flagORTLib names the ONNX Runtime library.
const flagORTLib = "ort-lib"

// ortLibFlag is the --ort-lib flag, with $VDPP_ORT_LIB as a second source.
func ortLibFlag() cli.Flag {
	return &cli.StringFlag{
		Name:    flagORTLib,
		EnvVars: append(cliutil.Env(envPrefix, flagORTLib), ort.EnvLib),
		Usage:   "ONNX Runtime shared library `FILE` (libonnxruntime.so ≥ 1.24; `make ort` fetches one)",
	}
}

// newApp builds the vdexec app writing to stdout and stderr; tests run it
// in-process with their own writers.
func newApp(stdout, stderr io.Writer) *cli.App {
	app := cliutil.NewApp("vdexec", "run a diffusion-step pipeline plan for real (ONNX Runtime) and profile its costs", stdout, stderr)
	app.Description = "Flags may come before or after the plan file. Without a plan file the built-in plan configs/" +
		defaultPlanName + " is used (run from the repository root so that its model files are found). " +
		"Every flag has an environment variable (shown in [brackets]); the ONNX Runtime library also comes from $" + ort.EnvLib + "."
	app.Commands = []*cli.Command{
		validateCommand(),
		runCommand(),
		profileCommand(),
		doctorCommand(),
		workerCommand(),
		rankCommand(),
		launchCommand(),
	}
	if err := cliutil.Finish(app); err != nil {
		panic(err) // a programming error in the flag definitions, caught by the tests
	}
	return app
}

func main() {
	os.Exit(cliutil.Main(newApp(os.Stdout, os.Stderr), os.Args, os.Stderr))
}

// loadPlan reads the positional arguments (parsing flags written after
// them) and loads the plan with --costs and the what-if overrides applied.
// The embedded default plan gets its model paths resolved against the
// repository's configs folder (see locateDefault).
func loadPlan(c *cli.Context) (*plan.Plan, error) {
	args, err := cliutil.Positional(c)
	if err != nil {
		return nil, err
	}
	return loadPlanArgs(c, args)
}

// loadPlanArgs is loadPlan once the positional arguments are known.
func loadPlanArgs(c *cli.Context, args []string) (*plan.Plan, error) {
	o, err := cliutil.Overrides(c)
	if err != nil {
		return nil, err
	}
	p, err := cliutil.LoadPlan(args, defaultPlan, c.String(cliutil.FlagCosts), c.App.ErrWriter)
	if err != nil {
		return nil, err
	}
	if len(args) == 0 {
		p.Dir = locateDefault()
	}
	if err := cliutil.Apply(p, o, c.App.ErrWriter); err != nil {
		return nil, err
	}
	return p, nil
}

// initORT loads the ONNX Runtime library named by --ort-lib (or
// $VDPP_ORT_LIB); ort's errors say how to get one (`make ort`).
func initORT(c *cli.Context) error {
	return ort.Init(c.String(flagORTLib))
}

// workerTransports names the transports whose stages run in worker
// processes, as exec says ("tcp or nccl"): the ones a run with external
// workers, --listen, --timeout or a cluster job applies to.
func workerTransports() string {
	var w []string
	for _, t := range plan.Transport("").Values() {
		if exec.WorkerProcesses(t) {
			w = append(w, string(t))
		}
	}
	return strings.Join(w, " or ")
}

// Flags of the NCCL transport.
const (
	flagBackend   = "backend"
	flagNCCLLib   = "nccl-lib"
	flagCUDARTLib = "cudart-lib"
)

// The words of --backend, the reference tool's names for the transport.
const (
	backendAuto = "auto" // nccl where it can run, else tcp
	backendNCCL = "nccl" // transport nccl
	backendGloo = "gloo" // transport tcp
)

// backendWords lists --backend's words for messages.
const backendWords = backendAuto + ", " + backendNCCL + " or " + backendGloo

// backendFlag is --backend of run, profile, worker and launch.
func backendFlag() cli.Flag {
	return &cli.StringFlag{Name: flagBackend, EnvVars: cliutil.Env(envPrefix, flagBackend),
		Usage: "the transport as the reference tool's `WORD` for it, instead of the plan's: " + backendNCCL + " (transport nccl), " + backendGloo +
			" (transport tcp) or " + backendAuto + " (nccl when every device's provider is cuda and NCCL and the CUDA runtime load, else tcp; the run says which and why)"}
}

// ncclLibFlags are --nccl-lib and --cudart-lib of run, profile, worker and
// doctor: they set $VDPP_NCCL_LIB and $VDPP_CUDART_LIB for this process
// and the worker processes it starts.
func ncclLibFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: flagNCCLLib, EnvVars: append(cliutil.Env(envPrefix, flagNCCLLib), nccl.EnvNCCLLib),
			Usage: "NCCL library `FILE` for transport nccl (default: libnccl.so.2 from the loader's path); sets $" + nccl.EnvNCCLLib + ", which the worker processes inherit"},
		&cli.StringFlag{Name: flagCUDARTLib, EnvVars: append(cliutil.Env(envPrefix, flagCUDARTLib), nccl.EnvCUDARTLib),
			Usage: "CUDA runtime library `FILE` for transport nccl (default: libcudart.so.13, .12 or .so from the loader's path); sets $" + nccl.EnvCUDARTLib + ", which the worker processes inherit"},
	}
}

// setNCCLLibs checks --nccl-lib and --cudart-lib and puts them in the
// environment ($VDPP_NCCL_LIB, $VDPP_CUDART_LIB), where nccl.Load and the
// worker processes this one starts find them. A value with a slash given
// on the command line is a path and must be a file; one without is a
// soname for the loader's search path. A value from the environment is
// passed on unchecked: a stale variable must not stop plans that never
// load NCCL, and nccl.Load names it where NCCL is used. (An empty value
// is a usage error before the action, as for every string flag.)
func setNCCLLibs(c *cli.Context, cmd string) error {
	for _, f := range []struct{ flag, env, what string }{
		{flagNCCLLib, nccl.EnvNCCLLib, "the NCCL library (libnccl.so.2)"},
		{flagCUDARTLib, nccl.EnvCUDARTLib, "the CUDA runtime library (libcudart.so.13)"},
	} {
		if !c.IsSet(f.flag) {
			continue
		}
		// Empty and blank values are refused before any action runs
		// (cliutil's rule for every string flag).
		v := c.String(f.flag)
		src := cliutil.Source(c, f.flag)
		if strings.ContainsRune(v, '/') && cliutil.OnCommandLine(c, f.flag) {
			fi, err := os.Stat(v)
			switch {
			case err != nil:
				return cliutil.Usage(fmt.Errorf("%s: %s %q: %w", cmd, src, v, errors.Unwrap(err)))
			case fi.IsDir():
				return cliutil.Usage(fmt.Errorf("%s: %s %q is a folder: give %s as a FILE", cmd, src, v, f.what))
			}
		}
		if err := os.Setenv(f.env, v); err != nil {
			return fmt.Errorf("%s: %s: %w", cmd, src, err)
		}
	}
	return nil
}

// backendWord is --backend's word ("" when not given), checked: an
// unknown word is a usage error naming the flag and the words.
func backendWord(c *cli.Context, cmd string) (string, error) {
	if !c.IsSet(flagBackend) {
		return "", nil
	}
	switch w := c.String(flagBackend); w {
	case backendAuto, backendNCCL, backendGloo:
		return w, nil
	default:
		return "", cliutil.Usage(fmt.Errorf("%s: %s %q: want %s", cmd, cliutil.Source(c, flagBackend), w, backendWords))
	}
}

// loadNCCL is what --backend auto asks of this machine: NCCL and the
// CUDA runtime load (from $VDPP_NCCL_LIB and $VDPP_CUDART_LIB, else the
// loader's path); it says what loaded. A variable so that tests can
// answer.
var loadNCCL = func() (string, error) {
	l, err := nccl.Load("", "")
	if err != nil {
		return "", err
	}
	np, cp := l.Paths()
	return fmt.Sprintf("NCCL %s (%s) and the CUDA runtime %s (%s) load", l.Version(), np, l.CUDAVersion(), cp), nil
}

// chooseBackend is the transport that --backend word selects for p:
// nccl → nccl, gloo → tcp; auto → nccl when every device's provider is
// cuda and load succeeds, else tcp. why says what decided auto ("" for
// the other words). load is not called when a device runs on the CPU.
func chooseBackend(word string, p *plan.Plan, load func() (string, error)) (t plan.Transport, why string) {
	switch word {
	case backendNCCL:
		return plan.TransportNCCL, ""
	case backendGloo:
		return plan.TransportTCP, ""
	}
	var cpu []string
	for _, d := range p.Devices {
		if d.Provider != plan.ProviderCUDA {
			cpu = append(cpu, fmt.Sprintf("%s (provider %s)", d.Name, d.Provider))
		}
	}
	if len(cpu) > 0 {
		return plan.TransportTCP, "not every device's provider is cuda: " + strings.Join(cpu, ", ")
	}
	what, err := load()
	if err != nil {
		line, _, _ := strings.Cut(err.Error(), "\n")
		return plan.TransportTCP, "every device's provider is cuda, but NCCL does not load: " + line
	}
	return plan.TransportNCCL, "every device's provider is cuda, and " + what
}

// applyBackend sets p's transport as --backend says (nothing when it is
// not given), printing for auto which transport it chose and why. It
// returns the word the worker processes get: the chosen transport's,
// never auto ("" without --backend).
func applyBackend(c *cli.Context, p *plan.Plan, cmd string) (string, error) {
	return applyBackendWith(c, p, cmd, loadNCCL)
}

func applyBackendWith(c *cli.Context, p *plan.Plan, cmd string, load func() (string, error)) (string, error) {
	word, err := backendWord(c, cmd)
	if err != nil || word == "" {
		return "", err
	}
	t, why := chooseBackend(word, p, load)
	flag := "--" + flagBackend + " " + word
	if word == backendAuto {
		flag += " (transport " + string(t) + ")"
		fmt.Fprintf(c.App.ErrWriter, "vdexec: %s --%s auto: transport %s: %s\n", cmd, flagBackend, t, why)
	}
	if err := p.UseTransport(t, flag); err != nil {
		return "", err
	}
	return backendFor(t), nil
}

// backendFor is --backend's word for transport t ("" for inproc, which
// has none).
func backendFor(t plan.Transport) string {
	switch t {
	case plan.TransportNCCL:
		return backendNCCL
	case plan.TransportTCP:
		return backendGloo
	}
	return ""
}
