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
	"io"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/vdpp/vdpp/cmd/internal/cliutil"
	"github.com/vdpp/vdpp/configs"
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
